"""Bytecode in store entries: compiled once per interpreter, by ``vsite install`` only.

A root is byte-compiled for the interpreter that unpacks it; an interpreter that installs
the same wheel later adds its own, under a lock, restoring the entry read-only. Never
called at run time: a process in a site writes bytecode only to its user's cache
(:mod:`vsite.finder.bytecode`).

Tooling path (stdlib only).
"""

from __future__ import annotations

import os
import py_compile
import stat
import sys
from contextlib import contextmanager

from vsite.finder.bytecode import shipped_bytecode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["BYTECODE_TAG", "compile_root", "locked", "writable"]

#: The cache tag of the bytecode this interpreter writes (None: it writes none).
BYTECODE_TAG: str | None = sys.implementation.cache_tag


def compile_root(root: str, final_root: str) -> None:
    """Byte-compile every ``.py`` under ``root`` for this interpreter, quietly.

    Unchecked hash-based pycs: store files never change (content-addressed, read-only,
    checked against RECORD when unpacked), so there is nothing to check at import and
    such a pyc costs no stat or read of its source (``--check-hash-based-pycs always``
    still validates them: the stdlib honours it). Timestamp pycs would go stale for
    every module as soon as an entry is copied or restored with new mtimes.
    ``final_root`` is where ``root`` will be: tracebacks name that location.
    """
    assert BYTECODE_TAG is not None
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != "__pycache__"]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            source = os.path.join(dirpath, name)
            final = os.path.join(final_root, os.path.relpath(source, root))
            try:
                # py_compile writes aside and renames: a reader sees a whole pyc or none.
                py_compile.compile(
                    source,
                    cfile=shipped_bytecode(source, BYTECODE_TAG),
                    dfile=final,
                    doraise=True,
                    optimize=0,
                    invalidation_mode=mode,
                )
            except (py_compile.PyCompileError, OSError, ValueError):
                # Some wheels ship files that do not compile (Python 2 examples, templates
                # named .py); pip installs those wheels too, and the file is not imported.
                continue


@contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, never removed: removing a lock file
    another process has open would let a third lock a new file at the same time)."""
    import fcntl

    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Read-only is enough for flock: another user of a shared store can lock too.
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def writable(entry: str, root: str) -> Iterator[None]:
    """Let the owner write ``entry`` and the directories of its root for the block; then
    put back every mode it changed and make what the block created read-only."""
    existing = list(_entry_dirs(entry, root))
    modes: dict[str, int] = {}
    try:
        for path in existing:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            os.chmod(path, mode | stat.S_IWUSR)
            modes[path] = mode
        yield
    finally:
        known = set(existing)
        for path in _entry_dirs(entry, root):
            if path in modes:
                # Read-only as every entry is, also where a killed install left it writable.
                os.chmod(path, modes[path] & ~0o222)
            elif path not in known:  # created in the block: a new __pycache__
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
            if os.path.basename(path) == "__pycache__":
                _make_files_read_only(path)


def _entry_dirs(entry: str, root: str) -> Iterator[str]:
    """``entry`` and every directory of its ``root`` (where bytecode and wheel.json go)."""
    yield entry
    for dirpath, dirnames, _ in os.walk(root):
        yield dirpath
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def _make_files_read_only(directory: str) -> None:
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode) and mode & 0o222:
            os.chmod(path, stat.S_IMODE(mode) & ~0o222)
