"""A directory seen as the union of same-named directories in several roots.

This is where flat-directory precedence is decided for one level of the tree: a
package (``__init__`` + suffix, FileFinder's suffix order, first root that has it) beats
a module file (first suffix in loader order, first root that has it) beats a namespace
directory; a name found in the stdlib's FileFinder for one directory is found here for
the union of all portions, and with the same kind.
"""

import os

from vsite._fs import mtime_ns
from vsite._machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    ModuleSpec,
    SourcelessFileLoader,
)
from vsite.finder.bytecode import CachingSourceLoader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from importlib.abc import FileLoader, Loader
    from typing import Any

    from vsite.finder.path_hook import Registry

__all__ = ["LOADERS", "LOADER_KINDS", "UnionDir"]


#: (loader class, its suffixes) in the order FileFinder tries them: the stdlib's own,
#: with SourceFileLoader replaced by the one that moves only where bytecode lives.
LOADER_KINDS: "tuple[tuple[Any, list[str]], ...]" = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (CachingSourceLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)


def _loaders() -> "tuple[tuple[str, type[FileLoader]], ...]":
    return tuple((suffix, loader) for loader, suffixes in LOADER_KINDS for suffix in suffixes)


#: (suffix, loader class) in the order FileFinder tries them.
LOADERS = _loaders()


class UnionDir:
    """One logical directory made of ``portions`` (real directories, in manifest order)."""

    __slots__ = ("_children", "_entries", "_mtimes", "pinned", "portions", "registry")

    def __init__(
        self,
        portions: tuple[str, ...],
        registry: "Registry",
        entries: "Mapping[str, list[tuple[int, bool]]] | None" = None,
        mtimes: "tuple[int, ...] | Callable[[], tuple[int, ...]] | None" = None,
        pinned: "dict[str, list[tuple[int, bool]]] | None" = None,
    ) -> None:
        self.portions = portions
        self.registry = registry
        self._entries = entries
        self._mtimes = mtimes
        # Names whose holders are fixed whatever a rescan finds: the staged native
        # entries, which must always resolve to the farm.
        self.pinned = pinned or {}
        self._children: dict[str, UnionDir] = {}

    # -- listing ---------------------------------------------------------------

    def entries(self) -> "Mapping[str, list[tuple[int, bool]]]":
        """Every name of the union (``pinned`` included): what listings iterate."""
        entries = self._listing()
        return {**entries, **self.pinned} if self.pinned else entries

    def holders(self, name: str) -> list[tuple[int, bool]]:
        """[(portion, is a directory)] of the portions holding ``name``: one lookup."""
        found = self.pinned.get(name) if self.pinned else None
        if found is None:
            found = self._listing().get(name)
        return found or []

    def _listing(self) -> "Mapping[str, list[tuple[int, bool]]]":
        entries = self._entries
        if entries is None:
            entries, mtimes = _scan_portions(self.portions)
            self._entries, self._mtimes = entries, mtimes
        return entries

    def invalidate(self) -> None:
        """Forget listings of portions whose directory changed since they were read."""
        if self._entries is None:
            return
        mtimes = self._mtimes
        if callable(mtimes):  # the index's, decoded only now
            mtimes = self._mtimes = mtimes()
        current = tuple(mtime_ns(path) for path in self.portions)
        if current != mtimes:
            self._entries = None
            self._children.clear()

    # -- resolution --------------------------------------------------------------

    def find_spec(self, fullname: str, portion: "int | None" = None) -> "ModuleSpec | None":
        """The spec of ``fullname`` (a direct child) in the union, as FileFinder would.

        ``portion`` is the asking path entry's position: a namespace result then holds
        only that portion's directory, because PathFinder gathers namespace portions
        entry by entry. ``None`` means one entry stands for the whole union.
        """
        tail = fullname.rpartition(".")[2]
        holders = self.holders
        dirs = [number for number, is_dir in holders(tail) if is_dir]
        if dirs:
            spec = self._package_spec(fullname, tail, dirs)
            if spec is not None:
                return spec
        for suffix, loader_class in LOADERS:
            for number, is_dir in holders(tail + suffix):
                if not is_dir:
                    path = os.path.join(self.portions[number], tail + suffix)
                    if not os.path.isfile(path):
                        # One stat, as FileFinder spends on its directory per lookup.
                        raise self._gone_error(fullname, path, number)
                    return _file_spec(fullname, path, loader_class(fullname, path))
        if not dirs:
            return None
        if portion is None:
            numbers = dirs
        elif portion in dirs:
            numbers = [portion]
        else:
            return None
        # A namespace portion costs one stat, as FileFinder's isdir check does; a listed
        # directory gone from its root must not import as an empty namespace package.
        locations = [
            os.path.join(self.portions[n], tail)
            for n in numbers
            if os.path.isdir(os.path.join(self.portions[n], tail))
        ]
        if not locations:
            first = numbers[0]
            raise _gone(fullname, os.path.join(self.portions[first], tail), self.portions[first])
        self._child(tail, dirs)
        spec = ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = locations
        return spec

    def _package_spec(self, fullname: str, tail: str, dirs: list[int]) -> "ModuleSpec | None":
        locations = [os.path.join(self.portions[n], tail) for n in dirs]
        for suffix, loader_class in LOADERS:
            init = "__init__" + suffix
            for location in locations:
                origin = os.path.join(location, init)
                if os.path.isfile(origin):
                    if len(locations) > 1:
                        # Only a regular package split over roots needs it: load it then.
                        from vsite.finder.resources import union_loader_class

                        self._child(tail, dirs)
                        loader: Loader = union_loader_class(loader_class)(
                            fullname, origin, tuple(locations)
                        )
                    else:
                        loader = loader_class(fullname, origin)
                    return _file_spec(fullname, origin, loader, locations)
                if tail in self.pinned and os.path.islink(origin):
                    # The farm's link to a staged package's __init__ dangles: its root
                    # changed. Going on would import the farm directory as an empty
                    # namespace package.
                    raise self._gone_error(fullname, origin, dirs[0])
        return None

    def _gone_error(self, fullname: str, path: str, number: int) -> ImportError:
        """The ImportError for ``path`` (in portion ``number``) gone since the listing; for
        a farm link, the root file it pointed at and that root are named."""
        portion = self.portions[number]
        if os.path.islink(path):
            path = os.readlink(path)
            portion = next(
                (p for p in self.portions if path.startswith(os.path.join(p, ""))), portion
            )
        return _gone(fullname, path, portion)

    def _child(self, tail: str, dirs: list[int]) -> None:
        """Register the union of ``tail``'s directories when more than one root has it."""
        if len(dirs) < 2 or tail in self._children:
            return
        child = UnionDir(tuple(os.path.join(self.portions[n], tail) for n in dirs), self.registry)
        self._children[tail] = child
        self.registry.register(child)

    # -- listing for pkgutil ---------------------------------------------------------

    def iter_modules(self, prefix: str = "") -> "Iterator[tuple[str, bool]]":
        """What pkgutil's FileFinder walk yields for the flat directory, in its order."""
        import inspect  # pkgutil imports it for the same job; never on the boot path.

        entries = self.entries()
        yielded: set[str] = set()
        for filename in sorted(entries):
            modname = inspect.getmodulename(filename)
            if modname == "__init__" or modname in yielded:
                continue
            ispkg = False
            dirs = [n for n, is_dir in entries[filename] if is_dir]
            if not modname and dirs and "." not in filename:
                modname = filename
                ispkg = any(
                    inspect.getmodulename(name) == "__init__"
                    for n in dirs
                    for name in _listdir(os.path.join(self.portions[n], filename))
                )
                if not ispkg:
                    continue
            if modname and "." not in modname:
                yielded.add(modname)
                yield prefix + modname, ispkg


