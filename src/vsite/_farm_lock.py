"""The in-use signal of a farm: a shared ``flock`` on its lock file, held for life.

Boot path: a warm start holds and checks its farm with this module alone, outside the
``vsite.native`` package (one module fewer at every start) and without ``__future__``
(the annotations are quoted for Python 3.9); the farm's builder and ``vsite gc`` use it
too.

Every process that uses a farm holds a shared lock on ``FARM/.vsite-lock`` until it
exits (a forked child shares it). Garbage collection takes the exclusive lock without
waiting, so it can only succeed on a farm no live process holds; while it holds that
lock it renames the farm aside. A process that opened the lock file just before must
therefore check, once its shared lock is granted, that the file is still the one at
the farm's path. ``vsite exec``'s environment shells are held the same way
(:mod:`vsite.tools.shell_gc`).
"""

import marshal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "LOCK",
    "MARKER",
    "acquire",
    "hold",
    "hold_intact",
    "links_intact",
    "lock_exclusive",
    "open_shared",
    "release",
    "resolves",
    "saved_farm_key",
    "take_over",
]

LOCK = ".vsite-lock"
MARKER = ".vsite-farm"  # the farm's key and its directories' mtimes: written last

_held: dict[str, int] = {}  # farm path -> descriptor holding its shared lock


def hold(path: str) -> bool:
    """Mark the farm at ``path`` in use by this process until it exits.

    Holding again is a no-op (one descriptor per farm per process); the lock file's
    mtime records the last use, for ``collect_garbage(older_than=...)``. False when
    ``path`` is not (or no longer) a farm.
    """
    return acquire(path) is not None


def acquire(path: str) -> "int | None":
    """The descriptor holding ``path``'s shared lock (taken if needed), or None."""
    lock = os.path.join(path, LOCK)
    fd = _held.get(path)
    if fd is not None:
        if _same_file(fd, lock):
            return fd
        release(path)  # the farm was rebuilt or removed since
    for _attempt in range(5):
        try:
            fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        _flock(fd, shared=True, wait=True)
        # Moved aside by gc while we waited? Look again: another process may have
        # rebuilt the farm at ``path`` meanwhile.
        if _same_file(fd, lock):
            take_over(path, fd)
            return fd
        os.close(fd)
    return None


def take_over(path: str, fd: int) -> None:
    """Record ``fd`` (holding a shared lock on ``path``'s lock file) as this process's."""
    previous = _held.get(path)
    if previous is not None and previous != fd:
        os.close(previous)  # it held a farm since replaced at this path
    _held[path] = fd
    try:
        os.utime(os.path.join(path, LOCK))
    except OSError:
        pass


def release(path: str) -> None:
    """Stop holding ``path`` (no-op when this process does not hold it)."""
    fd = _held.pop(path, None)
    if fd is not None:
        os.close(fd)


def open_shared(path: str) -> int:
    """Create the lock file in a farm being built and hold it; return the descriptor."""
    fd = os.open(
        os.path.join(path, LOCK),
        os.O_RDONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
        0o600,
    )
    _flock(fd, shared=True, wait=True)
    return fd


