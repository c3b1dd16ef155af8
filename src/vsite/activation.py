"""activate()/deactivate(): install the virtual site as one transaction, undo it exactly."""

import _thread
import os
import sys

from vsite.finder.meta_finder import DistributionFinder
from vsite.finder.path_hook import PathHook, Registry, SiteFinder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import ModuleType
    from typing import Optional  # local annotations: never evaluated

    from vsite.finder.union import UnionDir
    from vsite.index import SiteIndex
    from vsite.manifest import Manifest
    from vsite.native.farm import Farm, FarmPlan

__all__ = ["Handle", "activate", "activate_with_overlay", "active", "deactivate"]

#: pip's module holding UninstallPathSet (see vsite.finder.pip_guard).
_PIP_UNINSTALLER = "pip._internal.req.req_uninstall"
_lock = _thread.RLock()  # threading would import functools, collections: ~5 ms
_active: "Handle | None" = None


class Handle:
    """An active virtual site: what was installed, so it can be taken out again."""

    def __init__(
        self, index: "SiteIndex", farm: "Farm | _HeldFarm | None", overlay: "str | None" = None
    ) -> None:
        self.index = index
        self.farm = farm
        # An environment's own site-packages (pip install, pip install -e .): it ranks
        # before the site, as what pip installs last replaces what was there in a venv.
        self.overlay = overlay
        # The farm is the site's sys.path entry: code that globs sys.path for
        # nvidia/*/lib finds the staged libraries there, and tools that read directories
        # see the site as one flat directory (its view). Without one (no safe directory
        # for vsite), a path nothing is at.
        self.site_path = farm.path if farm is not None else _site_path(index)
        self.path_hook: Optional[PathHook] = None
        self.meta_finder: Optional[DistributionFinder] = None
        self._added_path: list[str] = []
        self._added_meta: list[object] = []
        self._added_hooks: list[Callable[[str], object]] = []
        self._watching = False  # sysconfig's install schemes may have been registered

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<vsite.Handle {self.index.source!r} {state}, {len(self.roots)} roots>"

    @property
    def manifest(self) -> "Manifest":
        """The active manifest (decoded on first use: a start needs only its path)."""
        return self.index.manifest

    @property
    def roots(self) -> tuple[str, ...]:
        """The roots in use, in manifest order (roots dropped as duplicates excluded)."""
        return self.index.roots

    @property
    def active(self) -> bool:
        return _active is self

    def deactivate(self, *, purge: bool = False) -> None:
        """Take this site out of the interpreter (see :func:`deactivate`)."""
        with _lock:
            global _active
            if _active is not self:
                return
            self._uninstall()
            if purge:
                self._purge()
            _active = None

    # -- internals ---------------------------------------------------------------

    def _install(self) -> None:
        registry = Registry()
        index = self.index
        portions, entries, pinned = index.roots, index.entries, {}
        farm_mtime = None
        if self.farm is not None:
            # Staged names resolve to the farm only: one more portion, pinned to them.
            farm_number = len(portions)
            portions = (*portions, self.farm.path)
            farm_mtime = os.stat(self.farm.path).st_mtime_ns
            for name in self.farm.staged:
                holders = entries.get(name)
                if holders:
                    pinned[name] = [(farm_number, holders[0][1])]
        union = _UnionOfRoots(portions, registry, entries, _Mtimes(index, farm_mtime), pinned)
        site = SiteFinder(self.site_path, union)
        owned = (*index.roots, *(() if self.farm is None else (self.farm.path,)))
        self.path_hook = PathHook(site, registry, owned)
        self.meta_finder = DistributionFinder(
            self.site_path,
            self.index.dists,
            index.roots,
            overlay=self.overlay,
            viewed=self.farm is not None,
        )
        before_path = list(sys.path)
        before_meta = list(sys.meta_path)
        before_hooks = list(sys.path_hooks)

        sys.path_hooks.insert(0, self.path_hook)
        sys.path_importer_cache.pop(self.site_path, None)
        sys.path.insert(self._position(), self.site_path)
        sys.meta_path.insert(_metadata_position(), self.meta_finder)
        self._patch_getsitepackages()
        self._watch_imports()
        if index.held:
            from vsite.store_holds import hold

            hold(index.held)  # vsite store gc keeps what this process uses
        if self.index.pth:  # most sites have none: not even the module is loaded
            from vsite.pth import run_pth_files

            run_pth_files(self.index.pth, self.site_path, lambda: self.manifest)
        if "pkg_resources" in sys.modules or "pip._vendor.pkg_resources" in sys.modules:
            # imported before: show it the site now
            from vsite.finder.pkg_resources_support import attach_imported

            attach_imported(self.meta_finder)

        self._added_path = [p for p in sys.path if p not in before_path]
        self._added_meta = [f for f in sys.meta_path if f not in before_meta]
        self._added_hooks = [h for h in sys.path_hooks if h not in before_hooks]

    def _reattach(self) -> None:
        """Put back pieces that were taken out from under an active site.

        Code that replaces ``sys.path`` wholesale with an older copy (pytest-xdist
        workers do) drops the site's entry; activating again must restore it.
        """
        if self.path_hook is not None and self.path_hook not in sys.path_hooks:
            sys.path_hooks.insert(0, self.path_hook)
        if self.site_path not in sys.path:
            sys.path_importer_cache.pop(self.site_path, None)
            sys.path.insert(self._position(), self.site_path)
        if self.meta_finder is not None and self.meta_finder not in sys.meta_path:
            sys.meta_path.insert(_metadata_position(), self.meta_finder)

    def _watch_imports(self) -> None:
        """Adapt sysconfig and pip when (if ever) the program imports them."""
        watch = self.meta_finder
        assert watch is not None  # installed just before
        roots, source = self.index.roots, self.index.source
        # pip's pkg_resources backend (before 3.11) locates the site's distributions at
        # its sys.path entry (the farm): guarded like the roots.
        guarded = (*roots, self.site_path)

        def schemes(module: "ModuleType") -> None:
            from vsite.finder.install_schemes import register_schemes

            register_schemes(module, roots)

        def pip(module: "ModuleType") -> None:
            from vsite.finder.pip_guard import guard  # logging: only where pip runs

            guard(module, guarded, source)

        self._watching = True
        watch.call_after("sysconfig", schemes)
        if sys.prefix == sys.base_prefix:
            # In a venv (an environment shell included) pip's own rule already leaves
            # what is outside sys.prefix alone: no watcher stays on every import for it.
            watch.call_after(_PIP_UNINSTALLER, pip)

    def _position(self) -> int:
        """Where the site's entry goes: just after the overlay, else where ``site`` puts
        site-packages."""
        if self.overlay is not None and self.overlay in sys.path:
            return sys.path.index(self.overlay) + 1
        return _site_position()

    def _patch_getsitepackages(self) -> None:
        """``site.getsitepackages()`` also lists the virtual site and its roots, where a
        venv's lists the one directory holding every package: tools locate wheel files
        and tell library code from the user's by it (debuggers' "just my code").
        ``sysconfig``'s default scheme is left alone so installers never target them
        (see :mod:`vsite.finder.install_schemes` for its extra ones)."""
        import site

        original = getattr(site, "getsitepackages", None)
        if original is None:
            return
        site_path, roots = self.site_path, self.index.roots
        # site.addsitepackages() itself adds what this lists with addsitedir(): when it
        # runs after activation (an environment's .pth activates from inside its venv
        # step, and site.main() calls it again), the roots must not become sys.path
        # entries: that is the naive layout.
        own_caller = getattr(getattr(site, "addsitepackages", None), "__code__", None)

        def getsitepackages(prefixes: "Iterable[str] | None" = None) -> list[str]:
            found = list(original(prefixes))
            if sys._getframe(1).f_code is own_caller:
                return found
            found += [path for path in (site_path, *roots) if path not in found]
            return found

        getsitepackages.__wrapped__ = original  # type: ignore[attr-defined]
        getsitepackages.__doc__ = original.__doc__
        site.getsitepackages = getsitepackages
        self._site_original = original

    def _uninstall(self) -> None:
        if self._watching:
            self._watching = False
            if self.meta_finder is not None:
                self.meta_finder.waiting.clear()
            from vsite.finder.install_schemes import unregister_schemes

            unregister_schemes()
        original = getattr(self, "_site_original", None)
        if original is not None:
            import site

            site.getsitepackages = original
            self._site_original = None
        added_path = set(self._added_path)
        sys.path[:] = [p for p in sys.path if p not in added_path]
        sys.meta_path[:] = [f for f in sys.meta_path if f not in self._added_meta]
        sys.path_hooks[:] = [h for h in sys.path_hooks if h not in self._added_hooks]
        owned = self._prefixes()
        for key in list(sys.path_importer_cache):
            if key in added_path or _under(key, owned):
                sys.path_importer_cache.pop(key, None)

    def _prefixes(self) -> tuple[str, ...]:
        return tuple(os.path.join(p, "") for p in (*self.index.roots, self.site_path))

    def _purge(self, keep: frozenset[str] = frozenset()) -> None:
        owned = self._prefixes()
        # Decide for every module before removing any: a namespace package's path
        # recalculates through its parent, which must still be importable then.
        doomed = [
            name
            for name, module in list(sys.modules.items())
            if name not in keep and _module_from(module, owned)
        ]
        for name in doomed:
            sys.modules.pop(name, None)


