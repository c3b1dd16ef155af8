"""The path-entry hook: claims the virtual site's sys.path entry and union portions.

Any other directory inside a root (or the farm) gets the stdlib's FileFinder with the
site's loaders, so its modules' bytecode is never written into the root either. Every
other path is declined with ImportError, as the protocol asks, so the stdlib's
FileFinder keeps serving ordinary directories.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from importlib.machinery import FileFinder, ModuleSpec
    from types import ModuleType
    from typing import Union  # local annotations: never evaluated

    from vsite.finder.union import UnionDir

__all__ = ["PathHook", "PortionFinder", "Registry", "SiteFinder"]


class Registry:
    """Portion directory path -> (its union, its position), shared by one activation.

    The path hook claims exactly the paths registered here: the directories that take
    part in a union. Every other directory is left to the stdlib's FileFinder.
    """

    __slots__ = ("portions",)

    def __init__(self) -> None:
        self.portions: dict[str, tuple[UnionDir, int]] = {}

    def register(self, union: "UnionDir") -> None:
        for number, path in enumerate(union.portions):
            self.portions[path] = (union, number)


class SiteFinder:
    """Path-entry finder of the virtual site's single sys.path entry: all roots at once."""

    __slots__ = ("_union", "path")

    def __init__(self, path: str, union: "UnionDir | Callable[[], UnionDir]") -> None:
        self.path = path
        self._union = union

    @property
    def union(self) -> "UnionDir":
        """The union of the roots: made (its module imported) by the first lookup, which
        a start that imports nothing from the site never makes."""
        union = self._union
        if callable(union):
            union = self._union = union()
        return union

    def __repr__(self) -> str:
        return f"SiteFinder({self.path!r}, {len(self.union.portions)} roots)"

    def find_spec(self, fullname: str, target: "ModuleType | None" = None) -> "ModuleSpec | None":
        union = self._union
        if callable(union):
            # Until the first name the site holds, a name no root has (``sitecustomize``
            # and ``usercustomize``, looked up at every start) is answered from the
            # index alone, without making the union.
            may_hold = getattr(union, "may_hold", None)
            if may_hold is not None and not may_hold(fullname.rpartition(".")[2]):
                return None
            union = self.union
        return union.find_spec(fullname)

    def invalidate_caches(self) -> None:
        self.union.invalidate()

    def iter_modules(self, prefix: str = "") -> "Iterator[tuple[str, bool]]":
        return self.union.iter_modules(prefix)


class PortionFinder:
    """Path-entry finder of one real directory that is part of a union."""

    __slots__ = ("portion", "union")

    def __init__(self, union: "UnionDir", portion: int) -> None:
        self.union = union
        self.portion = portion

    def __repr__(self) -> str:
        return f"PortionFinder({self.union.portions[self.portion]!r})"

    def find_spec(self, fullname: str, target: "ModuleType | None" = None) -> "ModuleSpec | None":
        return self.union.find_spec(fullname, self.portion)

    def invalidate_caches(self) -> None:
        self.union.invalidate()

    def iter_modules(self, prefix: str = "") -> "Iterator[tuple[str, bool]]":
        return self.union.iter_modules(prefix)


class PathHook:
    """A ``sys.path_hooks`` callable bound to one activation.

    ``owned`` are the roots and the farm: a directory below one of them (a package's
    ``__path__`` entry, a ``.pth`` line's path) is found by a stock FileFinder.
    """

    __slots__ = ("_owned", "registry", "site")

    def __init__(self, site: "SiteFinder", registry: "Registry", owned: "Sequence[str]") -> None:
        self.site = site
        self.registry = registry
        self._owned: Union[Sequence[str], frozenset[str]] = owned

    @property
    def owned(self) -> frozenset[str]:
        """The roots and the farm, as a set made on first use (not at every start)."""
        owned = self._owned
        if not isinstance(owned, frozenset):
            owned = self._owned = frozenset(owned)
        return owned

    def __repr__(self) -> str:
        return f"vsite.PathHook({self.site.path!r})"

    def __call__(self, path: str) -> "SiteFinder | PortionFinder | FileFinder":
        if path == self.site.path:
            return self.site
        claimed = self.registry.portions.get(path)
        if claimed is not None:
            return PortionFinder(*claimed)
        if self._owns(path) and os.path.isdir(path):
            from vsite._machinery import FileFinder
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