def _gone(fullname: str, path: str, portion: str) -> ImportError:
    return ImportError(
        f"cannot import {fullname!r}: {path} is gone (root directory {portion} changed after "
        "the site's index was read: importlib.invalidate_caches() rescans it; a root in a "
        "vsite store or declared immutable is not looked at again, and `vsite check` "
        "reports what changed in it)",
        name=fullname,
        path=path,
    )


def _file_spec(
    fullname: str, origin: str, loader: "Loader", locations: "list[str] | None" = None
) -> ModuleSpec:
    """What importlib.util.spec_from_file_location builds, without importing importlib.util
    (its contextlib/collections/functools imports cost ~8 ms at start-up)."""
    spec = ModuleSpec(fullname, loader, origin=origin)
    spec.has_location = True  # __file__ and __cached__ come from origin, as for FileFinder
    if locations is not None:
        spec.submodule_search_locations = locations
    return spec


def _scan_portions(
    portions: tuple[str, ...],
) -> tuple[dict[str, list[tuple[int, bool]]], tuple[int, ...]]:
    entries: dict[str, list[tuple[int, bool]]] = {}
    mtimes = []
    for number, path in enumerate(portions):
        mtimes.append(mtime_ns(path))
        try:
            with os.scandir(path) as listing:
                for entry in listing:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    entries.setdefault(entry.name, []).append((number, is_dir))
        except OSError:
            continue  # A vanished or unreadable portion holds nothing, as for FileFinder.
    return entries, tuple(mtimes)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
