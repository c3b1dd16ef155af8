"""The farm: the site's sys.path entry, a flat site-packages made of links.

It has two parts. The native part stages the top-level entries that hold shared
objects so relative rpaths resolve (below). The view part links every other top-level
entry of the site (packages, modules, ``*.dist-info``) at the coarsest level that stays
correct: one link where one root has the name, a real directory merged entry by entry
where several roots share it (namespace and split packages), first root winning. Tools
that read directories instead of importing (type checkers, completion, pipdeptree,
``importlib.metadata``'s own path scan) so see the site as one flat directory; imports
still resolve through the path hook, from the roots. The view's links are not checked at
start: they follow the index, whose freshness covers the roots they point into.

glibc takes ``$ORIGIN`` from the path as opened (symlinks kept), but the kernel
resolves ``..`` physically: a directory symlink on the way breaks ``$ORIGIN/..``. So
every directory down to one holding a shared object is a REAL directory in the farm;
files are links; a subtree with no shared object that comes from a single root is one
directory link. Directories present in several roots (``nvidia/cu13/lib`` filled by
eleven wheels) are merged file by file, first root winning.

A farm is content-addressed by its plan: the same staged set maps to the same farm,
built in a temporary sibling and renamed into place, so processes share it safely;
each holds it for its lifetime (:mod:`vsite._farm_lock`), so ``vsite gc``
(:mod:`vsite.native.gc`) removes only farms nobody uses.
"""

from __future__ import annotations

import marshal
import os
import sys

from vsite._farm_lock import (
    LOCK,
    MARKER,
    acquire,
    links_intact,
    marker_text,
    open_shared,
    release,
    resolves,
    take_over,
    write_marker,
)
from vsite._record import Record
from vsite.errors import FarmError
from vsite.native.detect import is_shared_object

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "LINK_MODES",
    "LOCK",
    "MARKER",
    "Farm",
    "FarmPlan",
    "ensure_farm",
    "plan_farm",
    "resolve_link_mode",
]

ENV_LINK = "VSITE_LINK_MODE"
#: 2: farms carry a lock file (in-use signal for collect_garbage); 3: the view; 4: the
#: marker records the directories' mtimes (an older vsite would read it as another key)
_FORMAT = "4"
#: Top-level entries the view leaves out: bytecode, and .pth files (vsite runs them; the
#: view is never a site directory that ``site`` would process).
_NOT_VIEWED = ("__pycache__",)


def _hardlink(target: str, dest: str) -> None:
    try:
        os.link(target, dest)
    except OSError:  # another device, or links refused: a copy still works
        _copy(target, dest)


def _copy(target: str, dest: str) -> None:
    import shutil  # not at start-up: the default mode links

    shutil.copy2(target, dest)


def _same_size_and_mtime(mine: str, target: str) -> bool:
    ours, theirs = os.stat(mine), os.stat(target)
    return (ours.st_size, ours.st_mtime_ns) == (theirs.st_size, theirs.st_mtime_ns)


class LinkMode(Record):
    """How a farm holds the files it stages."""

    __slots__ = _fields = ("link", "intact", "folds_subtrees")
    link: Callable[[str, str], object]  # (target, farm path): put one file in the farm
    intact: Callable[[str, str], bool]  # (farm path, target): it still is the target's
    folds_subtrees: bool  # a subtree without shared objects from one root: one dir link


# One row per mode ("auto" picks one in resolve_link_mode).
_MODES: dict[str, LinkMode] = {
    "symlink": LinkMode(link=os.symlink, intact=resolves, folds_subtrees=True),
    # A hard link or copy is checked by size and mtime (a copy keeps both: copy2).
    "hardlink": LinkMode(link=_hardlink, intact=_same_size_and_mtime, folds_subtrees=True),
    "copy": LinkMode(link=_copy, intact=_same_size_and_mtime, folds_subtrees=False),
}
LINK_MODES = tuple(_MODES)


class _PlanData(Record):
    """A plan as the persistent index keeps it, one plain tuple: what a warm start looks
    at decoded (the real directories, the file links at the top), the native part's
    links still marshalled (``links``: (file links, dir links)), decoded only when they
    are followed; a torch site's plan has ~500, which every start would otherwise
    decode (see ``_farm_lock.hold_intact``)."""

    __slots__ = _fields = ("staged", "mode", "dirs", "top", "links", "key")
    staged: tuple[str, ...]
    mode: str
    dirs: list[str]
    top: tuple[str, ...]
    links: bytes
    key: str


