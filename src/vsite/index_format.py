"""The index file's layout and the primitives its reader and writer share (the format is
described in :mod:`vsite.index_cache`). On the boot path: builtins only."""

from __future__ import annotations

import os

__all__ = [
    "COUNT",
    "FIRST_SECTION",
    "FORMAT",
    "GONE",
    "LAZY",
    "MAGIC",
    "SECTIONS",
    "SIDECAR_SUFFIX",
    "TABLE_AT",
    "bucket",
    "identity",
    "read_u32",
    "stem",
    "text",
]

MAGIC = b"vsite-ix"
FORMAT = 6  # 6: sectioned, hashed tables read lazily; immutable roots unverified
SIDECAR_SUFFIX = ".vsite-index"
SECTIONS = ("source", "content", "core", "roots", "verify", "identity")  # read at start
LAZY = ("names", "dists", "order", "mtimes", "dropped")  # read when first used
HEADER = len(MAGIC) + 24  # + u32 format, size, eager size, count, then 8 random bytes
TABLE_AT = HEADER
COUNT = len(SECTIONS) + len(LAZY)
FIRST_SECTION = HEADER + 8 * COUNT
GONE = (-1).to_bytes(8, "little", signed=True) * 2  # the identity of a path not there


def bucket(key: str, count: int) -> int:
    """A key's bucket: stable across processes and Python versions (``hash`` is not)."""
    return int.from_bytes(key.encode("utf-8", "surrogateescape"), "little") % count


def text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def stem(name: str) -> str:
    """What a name is filed under in the names table: the part before the first dot."""
    return name.partition(".")[0]


def read_u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def identity(path: str) -> bytes:
    """``path``'s inode and mtime, 16 bytes; :data:`GONE` when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return GONE
    return st.st_ino.to_bytes(8, "little") + st.st_mtime_ns.to_bytes(8, "little", signed=True)
