"""``vsite gc``: remove farms no live process uses (see :mod:`vsite._farm_lock`)."""

from __future__ import annotations

import os
import stat
import time

from vsite._farm_lock import LOCK, lock_exclusive

__all__ = ["collect", "collect_garbage", "listing"]

#: Seconds a farm directory without a lock file is left alone: a build creates its lock
#: file right after its directory, so such a directory is a build just begun (or an
#: older vsite's farm).
GRACE = 60.0


def collect_garbage(base: str | None = None, *, older_than: float = 0.0) -> list[str]:
    """Remove the farms under ``base`` that no live process holds; return their paths.

    ``base`` defaults to the per-user farm directory. A farm is removed only when its
    exclusive lock can be taken (no process holds it) and it was last used at least
    ``older_than`` seconds ago; it is renamed aside while locked, so a process about to
    use it sees it gone and builds a new one. Leftovers of interrupted builds and
    removals go too, once no process holds them.
    """
    base, names = listing(base, "farms")
    now = time.time()
    removed = []
    for name in names:
        if not (name.startswith((".tmp-", ".stale-", ".gc-")) or _is_key(name)):
            continue
        path = os.path.join(base, name)
        # A build in progress holds its lock; one that has not made it yet gets a grace.
        floor = GRACE if name.startswith(".tmp-") else 0.0
        if collect(path, max(older_than, floor), now):
            removed.append(path)
    return removed


def listing(base: str | None, kind: str) -> tuple[str, list[str]]:
    """``base`` (default: the per-user state directory ``kind``) and its entries, sorted;
    none when it does not exist."""
    if base is None:
        from vsite._paths import state_dir

        base = state_dir(kind)
    try:
        return base, sorted(os.listdir(base))
    except FileNotFoundError:
        return base, []


def collect(
    path: str, older_than: float = 0.0, now: float | None = None, *, without_lock: float = GRACE
) -> bool:
    """Remove the farm at ``path`` if no process holds it and it is old enough (one
    without a lock file: made at least ``without_lock`` seconds ago). ``vsite exec``'s
    environments are held and collected the same way (:mod:`vsite.tools.shell_gc`)."""
    now = time.time() if now is None else now
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    base, name = os.path.split(path)
    aside = path if name.startswith(".gc-") else os.path.join(base, f".gc-{name}-{os.getpid()}")
    try:
        fd = os.open(os.path.join(path, LOCK), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        fd = -1
        if now - st.st_mtime < max(older_than, without_lock):
            return False
    except OSError:
        return False
    try:
        if fd >= 0:
            if not lock_exclusive(fd):
                return False  # in use
            if now - os.fstat(fd).st_mtime < older_than:
                return False
        if aside != path:
            os.rename(path, aside)
    except OSError:
        return False
    finally:
        if fd >= 0:
            os.close(fd)
    import shutil

    shutil.rmtree(aside, ignore_errors=True)
    return True


def _is_key(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)