def activate(
    manifest: "Manifest | str | os.PathLike[str]", *, link: "str | None" = None
) -> "Handle":
    """Make ``manifest``'s roots importable as one site-packages; return its handle.

    All-or-nothing: the manifest and every root are validated before any global state
    changes, and a failure restores ``sys.path``, ``sys.meta_path``, ``sys.path_hooks``
    and ``sys.path_importer_cache``. Activating the active manifest again returns the
    same handle (restoring its ``sys.path`` entry if something removed it). ``link``
    picks how native files enter the farm: "symlink", "hardlink", "copy", or
    None/"auto" for ``$VSITE_LINK_MODE`` or the platform's default.
    """
    return activate_with_overlay(manifest, link=link, overlay=None)


def activate_with_overlay(
    manifest: "Manifest | str | os.PathLike[str]", *, link: "str | None", overlay: "str | None"
) -> "Handle":
    """:func:`activate`, with ``overlay`` (an environment's own site-packages, already
    on ``sys.path``) ranked before the site: its modules by ``sys.path`` order, its
    distributions by hiding the site's of the same name (environment shells)."""
    global _active
    if isinstance(manifest, (str, os.PathLike)):
        from vsite.index_cache import load_or_build

        index = load_or_build(os.path.abspath(os.fspath(manifest)))
    else:
        from vsite.index import build_index

        index = build_index(manifest)
    source = index.source
    with _lock:
        if _active is not None:
            if _active.index.same_manifest(index):
                _active._reattach()
                return _active
            from vsite.errors import ActivationError

            raise ActivationError(
                f"another manifest is active ({_active.index.source}); deactivate it first",
                manifest=source,
            )
        farm = farm_for(index, link)
        handle = Handle(index, farm, overlay)
        snapshot = (
            list(sys.path),
            list(sys.meta_path),
            list(sys.path_hooks),
            dict(sys.path_importer_cache),
        )
        modules_before = frozenset(sys.modules)
        try:
            handle._install()
        except BaseException as exc:
            handle._uninstall()
            handle._purge(keep=modules_before)  # what .pth lines imported from the site
            sys.path[:], sys.meta_path[:], sys.path_hooks[:] = snapshot[:3]
            sys.path_importer_cache.clear()
            sys.path_importer_cache.update(snapshot[3])
            from vsite.errors import ActivationError, VsiteError

            if isinstance(exc, VsiteError):
                raise
            if isinstance(exc, Exception):
                raise ActivationError(f"activation failed: {exc!r}", manifest=source) from exc
            raise
        _active = handle
        return handle


