"""vsite: many per-wheel install roots importable as ONE site-packages, no venv on disk.

This package is the runtime (boot, activation, manifest, index, finder, native farm). It
and its subpackages other than ``vsite.tools`` import only the standard library and
each other; never ``vsite.tools``, ``packaging`` or ``installer`` (the boot path stays
lean; tests/test_architecture.py checks it). ``vsite.tools`` holds the command line and
the tooling, which may import the runtime.

PYTEST_DONT_REWRITE: the boot hook imports vsite before pytest marks its plugin's
package for assertion rewriting; this marker keeps pytest from warning about that.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
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

#: Where each public name lives: imported on first use (PEP 562), so an interpreter
#: start that activates a site loads only the modules activation needs.
_PUBLIC = {
    "Handle": "vsite.activation",
    "activate": "vsite.activation",
    "deactivate": "vsite.activation",
    "ActivationError": "vsite.errors",
    "FarmError": "vsite.errors",
    "ManifestError": "vsite.errors",
    "RootError": "vsite.errors",
    "VsiteError": "vsite.errors",
    "Manifest": "vsite.manifest",
}


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'vsite' has no attribute {name!r}")
    import sys

    __import__(module)
    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
