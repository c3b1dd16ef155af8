"""pkg_resources sees the virtual site once the program imports it (setuptools < 81).

vsite never imports pkg_resources. The metadata finder notices the program importing
it and wraps the real spec's loader; after the module has run (and built its
``working_set`` from ``sys.path``, finding nothing on the site's entry, whose finder
type it does not know), :func:`attach` teaches it vsite's path-entry finders:

- a distribution finder for :class:`SiteFinder` yielding the site's distributions as
  ``find_on_path`` yields those of a flat directory (location: the site's entry), and
  ``find_on_path`` itself for a :class:`PortionFinder` (a real directory);
- namespace handlers that give ``declare_namespace`` packages every portion, kept in
  the place of the site's entry when pkg_resources re-sorts ``__path__`` by sys.path;
- the site's distributions added to the already-built ``working_set`` at the site
  entry's place: ahead of later ``sys.path`` entries, behind earlier ones.

Then the module's loader is the standard one again.

The site is the one handed in: the metadata finder that saw the import passes itself
(activation passes its own when pkg_resources was imported before). pkg_resources keeps
what it was taught for good, so every hook answers only while that finder is on
``sys.meta_path``: once its site is deactivated they change nothing, and the next site
to attach replaces them. This module never asks :mod:`vsite.activation`.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

    from vsite.finder.meta_finder import DistributionFinder
    from vsite.finder.path_hook import PortionFinder, SiteFinder

__all__ = ["NAME", "NAMES", "attach", "attach_imported", "find_spec"]

NAME = "pkg_resources"
#: pkg_resources and the copy pip vendors (pip's metadata backend before Python 3.11:
#: pip list, show, uninstall see the site through it).
NAMES = frozenset({NAME, "pip._vendor.pkg_resources"})

_searching: set[int] = set()  # threads inside find_spec (a later finder may import)


def find_spec(
    owner: DistributionFinder,
    path: Sequence[str] | None = None,
    target: ModuleType | None = None,
    name: str = NAME,
) -> ModuleSpec | None:
    """The spec the meta-path finders after ``owner`` give pkg_resources, set to call
    :func:`attach` once the module has run; None when they find nothing."""
    import _thread

    from vsite.finder.after_import import later_spec

    me = _thread.get_ident()
    if me in _searching:
        return None
    _searching.add(me)
    try:
        spec = later_spec(owner, name, path, target)
    finally:
        _searching.discard(me)
    loader = getattr(spec, "loader", None) if spec is not None else None
    if spec is None or not hasattr(loader, "exec_module"):
        return spec
    spec.loader = _AttachingLoader(loader, owner)  # type: ignore[assignment]
    return spec


class _AttachingLoader:
    """The real loader, plus :func:`attach` after the module ran; it puts the real
    loader back on the spec and module, so nothing else ever sees this one."""

    def __init__(self, loader: Any, site: DistributionFinder) -> None:
        self.loader = loader
        self.site = site

    def __getattr__(self, name: str) -> Any:
        if name in ("loader", "site"):  # not set yet: no recursion through the lookup below
            raise AttributeError(name)
        return getattr(self.loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        finally:
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self.loader
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self.loader
        _attach_or_say_why(module, self.site)


def attach_imported(site: DistributionFinder) -> None:
    """:func:`attach` ``site`` to the pkg_resources already imported (before activation)."""
    for name in sorted(NAMES):
        module = sys.modules.get(name)
        if module is not None:
            _attach_or_say_why(module, site)


def _attach_or_say_why(module: ModuleType, site: DistributionFinder) -> None:
    try:
        attach(module, site)
    except Exception as exc:  # the program's pkg_resources must work whatever happens here
        sys.stderr.write(f"vsite: cannot show the site to pkg_resources: {exc!r}\n")


def attach(pkg_resources: ModuleType, site: DistributionFinder) -> None:
    """Teach ``pkg_resources`` vsite's finders for ``site`` (its metadata finder); add the
    site's distributions to its ``working_set``. Safe to call again."""
    from vsite.finder.path_hook import PortionFinder, SiteFinder

    pr: Any = pkg_resources
    if not hasattr(pr, "register_finder") or not hasattr(pr, "register_namespace_handler"):
        return

    def find_in_site(importer: SiteFinder, path_item: str, only: bool = False) -> Iterator[Any]:
        return _site_distributions(pr, site, importer, path_item)

    pr.register_finder(SiteFinder, find_in_site)
    pr.register_finder(PortionFinder, pr.find_on_path)
    pr.register_namespace_handler(SiteFinder, _site_namespace)
    pr.register_namespace_handler(PortionFinder, _portion_namespace)
    _order_portions(pr, site)
    working_set = getattr(pr, "working_set", None)
    if working_set is not None and _live(site):
        _add_site(pr, working_set, site.site_path)


def _live(site: DistributionFinder) -> bool:
    """Whether ``site`` is still installed (its metadata finder on ``sys.meta_path``)."""
    return any(finder is site for finder in sys.meta_path)


# -- distributions ----------------------------------------------------------------------


def _site_distributions(
    pr: Any, site: DistributionFinder, importer: SiteFinder, path_item: str
) -> Iterator[Any]:
    """The site's distributions as ``find_on_path`` makes them for a flat directory."""
    if site.site_path != importer.path or not _live(site):
        return
    location = pr.normalize_path(path_item)
    by_name = {os.path.basename(path): path for path in site.ordered}
    for entry in _flat_order(pr, location, list(by_name)):
        path = by_name[os.path.basename(entry)]
        try:
            if not os.listdir(path):
                continue  # pkg_resources skips an empty metadata directory
        except OSError:
            continue
        metadata = pr.PathMetadata(os.path.dirname(path), path)
        yield pr.Distribution.from_location(
            location, os.path.basename(path), metadata, precedence=pr.DEVELOP_DIST
        )