class _UnionOfRoots:
    """Makes the site's :class:`UnionDir` when a lookup first needs it."""

    __slots__ = ("args", "entries")

    def __init__(
        self,
        portions: tuple[str, ...],
        registry: "Registry",
        entries: "Mapping[str, list[tuple[int, bool]]]",
        mtimes: "_Mtimes",
        pinned: dict[str, list[tuple[int, bool]]],
    ) -> None:
        self.entries = entries
        self.args = (portions, registry, entries, mtimes, pinned)

    def __call__(self) -> "UnionDir":
        from vsite.finder.union import UnionDir

        return UnionDir(*self.args)

    def may_hold(self, name: str) -> bool:
        """False when no root holds anything named ``name`` (any suffix): the index
        answers without the union (pinned names are in it too)."""
        group = getattr(self.entries, "get_group", None)
        return group is None or bool(group(name))


class _Mtimes:
    """The roots' mtimes when the index was built (and the farm's), decoded only when
    ``importlib.invalidate_caches()`` first asks whether they changed."""

    __slots__ = ("farm", "index")

    def __init__(self, index: "SiteIndex", farm: "int | None") -> None:
        self.index = index
        self.farm = farm

    def __call__(self) -> tuple[int, ...]:
        mtimes = tuple(self.index.mtimes)
        return mtimes if self.farm is None else (*mtimes, self.farm)


