"""The stdlib's import-system classes, without importing ``importlib`` at start-up.

``importlib.machinery`` re-exports classes of the frozen modules the import system
itself runs on (``_frozen_importlib``, ``_frozen_importlib_external``), which every
interpreter has loaded before ``site`` runs; but importing ``importlib`` also imports
``warnings``, a third of a millisecond on every start of a program that never needs
them. These are the very same objects (``importlib.machinery.SourceFileLoader is
_machinery.SourceFileLoader``), so specs stay standard.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import (
        BYTECODE_SUFFIXES,
        EXTENSION_SUFFIXES,
        SOURCE_SUFFIXES,
        ExtensionFileLoader,
        ModuleSpec,
        PathFinder,
        SourceFileLoader,
        SourcelessFileLoader,
    )
else:
    try:
        _bootstrap = sys.modules["_frozen_importlib"]
        _external = sys.modules["_frozen_importlib_external"]
    except KeyError:  # an interpreter without the frozen import system: the public way
        from importlib import machinery as _bootstrap

        _external = _bootstrap
    ModuleSpec = _bootstrap.ModuleSpec
    BYTECODE_SUFFIXES = _external.BYTECODE_SUFFIXES
    EXTENSION_SUFFIXES = _external.EXTENSION_SUFFIXES
    SOURCE_SUFFIXES = _external.SOURCE_SUFFIXES
    ExtensionFileLoader = _external.ExtensionFileLoader
    PathFinder = _external.PathFinder
    SourceFileLoader = _external.SourceFileLoader
    SourcelessFileLoader = _external.SourcelessFileLoader

__all__ = [
    "BYTECODE_SUFFIXES",
    "EXTENSION_SUFFIXES",
    "SOURCE_SUFFIXES",
    "ExtensionFileLoader",
    "ModuleSpec",
    "PathFinder",
    "SourceFileLoader",
    "SourcelessFileLoader",
]