def _flat_order(pr: Any, location: str, names: list[str]) -> list[str]:
    """``location/name`` paths in the order ``find_on_path`` takes a directory's entries:
    sorted, or by version descending where this pkg_resources still does that."""
    from vsite._compat.setuptools67_find_on_path import by_version_descending

    paths = [os.path.join(location, name) for name in names]
    by_version = by_version_descending(pr)
    return list(by_version(paths)) if by_version is not None else sorted(paths)


def _add_site(pr: Any, working_set: Any, site_path: str) -> None:
    """Add the site's distributions as if ``working_set`` had found them while built.

    A project already listed under an earlier entry keeps that distribution, as it
    would have; one listed under a later entry is replaced.
    """
    entries: list[str] = working_set.entries
    if site_path not in entries:
        if site_path not in sys.path:
            return
        # The set was built before the site was active: give the entry its place.
        after = sys.path[sys.path.index(site_path) + 1 :]
        at = next((n for n, entry in enumerate(entries) if entry in after), len(entries))
        entries.insert(at, site_path)
    listed = working_set.entry_keys.setdefault(site_path, [])
    first: dict[str, int] = {}
    for number, entry in enumerate(entries):
        for key in working_set.entry_keys.get(entry, ()):
            first.setdefault(key, number)
    here = entries.index(site_path)
    for dist in pr.find_distributions(site_path, True):
        if dist.key in listed:
            continue  # added before (attach runs again)
        shown = first.get(dist.key)
        if shown is not None and shown < here:
            continue  # an earlier entry's distribution hides this one
        hidden = working_set.by_key.get(dist.key)
        working_set.add(dist, site_path, False, replace=hidden is not None)
        if hidden is not None:
            # The flat site's set never listed the distribution it hides.
            for entry in (*entries[here + 1 :], hidden.location):
                keys = working_set.entry_keys.get(entry)
                if keys and dist.key in keys and entry not in (site_path, dist.location):
                    keys.remove(dist.key)


# -- namespace packages -------------------------------------------------------------------


def _site_namespace(
    importer: SiteFinder, path_item: str, name: str, module: ModuleType
) -> str | None:
    """Every portion of ``name`` in the site that ``module.__path__`` lacks.

    pkg_resources takes one subpath per path entry; the site's entry stands for
    several directories, so all but the last missing one are appended here.
    """
    union = importer.union
    tail = name.rpartition(".")[2]
    portions = [
        os.path.join(union.portions[number], tail)
        for number, is_dir in union.holders(tail)
        if is_dir
    ]
    missing = _missing(portions, module)
    if not missing:
        return None
    for portion in missing[:-1]:
        module.__path__.append(portion)
    return missing[-1]


def _portion_namespace(
    importer: PortionFinder, path_item: str, name: str, module: ModuleType
) -> str | None:
    """``file_ns_handler`` for one real directory: its subdirectory, if it has one."""
    subpath = os.path.join(path_item, name.rpartition(".")[2])
    if not os.path.isdir(subpath):
        return None  # The spec that let us here may come from another portion.
    missing = _missing([subpath], module)
    return missing[0] if missing else None


def _missing(portions: list[str], module: ModuleType) -> list[str]:
    have = {_normal(p) for p in getattr(module, "__path__", ())}
    return [p for p in portions if _normal(p) not in have]


def _normal(path: str) -> str:
    return os.path.normcase(os.path.realpath(os.path.normpath(path)))


def _order_portions(pr: Any, site: DistributionFinder) -> None:
    """After pkg_resources sorts a namespace ``__path__`` by the sys.path position of
    each portion's base directory, sort ``site``'s portions to the site's position.

    Their base is a root, which is on no sys.path: pkg_resources would put them last,
    behind the interpreter's site-packages, where the flat site's portion is first.
    The wrapper of an earlier attach is replaced: only the newest site is ordered.
    """
    current = getattr(pr, "_rebuild_mod_path", None)
    if current is None:
        return
    original = getattr(current, "__wrapped__", None)
    if original is None:
        original = current
    elif getattr(current, "__module__", None) != __name__:
        return  # someone else's wrapper: leave it alone

    def _rebuild_mod_path(orig_path: list[str], package_name: str, module: ModuleType) -> None:
        original(orig_path, package_name, module)
        if _live(site):
            _site_order(module, package_name, site)

    _rebuild_mod_path.__wrapped__ = original  # type: ignore[attr-defined]
    pr._rebuild_mod_path = _rebuild_mod_path


def _site_order(module: ModuleType, package_name: str, finder: DistributionFinder) -> None:
    site = _normal(finder.site_path)
    bases = {_normal(root): site for root in finder.roots}
    entries = [_normal(entry) for entry in sys.path if isinstance(entry, str)]
    depth = package_name.count(".") + 1
    unknown = len(entries)  # after every entry, as pkg_resources ranks them

    def position(portion: str) -> int:
        base = _normal(os.sep.join(portion.split(os.sep)[:-depth]))
        base = bases.get(base, base)
        return entries.index(base) if base in entries else unknown

    ordered = sorted(module.__path__, key=position)
    if isinstance(module.__path__, list):
        module.__path__[:] = ordered
    else:
        module.__path__ = ordered
