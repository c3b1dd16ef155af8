"""Wheel digests: the sha256 that keys the store, and a memo so a wheel is hashed once.

Tooling path (stdlib only).
"""

from __future__ import annotations

import hashlib
import os

from vsite._fs import write_atomic

__all__ = ["remembered_sha256", "wheel_sha256"]


def wheel_sha256(path: str) -> str:
    """The hex sha256 of the file at ``path`` (the store key of a wheel)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remembered_sha256(path: str, memo_dir: str) -> str:
    """The sha256 of the file at ``path``, remembered under ``memo_dir`` per file state.

    Hashing is most of a new environment's cost when every root is already in the
    store (2.9 GB for the torch set), so the digest is kept in ``memo_dir`` keyed by
    the file's (device, inode, size, mtime, ctime): a file rewritten or touched in any
    way changes its ctime, which no user can set back, so a remembered digest is never
    one of other contents.
    """
    st = os.stat(path)
    key = f"{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}"
    memo = os.path.join(memo_dir, key)
    try:
        with open(memo, encoding="ascii") as stream:
            known = stream.read()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    except (OSError, ValueError):
        pass
    digest = wheel_sha256(path)
    try:  # a memo that cannot be written is no error: the digest is known
        os.makedirs(memo_dir, exist_ok=True)
        write_atomic(memo, digest.encode("ascii"), 0o644)
    except OSError:
        pass
    return digest
