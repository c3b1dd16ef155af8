"""vsite's per-user state directory (farms, indexes): private, owned, never a symlink.

The default base sits in a shared location (``$TMPDIR``), where another user could
pre-create it; so every base is checked after creation and refused when it is a
symlink, owned by someone else, or writable by group or others. A refused base is
skipped for the next candidate; when none is safe, FarmError says which were refused.
"""

import os
import stat

__all__ = [
    "ENV_DIR",
    "candidate_bases",
    "check_private_dir",
    "ensure_private_dir",
    "short_hash",
    "state_dir",
]

ENV_DIR = "VSITE_DIR"

# (candidate bases, the one chosen): re-chosen when the environment names other bases
# (VSITE_DIR set by a test or a parent after the first use).
_cached: "tuple[list[str], str] | None" = None


def candidate_bases() -> list[str]:
    """Where vsite may keep its state, in order of preference."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    bases: list[str] = []
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return [os.path.abspath(explicit)]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        bases.append(os.path.join(runtime, "vsite"))
    # tempfile.gettempdir() costs ~10 ms of imports at start-up; its rule, inlined.
    for name in ("TMPDIR", "TEMP", "TMP"):
        tmp = os.environ.get(name)
        if tmp and os.path.isabs(tmp):
            bases.append(os.path.join(tmp, f"vsite-{uid}"))
            break
    bases.append(os.path.join("/tmp", f"vsite-{uid}"))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    bases.append(os.path.join(cache, "vsite"))
    unique: list[str] = []
    for base in bases:
        if base not in unique:
            unique.append(base)
    return unique


def _farm_error(message: str, root: "str | None" = None) -> "OSError":
    """A FarmError (an OSError); its module is loaded only when there is one to raise."""
    from vsite.errors import FarmError

    return FarmError(message, root=root)


def ensure_private_dir(path: str) -> None:
    """Create ``path`` mode 0700 if absent; raise FarmError unless it is safe to use."""
    try:
        st = os.lstat(path)  # the usual case, at every start: one lstat, no mkdir
    except OSError:
        pass  # absent (or unreadable: mkdir below says why)
    else:
        _check_private(path, st)
        return
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _farm_error(f"cannot create {path}: {exc.strerror or exc}", root=None) from None
    check_private_dir(path)


def check_private_dir(path: str) -> None:
    """Raise FarmError (an OSError) unless ``path`` is a real directory of ours that
    nobody else can write; FileNotFoundError when there is nothing at ``path``."""
    _check_private(path, os.lstat(path))


def _check_private(path: str, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise _farm_error(f"refusing {path}: it is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise _farm_error(f"refusing {path}: not a directory")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise _farm_error(f"refusing {path}: owned by uid {st.st_uid}, not {os.geteuid()}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _farm_error(f"refusing {path}: writable by group or others")


def short_hash(text: str) -> int:
    """A stable 32-bit FNV-1a hash of ``text``, for file names under the state directory.

    Pure Python on purpose: it names the persistent index at every start-up, where
    loading zlib for ``crc32`` would cost more than hashing a path here does. Meant for
    short texts (paths): it costs about 0.2 µs a byte.
    """
    value = 0x811C9DC5
    for byte in text.encode("utf-8", "surrogateescape"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def state_dir(*parts: str) -> str:
    """A private directory under the first safe base (created on demand)."""
    global _cached
    candidates = candidate_bases()
    base = _cached[1] if _cached is not None and _cached[0] == candidates else None
    if base is None:
        refused: list[str] = []
        for candidate in candidates:
            try:
                os.makedirs(os.path.dirname(candidate), exist_ok=True)
                ensure_private_dir(candidate)
            except OSError as exc:  # FarmError is one
                refused.append(str(exc))
                continue
            base = candidate
            break
        if base is None:
            raise _farm_error("no safe per-user directory for vsite: " + "; ".join(refused))
        _cached = (candidates, base)
    else:
        ensure_private_dir(base)  # re-made if something cleaned the temp dir since
    path = base
    for part in parts:
        path = os.path.join(path, part)
        ensure_private_dir(path)
    return path


def _reset_after_fork() -> None:
    global _cached
    _cached = None


if hasattr(os, "register_at_fork"):
    # A forked child may run as another user (setuid daemons): re-check the base.
    os.register_at_fork(after_in_child=_reset_after_fork)
