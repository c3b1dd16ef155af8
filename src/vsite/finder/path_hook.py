"""The path-entry hook: claims the virtual site's sys.path entry and union portions.

Any other directory inside a root (or the farm) gets the stdlib's FileFinder with the
site's loaders, so its modules' bytecode is never written into the root either. Every
other path is declined with ImportError, as the protocol asks, so the stdlib's
FileFinder keeps serving ordinary directories.
"""

from __future__ import annotations

import os

from vsite._machinery import FileFinder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from vsite.finder.union import Registry, UnionDir

__all__ = ["PathHook", "PortionFinder", "SiteFinder"]


class SiteFinder:
    """Path-entry finder of the virtual site's single sys.path entry: all roots at once."""

    __slots__ = ("path", "union")

    def __init__(self, path: str, union: UnionDir) -> None:
        self.path = path
        self.union = union

    def __repr__(self) -> str:
        return f"SiteFinder({self.path!r}, {len(self.union.portions)} roots)"

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        return self.union.find_spec(fullname)

    def invalidate_caches(self) -> None:
        self.union.invalidate()

    def iter_modules(self, prefix: str = "") -> Iterator[tuple[str, bool]]:
        return self.union.iter_modules(prefix)


class PortionFinder:
    """Path-entry finder of one real directory that is part of a union."""

    __slots__ = ("portion", "union")

    def __init__(self, union: UnionDir, portion: int) -> None:
        self.union = union
        self.portion = portion

    def __repr__(self) -> str:
        return f"PortionFinder({self.union.portions[self.portion]!r})"

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        return self.union.find_spec(fullname, self.portion)

    def invalidate_caches(self) -> None:
        self.union.invalidate()

    def iter_modules(self, prefix: str = "") -> Iterator[tuple[str, bool]]:
        return self.union.iter_modules(prefix)


class PathHook:
    """A ``sys.path_hooks`` callable bound to one activation.

    ``owned`` are the roots and the farm: a directory below one of them (a package's
    ``__path__`` entry, a ``.pth`` line's path) is found by a stock FileFinder.
    """

    __slots__ = ("_owned", "registry", "site")

    def __init__(self, site: SiteFinder, registry: Registry, owned: Sequence[str]) -> None:
        self.site = site
        self.registry = registry
        self._owned: Sequence[str] | frozenset[str] = owned

    @property
    def owned(self) -> frozenset[str]:
        """The roots and the farm, as a set made on first use (not at every start)."""
        owned = self._owned
        if not isinstance(owned, frozenset):
            owned = self._owned = frozenset(owned)
        return owned

    def __repr__(self) -> str:
        return f"vsite.PathHook({self.site.path!r})"

    def __call__(self, path: str) -> SiteFinder | PortionFinder | FileFinder:
        if path == self.site.path:
            return self.site
        claimed = self.registry.portions.get(path)
        if claimed is not None:
            return PortionFinder(*claimed)
        if self._owns(path) and os.path.isdir(path):
            from vsite.finder.union import LOADER_KINDS

            return FileFinder(path, *LOADER_KINDS)
        raise ImportError("not a vsite path", path=path)

    def _owns(self, path: str) -> bool:
        """Whether ``path`` lies in a root or the farm: O(depth), whatever the roots."""
        owned = self.owned
        parent = os.path.dirname(path)
        while parent != path:
            if path in owned:
                return True
            path, parent = parent, os.path.dirname(parent)
        return False
