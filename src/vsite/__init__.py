"""vsite: many per-wheel install roots importable as ONE site-packages, no venv on disk."""

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
