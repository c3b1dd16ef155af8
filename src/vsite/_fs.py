"""File-system helpers used by the runtime and the tooling alike, each written once.

On the boot path: imports only ``os`` and builtin modules.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["mtime_ns", "remove_stale", "remove_tree", "write_atomic"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def mtime_ns(path: str) -> int:
    """``path``'s mtime in nanoseconds; -1 when it cannot be stat'ed (gone, unreadable)."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def write_atomic(path: str, data: "ReadableBuffer", mode: int) -> None:
    """Write ``data`` to ``path`` through a temp file renamed over it: a reader sees the
    old file or the new one, never part of one. ``mode`` is masked by the umask. Raises
    OSError on failure, leaving no temp file behind."""
    from _thread import get_ident

    # Unique per process and thread: concurrent writers never share a temp file.
    temp = f"{path}.{os.getpid()}.{get_ident():x}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, mode)
        with open(fd, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def remove_stale(path: str, older_than: float, now: float) -> bool:
    """Unlink ``path`` (a temporary :func:`write_atomic` left) when its mtime is at least
    ``older_than`` seconds before ``now``: a live writer renames its temporary within
    milliseconds. False when it is younger, gone already, or not ours to remove."""
    try:
        if now - os.lstat(path).st_mtime < older_than:
            return False
        os.unlink(path)
    except OSError:
        return False
    return True


def remove_tree(path: str) -> None:
    """Remove ``path``: a file or link, or a directory tree even where it is read-only
    (store entries are); nothing when it does not exist."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil

        for dirpath, dirnames, _ in os.walk(path):
            for name in dirnames:
                target = os.path.join(dirpath, name)
                if not os.path.islink(target):
                    os.chmod(target, 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        os.unlink(path)
