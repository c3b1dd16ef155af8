"""The stdlib's import-system classes, without importing ``importlib`` at start-up.

``importlib.machinery`` re-exports classes of the frozen modules the import system
itself runs on (``_frozen_importlib``, ``_frozen_importlib_external``), which every
interpreter has loaded before ``site`` runs; but importing ``importlib`` also imports
``warnings``, a third of a millisecond on every start of a program that never needs
them. These are the very same objects (``importlib.machinery.SourceFileLoader is
_machinery.SourceFileLoader``), so specs stay standard.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import (
        BYTECODE_SUFFIXES,
        EXTENSION_SUFFIXES,
        SOURCE_SUFFIXES,
        ExtensionFileLoader,
        FileFinder,
        ModuleSpec,
        PathFinder,
        SourceFileLoader,
        SourcelessFileLoader,
    )
    from importlib.util import MAGIC_NUMBER, cache_from_source
else:
    try:
        _bootstrap = sys.modules["_frozen_importlib"]
        _external = sys.modules["_frozen_importlib_external"]
    except KeyError:  # an interpreter without the frozen import system: the public way
        from importlib import _bootstrap
        from importlib import _bootstrap_external as _external
    ModuleSpec = _bootstrap.ModuleSpec
    BYTECODE_SUFFIXES = _external.BYTECODE_SUFFIXES
    EXTENSION_SUFFIXES = _external.EXTENSION_SUFFIXES
    MAGIC_NUMBER = _external.MAGIC_NUMBER
    SOURCE_SUFFIXES = _external.SOURCE_SUFFIXES
    ExtensionFileLoader = _external.ExtensionFileLoader
    FileFinder = _external.FileFinder
    PathFinder = _external.PathFinder
    SourceFileLoader = _external.SourceFileLoader
    SourcelessFileLoader = _external.SourcelessFileLoader
    cache_from_source = _external.cache_from_source

__all__ = [
    "BYTECODE_SUFFIXES",
    "EXTENSION_SUFFIXES",
    "MAGIC_NUMBER",
    "SOURCE_SUFFIXES",
    "ExtensionFileLoader",
    "FileFinder",
    "ModuleSpec",
    "PathFinder",
    "SourceFileLoader",
    "SourcelessFileLoader",
    "cache_from_source",
]
