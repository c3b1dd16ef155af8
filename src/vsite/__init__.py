"""vsite: many per-wheel install roots importable as ONE site-packages, no venv on disk.

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