def deactivate(*, purge: bool = False) -> None:
    """Undo the active site: its sys.path entries, finders and hooks are removed.

    Modules already imported stay in ``sys.modules`` unless ``purge`` is true, which
    removes every module loaded from the site's roots. No-op when nothing is active.
    """
    handle = _active
    if handle is not None:
        handle.deactivate(purge=purge)


def active() -> "Handle | None":
    """The active handle, if any."""
    return _active


def farm_for(index: "SiteIndex", link: "str | None") -> "Farm | _HeldFarm | None":
    """The site's farm (made if need be): its native code staged, the rest viewed.

    None only for a site without native code where the farm cannot be made (no safe
    directory for vsite, symlinks refused, a full disk): it then runs without a view,
    its entry a path nothing is at, its metadata from vsite's finder.
    """
    from vsite._paths import state_dir

    if index.native:
        base = state_dir("farms")
    else:
        try:
            base = state_dir("farms")
        except OSError:  # FarmError is one: nothing to stage, so no view is no failure
            return None
    cached = index.plans.get("symlink") if link is None else None
    if cached is not None and not os.environ.get("VSITE_LINK_MODE") and _symlinks_by_default():
        warm = _held_intact(base, cached, index.changing)
        if warm is not None:
            return warm
    from vsite.native.farm import FarmPlan, ensure_farm, plan_farm, resolve_link_mode

    mode = resolve_link_mode(link)

    def replan() -> "FarmPlan":
        return plan_farm(index.roots, index.native, mode, index.entries)

    cached = index.plans.get(mode)
    plan = None
    if cached is not None:
        try:
            plan = FarmPlan.from_data(cached)
        except ValueError:  # not a saved plan's shape (a damaged index): planned again
            cached = None
    if plan is None:
        plan = replan()
    try:
        farm = ensure_farm(plan, base, replan=replan)
    except OSError:  # FarmError is one
        if index.native:
            raise
        return None  # nothing to stage (links refused, a full disk): the site, no view
    if cached is None or farm.plan.key() != plan.key():
        from vsite.index_write import remember_plan

        remember_plan(index, mode, farm.plan.to_data())
    return farm


def _symlinks_by_default() -> bool:
    """Whether the platform's link mode is symlink: ``vsite.native.farm``'s
    ``resolve_link_mode("auto")``, without loading that module at start."""
    return sys.platform not in ("darwin", "win32")