class FarmPlan:
    """What a farm holds: real directories, linked files, linked pure subtrees (the
    native part, checked at every start: see ``_farm_lock.hold_intact``), and the view's
    links (not checked)."""

    __slots__ = ("_key", "dir_links", "dirs", "file_links", "mode", "staged", "view_links")

    def __init__(self, staged: Sequence[str], mode: str) -> None:
        self.staged = tuple(staged)
        self.mode = mode
        self.dirs: list[str] = []  # relative, parents first
        self.file_links: list[tuple[str, str]] = []  # (relative path, absolute target)
        self.dir_links: list[tuple[str, str]] = []
        # The view: (relative path, absolute target) symlinks to files and directories;
        # None in a plan read back from the index (see complete).
        self.view_links: list[tuple[str, str]] | None = []
        self._key: str | None = None

    def to_data(self) -> tuple[object, ...]:
        """Plain containers, for the persistent index: what a start needs (the native
        part and the whole plan's key), not the view's links (one per name: a start
        would decode thousands), which :func:`plan_farm` makes again if ever needed."""
        links = marshal.dumps((self.file_links, self.dir_links))
        top = tuple(rel for rel, _ in self.file_links if os.sep not in rel)
        saved = _PlanData(
            staged=self.staged, mode=self.mode, dirs=self.dirs, top=top, links=links, key=self.key()
        )
        return saved.as_tuple()

    @classmethod
    def from_data(cls, data: tuple[object, ...]) -> FarmPlan:
        """A plan from :meth:`to_data`: its native part and its key, without the view's
        links (:attr:`complete` is False)."""
        saved = _PlanData.from_tuple(data)
        if saved is None or type(saved.key) is not str or type(saved.links) is not bytes:
            raise ValueError(f"not a farm plan: {len(data)} fields")
        try:
            file_links, dir_links = marshal.loads(saved.links)
        except (EOFError, TypeError, ValueError):
            raise ValueError("not a farm plan: its links") from None
        plan = cls(saved.staged, saved.mode)
        plan.dirs = list(saved.dirs)
        plan.file_links = [(rel, target) for rel, target in file_links]
        plan.dir_links = [(rel, target) for rel, target in dir_links]
        plan._key = saved.key
        plan.view_links = None
        return plan

    @property
    def complete(self) -> bool:
        """Whether the plan holds everything a build needs (a saved one lacks the view)."""
        return self.view_links is not None

    @property
    def link_count(self) -> int:
        return len(self.file_links) + len(self.dir_links) + len(self.view_links or ())

    def key(self) -> str:
        """Content address of the plan (hex)."""
        if self._key is not None:
            return self._key
        try:
            from _blake2 import blake2b  # hashlib would load OpenSSL at start-up
        except ImportError:  # pragma: no cover - every CPython 3.9+ has _blake2
            from hashlib import blake2b
        digest = blake2b(digest_size=16)
        digest.update(f"{_FORMAT}\0{self.mode}\0".encode())
        for kind, items in (("d", [(d, "") for d in self.dirs]), ("f", self.file_links)):
            for rel, target in items:
                digest.update(f"{kind}\0{rel}\0{target}\0".encode("utf-8", "surrogateescape"))
        for kind, items in (("l", self.dir_links), ("v", self.view_links or [])):
            for rel, target in items:
                digest.update(f"{kind}\0{rel}\0{target}\0".encode("utf-8", "surrogateescape"))
        self._key = digest.hexdigest()
        return self._key


class Farm:
    """A built, verified farm directory."""

    __slots__ = ("created", "path", "plan")

    def __init__(self, path: str, plan: FarmPlan, created: bool) -> None:
        self.path = path
        self.plan = plan
        self.created = created

    @property
    def staged(self) -> tuple[str, ...]:
        """The top-level names staged for their native code (imported from the farm)."""
        return self.plan.staged


def resolve_link_mode(requested: str | None = None) -> str:
    """The link mode: ``requested``, else ``$VSITE_LINK_MODE``, else the platform's."""
    mode = requested or os.environ.get(ENV_LINK) or "auto"
    if mode == "auto":
        # macOS dyld realpath()s @loader_path, so symlinks give no siblings there;
        # Windows symlinks need a privilege. Both get hard links (copies across devices).
        return "symlink" if sys.platform not in ("darwin", "win32") else "hardlink"
    if mode not in LINK_MODES:
        raise FarmError(f"unknown link mode {mode!r} (expected auto, {', '.join(LINK_MODES)})")
    return mode


