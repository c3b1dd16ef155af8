"""Writing index files (see :mod:`vsite.index_cache` for the format and the freshness
contract): a cold start's or ``vsite install``'s work, never a warm start's.
"""

from __future__ import annotations

import marshal
import os

from vsite.index import (
    COUNT,
    FIRST_SECTION,
    FORMAT,
    MAGIC,
    SECTIONS,
    bucket,
    identity,
    stem,
    text,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from vsite.index import SiteIndex
    from vsite.manifest import Root

__all__ = ["build", "encode", "remember_plan", "store", "sweep_temporaries"]


def build(source: str, content: bytes, cache_file: str | None) -> SiteIndex:
    from vsite.index import build_index
    from vsite.manifest import Manifest

    manifest = Manifest.from_bytes(content, source)
    # Every root's identity, taken before the scan (a root changed during the scan is
    # caught by the next start); the scan reuses the mtimes instead of a second stat.
    identities = {root.path: identity(root.path) for root in manifest.roots}
    verified = _verified_paths(manifest.roots)
    mtimes = {
        path: int.from_bytes(found[8:], "little", signed=True) for path, found in identities.items()
    }
    index = build_index(manifest, mtimes)
    index.identity = b"".join([identities[path] for path in verified])
    if cache_file is not None:
        index.cache_file = cache_file
        store(index, cache_file)
    return index


def remember_plan(index: SiteIndex, mode: str, plan: tuple[object, ...]) -> None:
    """Keep a farm plan with the cached index, so warm starts skip the tree walk."""
    index.plans[mode] = plan
    if index.cache_file is not None:
        store(index, index.cache_file)


def store(index: SiteIndex, path: str) -> None:
    """Write ``index`` to ``path`` atomically; a failure to cache is never an error."""
    from vsite._fs import write_atomic

    try:
        # An explicit mode: under umask 0 a plain open() would make it world-writable.
        write_atomic(path, encode(index), 0o644)
    except OSError:
        pass


def encode(index: SiteIndex) -> bytes:
    """The index file of ``index`` (see the module's docstring for the layout)."""
    manifest = index.manifest
    verified = _verified_paths(manifest.roots)
    identity = index.identity if index.identity is not None else _identity_bytes(verified)
    # Most manifests verify exactly the roots in use: the file then lists them once.
    verify_roots = verified == list(index.roots)
    core = (
        tuple(index.pth),
        tuple(index.native),
        dict(index.plans),
        tuple(index.held),
        manifest.system_site_packages,
        verify_roots,
    )
    groups: dict[str, dict[str, list[tuple[int, bool]]]] = {}
    for name, holders in index.entries.items():
        groups.setdefault(stem(name), {})[name] = list(holders)
    dists = dict(index.dists)
    sections = [
        text(manifest.source),
        manifest.content,
        marshal.dumps(core),
        text("\0".join(index.roots)),
        b"" if verify_roots else text("\0".join(verified)),
        identity,
        _table(groups),
        _table(dists),
        marshal.dumps(tuple(dists.items())),
        marshal.dumps(tuple(index.mtimes)),
        marshal.dumps(tuple((d.root.pointer, d.dist, d.winner) for d in index.dropped)),
    ]
    table = bytearray()
    offset = FIRST_SECTION
    for data in sections:
        table += _u32(offset) + _u32(len(data))
        offset += len(data)
    eager = FIRST_SECTION + sum(len(data) for data in sections[: len(SECTIONS)])
    # The random bytes tell this file from any later one at the same path: a process
    # reading its lazy sections checks that the header is still the one it started with.
    header = MAGIC + _u32(FORMAT) + _u32(offset) + _u32(eager) + _u32(COUNT) + os.urandom(8)
    return b"".join([header, bytes(table), *sections])


def _table(records: Mapping[str, object]) -> bytes:
    """A hash table: u32 bucket count, u32 offset per bucket and one past the last
    (from the table's start), then each bucket's records as one marshalled dict."""
    count = _prime_at_least(2 * len(records) + 3)  # mostly empty buckets: misses read nothing
    buckets: dict[int, dict[str, object]] = {}
    for key, value in records.items():
        buckets.setdefault(bucket(key, count), {})[key] = value
    blobs = []
    offsets = bytearray(_u32(count))
    position = 4 + 4 * (count + 1)
    for number in range(count):
        offsets += _u32(position)
        records_here = buckets.get(number)
        if records_here is not None:
            blob = marshal.dumps(records_here)
            blobs.append(blob)
            position += len(blob)
    offsets += _u32(position)
    return bytes(offsets) + b"".join(blobs)


def _prime_at_least(number: int) -> int:
    candidate = number | 1
    while any(candidate % d == 0 for d in range(3, int(candidate**0.5) + 1, 2)):
        candidate += 2
    return candidate


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def _verified_paths(roots: Sequence[Root]) -> list[str]:
    """The manifest's roots (dropped ones too) that a start must look at: all but the
    immutable ones."""
    from vsite.store_holds import store_entry

    return [root.path for root in roots if not root.immutable and store_entry(root.path) is None]


def _identity_bytes(paths: Sequence[str]) -> bytes:
    """(inode, mtime) of every path, 16 bytes each; (-1, -1) for one that cannot be
    stat'ed."""
    return b"".join(map(identity, paths))


def sweep_temporaries(older_than: float = 60.0) -> int:
    """Remove index files a killed writer left half-written; return how many.

    A writer renames its ``*.tmp`` file into place within milliseconds, so one older
    than ``older_than`` seconds belongs to no live write (``vsite gc`` calls this).
    """
    import time

    from vsite._fs import remove_stale
    from vsite._paths import state_dir

    base = state_dir("index")
    now = time.time()
    removed = 0
    for name in os.listdir(base):
        if name.endswith(".tmp") and remove_stale(os.path.join(base, name), older_than, now):
            removed += 1
    return removed