class _HeldFarm:
    """A farm found intact at start: what activation needs of it, without the builder."""

    __slots__ = ("_saved", "created", "path", "staged")

    def __init__(self, path: str, staged: "tuple[str, ...]", saved: "tuple[object, ...]") -> None:
        self.path = path
        self.staged = staged
        self.created = False
        self._saved = saved

    @property
    def plan(self) -> "FarmPlan":
        """The farm's saved plan (its native part and key), decoded when asked for."""
        from vsite.native.farm import FarmPlan

        return FarmPlan.from_data(self._saved)


def _held_intact(
    base: str, saved: "tuple[object, ...]", changing: "tuple[str, ...] | None"
) -> "_HeldFarm | None":
    """The symlink farm of the saved plan ``saved`` (the index's), held, if it is there
    and intact: the warm start, which loads nothing of the farm's builder. ``changing``:
    the roots whose links are checked one by one (see ``_farm_lock.hold_intact``)."""
    from vsite._farm_lock import hold_intact, saved_farm_key

    key = saved_farm_key(saved)
    if key is None:
        return None
    staged, _mode, dirs, top, links, _key = saved
    if type(staged) is not tuple or type(links) is not bytes:
        return None

    path = os.path.join(base, key)
    if not hold_intact(path, key, (dirs, top, links), changing):  # type: ignore[arg-type]
        return None
    return _HeldFarm(path, staged, saved)


def _site_path(index: "SiteIndex") -> str:
    """The virtual site's sys.path entry: a path nothing is at.

    importlib.metadata and pkg_resources read every sys.path entry from disk, so it
    lies in vsite's private directory, where no other user can create it; never in a
    shared base that was refused (another user's metadata would join the site's).
    """
    from vsite._paths import short_hash, state_dir

    if os.path.isabs(index.source):
        # Named after the manifest file: a short text, hashed without loading zlib
        # (the boot path always has a file).
        number = short_hash(index.source)
    else:
        # A manifest made in code may have no file: its roots name it, and thousands of
        # root paths are too long for a hash in pure Python.
        import zlib

        key = "\0".join(root.path for root in index.manifest.roots)
        number = zlib.crc32(key.encode("utf-8", "surrogateescape"))
    try:
        base = state_dir()
    except OSError:  # no safe per-user directory: nothing can exist below a device file
        base = os.devnull
    return os.path.join(base, f"site-{number:08x}")


def _site_position() -> int:
    """Where ``site`` would put site-packages: before the first site dir on sys.path."""
    import site

    getsitepackages = getattr(site, "getsitepackages", None)
    candidates = [] if getsitepackages is None else list(getsitepackages())
    if getsitepackages is not None and sys.prefix != sys.base_prefix:
        # A venv's .pth runs before site.PREFIXES names the venv (environment shells
        # boot from one): its own site-packages come from sys.prefix, already the venv's.
        candidates += getsitepackages([sys.prefix])
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    wanted = {os.path.normcase(os.path.abspath(c)) for c in candidates}
    for position, entry in enumerate(sys.path):
        if isinstance(entry, str) and os.path.normcase(os.path.abspath(entry)) in wanted:
            return position
    return len(sys.path)


def _metadata_position() -> int:
    """Just before PathFinder: our distributions precede those of site-packages."""
    # The frozen module PathFinder lives in is loaded in every interpreter;
    # vsite._machinery (the same object) would be one more module at every start.
    PathFinder = getattr(sys.modules.get("_frozen_importlib_external"), "PathFinder", None)
    if PathFinder is None:
        from vsite._machinery import PathFinder

    for position, finder in enumerate(sys.meta_path):
        if finder is PathFinder:
            return position
    return len(sys.meta_path)


def _under(path: object, prefixes: tuple[str, ...]) -> bool:
    return isinstance(path, str) and os.path.join(path, "").startswith(prefixes)


def _module_from(module: "ModuleType", prefixes: tuple[str, ...]) -> bool:
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return _under(getattr(module, "__file__", None), prefixes)
    if spec.origin is not None and _under(spec.origin, prefixes):
        return True
    try:
        locations = list(spec.submodule_search_locations or ())
    except Exception:  # A namespace path whose parent is gone cannot recalculate.
        return False
    return bool(locations) and all(_under(p, prefixes) for p in locations)
