"""Wheel digests: the sha256 that keys the store, a memo so a wheel is hashed once, and
the check of a wheel against the hashes a lock or a requirements file pins it to.

Pinned hashes map an algorithm (``sha256``) to the hex digests allowed. A lock file
(PEP 751) gives one digest per algorithm and every one must match (``require_all``); a
requirements file's ``--hash`` options allow any of their digests, as pip checks them.
Algorithms this Python's ``hashlib`` does not know are skipped; a pin with none it
knows cannot be checked, and is refused (:func:`unchecked`).

Tooling path (stdlib only).
"""

from __future__ import annotations

import hashlib
import os

from vsite._fs import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

__all__ = ["digests", "mismatch", "remembered_sha256", "unchecked", "wheel_sha256"]

_BLOCK = 1 << 20


def wheel_sha256(path: str) -> str:
    """The hex sha256 of the file at ``path`` (the store key of a wheel)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def digests(path: str, algorithms: Iterable[str]) -> dict[str, str]:
    """The hex digests of the file at ``path`` for each of ``algorithms`` (one read)."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_BLOCK), b""):
            for hasher in hashers.values():
                hasher.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def checkable(pinned: Mapping[str, Collection[str]]) -> list[str]:
    """The algorithms of ``pinned`` that this Python can compute, sorted."""
    return sorted(name for name in pinned if name in hashlib.algorithms_available)


def unchecked(pinned: Mapping[str, Collection[str]]) -> str:
    """Why ``pinned`` cannot be checked here ('' when it can)."""
    if checkable(pinned):
        return ""
    names = ", ".join(sorted(pinned)) or "none"
    return f"no hash this Python can check (algorithms: {names})"


def mismatch(
    found: Mapping[str, str], pinned: Mapping[str, Collection[str]], *, require_all: bool
) -> str:
    """'' when the digests ``found`` (of :func:`checkable` algorithms) match ``pinned``;
    else what differs, quoting the digests. ``require_all``: every algorithm must match
    (a lock); otherwise one matching digest is enough (pip's ``--hash``)."""
    wrong = [name for name in sorted(found) if found[name] not in pinned.get(name, ())]
    if not found or (wrong and (require_all or len(wrong) == len(found))):
        name = wrong[0] if wrong else ""
        if not name:
            return "no hash could be checked"
        expected = " or ".join(sorted(pinned[name]))
        return f"{name} is {found[name]}, expected {expected}"
    return ""


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
