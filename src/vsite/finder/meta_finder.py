"""The meta-path finder that serves the virtual site's distribution metadata.

It finds no modules (the path-entry hook does, in sys.path order); it watches for the
few that vsite adapts once the program imports them (pkg_resources, sysconfig, pip's
uninstaller: :meth:`DistributionFinder.call_after`). Where the site's
entry is its farm, whose view holds every ``*.dist-info`` of the site, importlib.metadata
and the importlib_metadata backport read them from there with their own path scan, as
from a flat directory, and this finder answers nothing. Without a view (no safe
directory for vsite) it answers ``find_distributions`` from the index, by canonical
name, honouring ``Context.name`` and ``Context.path``. Either way it is what
:mod:`vsite.finder.pkg_resources_support` attaches through.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__all__ = ["DistributionFinder"]

#: What vsite.finder.pkg_resources_support attaches to (its NAMES, without importing it).
_PKG_RESOURCES = frozenset({"pkg_resources", "pip._vendor.pkg_resources"})


class DistributionFinder:
    """``find_distributions`` over the site's dist-info directories."""

    __slots__ = ("_shadowed", "by_name", "overlay", "roots", "site_path", "viewed", "waiting")

    def __init__(
        self,
        site_path: str,
        by_name: "Mapping[str, str]",
        roots: "Sequence[str]" = (),
        *,
        overlay: "str | None" = None,
        viewed: bool = False,
    ) -> None:
        self.site_path = site_path
        # The site's entry holds the view: the stdlib's own path scan finds every
        # distribution there, so answering too would list each one twice.
        self.viewed = viewed
        # canonical name -> dist-info path, iterated in site order; the index's
        # mapping, which answers one name without decoding them all.
        self.by_name = by_name
        self.roots = tuple(roots)  # the directories the site's entry stands for
        # An environment's own site-packages, ranked first: the site's distributions of
        # the names it holds are hidden (pip upgraded them there, as in a venv).
        self.overlay = overlay
        self._shadowed: tuple[int, frozenset[str]] = (-1, frozenset())
        # Module name -> what to call once it is imported (see call_after).
        self.waiting: dict[str, Callable[[ModuleType], None]] = {}

    def __repr__(self) -> str:
        return f"vsite.DistributionFinder({self.site_path!r})"

    @property
    def ordered(self) -> tuple[str, ...]:
        """Every dist-info path, in site order."""
        return tuple(self.by_name.values())

    def find_spec(
        self,
        fullname: str,
        path: "Sequence[str] | None" = None,
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        if fullname in _PKG_RESOURCES:
            # The program imports pkg_resources (or pip its copy): show it this site
            # once it has run.
            from vsite.finder import pkg_resources_support

            return pkg_resources_support.find_spec(self, path, target, fullname)
        if fullname in self.waiting:
            from vsite.finder.after_import import spec_then_call

            callback = self.waiting.pop(fullname)
            return spec_then_call(self, fullname, path, target, callback)
        return None  # Modules come through the path hook, so sys.path order holds.

    def call_after(self, name: str, callback: "Callable[[ModuleType], None]") -> None:
        """``callback(module)`` now if module ``name`` is imported, else right after it
        is (:mod:`vsite.finder.after_import`), while this finder is on sys.meta_path."""
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
        else:
            self.waiting[name] = callback

    def invalidate_caches(self) -> None:
        pass

    def find_distributions(self, context: object = None) -> "Iterator[object]":
        if self.viewed:
            return iter(())
        if context is None:
            from importlib.metadata import DistributionFinder as _Finder

            context = _Finder.Context()
        if self.site_path not in getattr(context, "path", ()):
            return iter(())
        name = getattr(context, "name", None)
        shadowed = self.shadowed()
        if name is None:
            found: Iterable[str] = self.ordered
            if shadowed:
                hidden = {self.by_name[n] for n in shadowed if n in self.by_name}
                found = [path for path in self.ordered if path not in hidden]
        else:
            from vsite._names import canonicalize

            wanted = canonicalize(name)
            hit = None if wanted in shadowed else self.by_name.get(wanted)
            found = (hit,) if hit is not None else ()
        # The caller's own module (stdlib importlib.metadata or the importlib_metadata
        # backport) makes the distribution objects, so each API gets its own types.
        api = sys.modules[type(context).__module__]
        path_distribution = api.PathDistribution
        import pathlib

        return (path_distribution(pathlib.Path(path)) for path in found)

    def shadowed(self) -> frozenset[str]:
        """Canonical names of the distributions the overlay holds (one stat a call)."""
        if self.overlay is None:
            return frozenset()
        import os

        try:
            mtime = os.stat(self.overlay).st_mtime_ns
        except OSError:
            return frozenset()
        if mtime != self._shadowed[0]:
            from vsite._names import canonicalize

            names = frozenset(
                canonicalize(entry.rpartition(".")[0].rpartition("-")[0] or entry)
                for entry in os.listdir(self.overlay)
                if entry.endswith((".dist-info", ".egg-info"))
            )
            self._shadowed = (mtime, names)
        return self._shadowed[1]