def lock_exclusive(fd: int) -> bool:
    """Take ``fd``'s exclusive lock without waiting; False when any process holds it."""
    return _flock(fd, shared=False, wait=False)


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _flock(fd: int, *, shared: bool, wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock, so nothing is ever collected
        return False
    operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, operation if wait else operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def saved_farm_key(saved: object) -> "str | None":
    """The key (the directory name) of the symlink farm a saved plan describes, the
    index's ``plans["symlink"]``; None when it does not have a saved plan's shape."""
    if type(saved) is not tuple or len(saved) != 6:
        return None
    key = saved[5]
    return key if type(key) is str else None


def hold_intact(
    path: str,
    key: str,
    saved: "tuple[Sequence[str], Sequence[str], bytes]",
    changing: "Sequence[str] | None",
) -> bool:
    """Hold the symlink farm at ``path`` and check it, for a warm start that loads
    nothing of the farm builder (:mod:`vsite.native.farm`); False (not held) when it is
    missing or not intact: the builder then makes it.

    ``saved``: the plan's native part as the index keeps it: its real directories
    (``dirs``), its file links at the top (``top``) and, still marshalled, all its links
    (``links``: file links, dir links). ``changing``: the roots whose files may change
    between starts (the verified ones; None: any root). A link into another root (a
    store's, or one declared immutable) has a target that never changes: such links
    are not looked at one by one (a farm of torch and its CUDA wheels has hundreds),
    only the real directories holding them, by the mtimes recorded when the farm was
    built (a link removed, added or renamed in one changes its mtime), and the links at
    the top, which no recorded directory holds. If a directory's mtime moved (a file
    some package wrote beside its modules), every link is checked as before and, when
    they all hold, the new mtimes are recorded.
    """
    dirs, top, links = saved
    if acquire(path) is None:
        return False
    if _intact_by_mtimes(path, key, dirs, top, links, changing):
        return True
    decoded = _links(links)
    if decoded is not None and links_intact(path, key, *decoded, resolves):
        if changing is not None:
            _record_mtimes(path, key, dirs)
        return True
    release(path)
    return False


def _intact_by_mtimes(
    path: str,
    key: str,
    dirs: "Sequence[str]",
    top: "Sequence[str]",
    links: bytes,
    changing: "Sequence[str] | None",
) -> bool:
    """``hold_intact``'s check without following the links into immutable roots."""
    recorded = _marker(path, key)
    if (
        changing is None
        or recorded is None
        or recorded[1:] != _mtimes(path, dirs)
        or not all(os.path.lexists(os.path.join(path, rel)) for rel in top)
    ):
        return False
    if not changing:
        return True
    decoded = _links(links)
    roots = tuple(os.path.join(root, "") for root in changing)
    return decoded is not None and _resolve(path, *decoded, roots)


def _links(
    data: bytes,
) -> "tuple[Sequence[tuple[str, str]], Sequence[tuple[str, str]]] | None":
    """A saved plan's (file links, dir links); None when damaged."""
    try:
        file_links, dir_links = marshal.loads(data)
    except (EOFError, TypeError, ValueError):
        return None
    return file_links, dir_links


def _record_mtimes(path: str, key: str, dirs: "Sequence[str]") -> None:
    """Write the farm's marker again with the current mtimes of its directories; atomic,
    never an error (a farm whose mtimes are not recorded is checked link by link)."""
    temp = os.path.join(path, f"{MARKER}.{os.getpid()}.tmp")
    try:
        write_marker(temp, marker_text(path, key, dirs))
        os.replace(temp, os.path.join(path, MARKER))
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass


def marker_text(path: str, key: str, dirs: "Sequence[str]") -> str:
    """A farm's marker: its key, then the mtimes of its real directories (``dirs``,
    relative, the plan's order)."""
    return " ".join([key, *_mtimes_or_raise(path, dirs)]) + "\n"


def write_marker(path: str, text: str) -> None:
    # An explicit mode: under umask 0 a plain open() would make it world-writable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with open(fd, "w", encoding="utf-8") as stream:
        stream.write(text)


def _marker(path: str, key: str) -> "list[str] | None":
    """The marker's fields (the key first) when its key is ``key``; else None."""
    try:
        with open(os.path.join(path, MARKER), encoding="utf-8") as stream:
            fields = stream.read().split()
    except OSError:
        return None
    return fields if fields[:1] == [key] else None


def _mtimes(path: str, dirs: "Sequence[str]") -> "list[str] | None":
    try:
        return _mtimes_or_raise(path, dirs)
    except OSError:
        return None


def _mtimes_or_raise(path: str, dirs: "Sequence[str]") -> "list[str]":
    return [str(os.stat(os.path.join(path, rel)).st_mtime_ns) for rel in dirs]


def _resolve(
    path: str,
    file_links: "Sequence[tuple[str, str]]",
    dir_links: "Sequence[tuple[str, str]]",
    roots: "tuple[str, ...]",
) -> bool:
    """Whether the links into ``roots`` (``root/`` prefixes) still reach their targets."""
    return all(
        os.path.exists(os.path.join(path, rel))
        for rel, target in file_links
        if target.startswith(roots)
    ) and all(
        os.path.isdir(os.path.join(path, rel))
        for rel, target in dir_links
        if target.startswith(roots)
    )


def links_intact(
    path: str,
    key: str,
    file_links: "Sequence[tuple[str, str]]",
    dir_links: "Sequence[tuple[str, str]]",
    intact: "Callable[[str, str], bool]",
) -> bool:
    """A farm is trusted only if its marker's key is ``key`` and every link of its native
    part still holds its target (``intact(farm path, target)``). The view's links are not
    looked at: one per name, thousands; they follow the index, whose freshness covers
    the roots they point into."""
    if _marker(path, key) is None:
        return False
    try:
        for rel, target in file_links:
            if not intact(os.path.join(path, rel), target):
                return False
    except OSError:
        return False
    return all(os.path.isdir(os.path.join(path, rel)) for rel, _ in dir_links)


def resolves(mine: str, target: str) -> bool:
    """A symlink holds its target while it resolves."""
    return os.path.exists(mine)