def plan_farm(
    roots: Sequence[str],
    staged: Iterable[str],
    mode: str,
    entries: Mapping[str, Sequence[tuple[int, bool]]] | None = None,
) -> FarmPlan:
    """Plan the farm for top-level ``staged`` names over ``roots`` (manifest order), and
    its view of every other name of ``entries`` (the index's: name -> [(root number, is
    a directory)], in root order); no view without ``entries``."""
    names = sorted(set(staged))
    plan = FarmPlan(names, mode)
    if entries is not None:
        _plan_view(roots, entries, frozenset(names), plan)
    for name in names:
        holders = []
        for root in roots:
            path = os.path.join(root, name)
            if os.path.isdir(path):
                holders.append((path, True))
            elif os.path.lexists(path):
                holders.append((path, False))
        if not holders:
            continue
        first, is_dir = holders[0]
        if not is_dir:
            plan.file_links.append((name, first))
            continue
        plan.dirs.append(name)
        sources = [path for path, is_dir in holders if is_dir]
        _plan_dir(name, sources, plan, _identities(sources))
    return plan


def _plan_dir(
    rel: str, sources: list[str], plan: FarmPlan, chain: frozenset[tuple[int, int]]
) -> bool:
    """Plan ``rel`` merged from ``sources``; True when it holds a shared object.

    ``chain``: (device, inode) of ``sources`` and of the directories planned above them.
    """
    children = _merged_listing(sources)
    holds_shared = False
    for name in sorted(children):
        holders = children[name]
        child_rel = os.path.join(rel, name)
        first, is_dir = holders[0]
        if not is_dir:
            plan.file_links.append((child_rel, first))
            holds_shared = holds_shared or is_shared_object(name)
            continue
        dirs = [path for path, d in holders if d]
        identities = _identities(dirs)
        if identities & chain:
            # A directory symlink back up the tree (``up -> ..``): one link, not a descent
            # that ends only at ELOOP, and never with two such links (2**40 paths).
            plan.dir_links.append((child_rel, dirs[0]))
            continue
        # Plan the subtree as real directories, then fold it back into one link when it
        # turns out to hold no shared object and to come from a single root.
        marks = (len(plan.dirs), len(plan.file_links), len(plan.dir_links))
        plan.dirs.append(child_rel)
        sub_shared = _plan_dir(child_rel, dirs, plan, chain | identities)
        if not sub_shared and len(dirs) == 1 and _MODES[plan.mode].folds_subtrees:
            del plan.dirs[marks[0] :]
            del plan.file_links[marks[1] :]
            del plan.dir_links[marks[2] :]
            plan.dir_links.append((child_rel, dirs[0]))
        holds_shared = holds_shared or sub_shared
    return holds_shared


def _plan_view(
    roots: Sequence[str],
    entries: Mapping[str, Sequence[tuple[int, bool]]],
    staged: frozenset[str],
    plan: FarmPlan,
) -> None:
    """The view's part of ``plan``: every top-level name but the staged ones."""
    view = plan.view_links
    assert view is not None  # a plan being made
    for name in sorted(entries):
        if name in staged or name in _NOT_VIEWED or name.endswith(".pth"):
            continue
        holders = entries[name]
        number, is_dir = holders[0]
        first = os.path.join(roots[number], name)
        dirs = [os.path.join(roots[n], name) for n, d in holders if d] if is_dir else []
        if len(dirs) <= 1:  # a file (an earlier root's file beats a directory) or one root's
            view.append((name, first))
            continue
        plan.dirs.append(name)
        _plan_view_dir(name, dirs, plan, _identities(dirs))


def _plan_view_dir(
    rel: str, sources: list[str], plan: FarmPlan, chain: frozenset[tuple[int, int]]
) -> None:
    """The view of a directory several roots share: merged entry by entry, first root
    winning, each entry one link unless it is again a directory several roots share."""
    children = _merged_listing(sources)
    for name in sorted(children):
        if name in _NOT_VIEWED:
            continue
        holders = children[name]
        child_rel = os.path.join(rel, name)
        first, is_dir = holders[0]
        dirs = [path for path, d in holders if d] if is_dir else []
        identities = _identities(dirs) if len(dirs) > 1 else frozenset()
        if len(dirs) <= 1 or identities & chain:
            plan.view_links.append((child_rel, first))  # type: ignore[union-attr]
            continue
        plan.dirs.append(child_rel)
        _plan_view_dir(child_rel, dirs, plan, chain | identities)


