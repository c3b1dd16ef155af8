"""What keeps ``vsite store gc`` off the store entries a live process uses.

A process whose site has roots in a vsite store (``STORE/wheels/<sha256>/site-packages``,
recognised by that shape, with no system call) holds, for its lifetime, a shared
``flock`` on one small file under vsite's per-user state directory,
``holds/<key>``: the list of those entries, one per line, written once (its name is
derived from the set of entries, so an environment whose manifest changes while an old
process runs gets a new file and the old one stays held). ``vsite store gc`` takes each
file's exclusive lock without waiting: a file it cannot lock belongs to a live process,
and its entries are kept; one it can lock is stale and removed. A forked child shares
its parent's lock. Cost at start-up: one open and one ``flock``, only for sites that use
a store. Runtime path: stdlib only.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["HOLDS_DIR", "hold", "store_entry"]

HOLDS_DIR = "holds"
_held: dict[str, int] = {}  # hold file -> the descriptor holding its shared lock


def store_entry(root: str) -> "str | None":
    """The store entry directory of ``root`` when it has a store root's shape."""
    entry, _, name = root.rpartition(os.sep)
    if name != "site-packages":  # most roots: one string operation (index builds ask N)
        return None
    wheels, _, digest = entry.rpartition(os.sep)
    if len(digest) == 64 and wheels.rpartition(os.sep)[2] == "wheels":
        return entry
    return None


def hold(entries: "Sequence[str]") -> "str | None":
    """Hold the store ``entries`` (see :func:`store_entry`) for this process's lifetime;
    the hold file, or None when there are none (or no safe state directory to keep it
    in)."""
    if not entries:
        return None
    key = 0
    for entry in entries:  # order-free: the set of entries is what gc protects
        try:
            key ^= int(os.path.basename(entry)[:16], 16)
        except ValueError:
            continue
    try:
        from vsite._paths import state_dir

        path = os.path.join(state_dir(HOLDS_DIR), f"{key:016x}-{len(entries)}")
    except OSError:
        return None
    if path in _held:
        return path
    try:
        fd = _open(path, list(entries))
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        return None
    _held[path] = fd
    return path


def _open(path: str, entries: "list[str]") -> int:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        from vsite._fs import write_atomic

        write_atomic(path, "".join(f"{entry}\n" for entry in entries).encode(), 0o600)
        return os.open(path, flags)
