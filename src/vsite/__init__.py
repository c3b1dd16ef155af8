"""vsite: many per-wheel install roots importable as ONE site-packages, no venv on disk.

This package is the runtime (boot, activation, manifest, index, finder, native farm). It
and its subpackages other than ``vsite.tools`` import only the standard library and
each other; never ``vsite.tools``, ``packaging`` or ``installer`` (the boot path stays
lean; tests/test_architecture.py checks it). ``vsite.tools`` holds the command line and
the tooling, which may import the runtime.

PYTEST_DONT_REWRITE: the boot hook imports vsite before pytest marks its plugin's
package for assertion rewriting; this marker keeps pytest from warning about that.
"""

from vsite.activation import Handle, activate, deactivate
from vsite.errors import ActivationError, FarmError, ManifestError, RootError, VsiteError
from vsite.manifest import Manifest

__all__ = [
    "ActivationError",
    "FarmError",
    "Handle",
    "Manifest",
    "ManifestError",
    "RootError",
    "VsiteError",
    "__version__",
    "activate",
    "deactivate",
]

__version__ = "0.1.0"