def _merged_listing(sources: list[str]) -> dict[str, list[tuple[str, bool]]]:
    """Entry name -> [(path, is a directory)] over ``sources``, in their order (an
    unreadable source holds nothing)."""
    children: dict[str, list[tuple[str, bool]]] = {}
    for source in sources:
        try:
            with os.scandir(source) as listing:
                for entry in listing:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    children.setdefault(entry.name, []).append((entry.path, is_dir))
        except OSError:
            continue
    return children


def _identities(paths: list[str]) -> frozenset[tuple[int, int]]:
    found = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def ensure_farm(
    plan: FarmPlan,
    base: str,
    *,
    hold: bool = True,
    replan: Callable[[], FarmPlan] | None = None,
) -> Farm:
    """The farm for ``plan`` under ``base``: reused when intact, else built atomically.

    With ``hold`` (the default) the process keeps a shared lock on the farm for its
    lifetime (:mod:`vsite._farm_lock`), taken BEFORE the farm is verified, so a
    concurrent ``vsite gc`` never removes a farm between check and use. A saved plan
    (without the view's links) is made whole by ``replan`` before a build; the farm
    returned then has that plan, whose key the caller may save.
    """
    key = plan.key()
    path = os.path.join(base, key)
    for _attempt in range(5):
        # Looked at BEFORE the check: a farm that appears after it was renamed into place
        # by a concurrent build, complete, and must never be retired as stale.
        stale = os.path.lexists(path)
        held = hold and acquire(path) is not None
        if (held or not hold) and _intact(path, plan, key):
            return Farm(path, plan, created=False)
        if held:  # stale: let go of it, so it can be removed at once
            release(path)
        if not plan.complete:
            if replan is None:
                raise FarmError(f"cannot build farm {path}: its plan lacks the view")
            plan = replan()
            if plan.key() != key:
                # A directory the view merges changed since the saved plan (a namespace
                # portion gained an entry): the farm of what is there now.
                key = plan.key()
                path = os.path.join(base, key)
                continue
        temp = os.path.join(base, f".tmp-{key}-{os.getpid()}-{os.urandom(4).hex()}")
        lock = -1
        try:
            lock = _build(temp, plan, key)
            if stale:
                if _intact(path, plan, key):  # replaced by a concurrent build meanwhile
                    os.close(lock)
                    _remove(temp)
                    continue
                _retire(path, base)
            try:
                os.rename(temp, path)
            except OSError:
                # Another process won the race (or holds the stale farm): use theirs.
                os.close(lock)
                _remove(temp)
                continue
        except OSError as exc:
            if lock >= 0:
                os.close(lock)
            _remove(temp)
            raise FarmError(f"cannot build farm {path}: {exc}") from None
        if hold:
            take_over(path, lock)
        else:
            os.close(lock)
        return Farm(path, plan, created=True)
    raise FarmError(f"cannot settle farm {path}: it keeps changing under concurrent builds")


def _build(temp: str, plan: FarmPlan, key: str) -> int:
    """Build the farm in ``temp``; return a descriptor holding its lock file shared."""
    os.mkdir(temp, 0o700)
    fd = open_shared(temp)
    try:
        for rel in plan.dirs:
            os.mkdir(os.path.join(temp, rel), 0o755)
        link = _linker(plan.mode)
        for rel, target in plan.file_links:
            link(target, os.path.join(temp, rel))
        for rel, target in plan.dir_links:
            os.symlink(target, os.path.join(temp, rel), target_is_directory=True)
        for rel, target in plan.view_links or ():
            os.symlink(target, os.path.join(temp, rel))
        # Last: its directories are complete, so the mtimes it records are final.
        write_marker(os.path.join(temp, MARKER), marker_text(temp, key, plan.dirs))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _linker(mode: str) -> Callable[[str, str], object]:
    return _MODES[mode].link


def _intact(path: str, plan: FarmPlan, key: str) -> bool:
    """Its marker matches and its native part holds its targets (for hard links and
    copies: files of the targets' size and mtime); see :func:`links_intact`."""
    return links_intact(path, key, plan.file_links, plan.dir_links, _MODES[plan.mode].intact)


def _retire(path: str, base: str) -> None:
    """Move a stale farm aside (atomic); delete it unless a process still holds it
    (then ``vsite gc`` removes it once that process is gone)."""
    aside = os.path.join(base, f".stale-{os.path.basename(path)}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except OSError:
        return
    from vsite.native.gc import collect

    collect(aside)


def _remove(path: str) -> None:
    import shutil

    if os.path.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)
