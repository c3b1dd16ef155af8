"""The persistent index: built once, reused by later processes while the roots hold still.

A cache entry is keyed by the manifest file's path and exact bytes, and verified by the
identity (inode, mtime) of every root: N stats instead of N directory scans, and no JSON
parse on a warm start. A root's own mtime is the one to watch: installing, upgrading,
reinstalling or removing a distribution in it adds, removes or renames top-level
entries (the ``*.dist-info`` name carries the version), which changes the root
directory's mtime; replacing the root changes its inode. What lies deeper (submodules)
is resolved by the stdlib's FileFinder at import time, not read from the index. The
identity is taken BEFORE the roots are scanned, so a root changed during the scan
leaves a cache entry that the next process rejects. Entries are written
to a temporary file and renamed into place, so concurrent writers are safe; ``marshal``
is the reader (the fastest in the stdlib for plain containers: see bench/).

An index written next to the manifest by ``vsite index`` (``MANIFEST.vsite-index``) is
for build systems whose roots are immutable: it is trusted on the manifest bytes alone.
"""

from __future__ import annotations

import marshal
import os

from vsite._fs import write_atomic
from vsite._record import Record
from vsite.index import DroppedRoot, SiteIndex
from vsite.manifest import Manifest, Root, read_manifest_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "SIDECAR_SUFFIX",
    "encode",
    "load",
    "load_or_build",
    "remember_plan",
    "sidecar_path",
    "store",
    "sweep_temporaries",
]

_FORMAT = 5  # 5: identity of the roots only, taken before the scan
SIDECAR_SUFFIX = ".vsite-index"

# Root's constructor parameters, in its order: a cached root is Root(*these values).
_ROOT_FIELDS = ("path", "pointer", "name", "version")


class _Entry(Record):
    """One cache file: marshalled as the plain tuple of these fields, in this order."""

    __slots__ = _fields = (
        "format",
        "source",
        "content",
        "manifest_roots",
        "roots",
        "entries",
        "mtimes",
        "identity",
        "dists",
        "pth",
        "dropped",
        "native",
        "plans",
    )
    format: int
    source: str  # the manifest file's path
    content: bytes  # ... and its exact bytes
    manifest_roots: tuple[tuple[str, str, str | None, str | None], ...]  # _ROOT_FIELDS
    roots: tuple[str, ...]
    entries: dict[str, list[tuple[int, bool]]]
    mtimes: tuple[int, ...]
    identity: bytes
    dists: dict[str, str]
    pth: tuple[tuple[str, str], ...]
    dropped: tuple[tuple[str, str, str], ...]  # (root pointer, dist, winner)
    native: tuple[str, ...]
    plans: dict[str, tuple[object, ...]]


def sidecar_path(manifest_source: str) -> str:
    return manifest_source + SIDECAR_SUFFIX


def load_or_build(source: str) -> SiteIndex:
    """The index for the manifest file at ``source`` (absolute), from cache when valid."""
    content = read_manifest_bytes(source)
    sidecar = _read(sidecar_path(source))
    if sidecar is not None:
        index = _decode(sidecar, source, content, verify=False)
        if index is not None:
            return index
    cache_file = _cache_file(source)
    if cache_file is not None:
        data = _read(cache_file)
        if data is not None:
            index = _decode(data, source, content, verify=True)
            if index is not None:
                index.cache_file = cache_file
                return index
    from vsite.index import build_index

    manifest = Manifest.from_bytes(content, source)
    identity = _identity_bytes(manifest.roots)
    index = build_index(manifest)
    index.identity = identity
    if cache_file is not None:
        index.cache_file = cache_file
        store(index, cache_file)
    return index


def remember_plan(index: SiteIndex, mode: str, plan: tuple[object, ...]) -> None:
    """Keep a farm plan with the cached index, so warm starts skip the tree walk."""
    index.plans[mode] = plan
    if index.cache_file is not None:
        store(index, index.cache_file)


def load(source: str, data: bytes, *, verify: bool = True) -> SiteIndex | None:
    """Decode a cached index for manifest ``source``; None when stale or foreign."""
    with open(source, "rb") as stream:
        content = stream.read()
    return _decode(data, source, content, verify=verify)


def store(index: SiteIndex, path: str) -> None:
    """Write ``index`` to ``path`` atomically; a failure to cache is never an error."""
    try:
        # An explicit mode: under umask 0 a plain open() would make it world-writable.
        write_atomic(path, encode(index), 0o644)
    except OSError:
        pass


def encode(index: SiteIndex) -> bytes:
    manifest = index.manifest
    entry = _Entry(
        format=_FORMAT,
        source=manifest.source,
        content=manifest.content,
        manifest_roots=tuple(
            tuple([getattr(root, name) for name in _ROOT_FIELDS]) for root in manifest.roots
        ),
        roots=index.roots,
        entries=index.entries,
        mtimes=index.mtimes,
        identity=index.identity if index.identity is not None else _identity_bytes(manifest.roots),
        dists=index.dists,
        pth=tuple(index.pth),
        dropped=tuple((d.root.pointer, d.dist, d.winner) for d in index.dropped),
        native=index.native,
        plans=index.plans,
    )
    return marshal.dumps(entry.as_tuple())


def _decode(data: bytes, source: str, content: bytes, *, verify: bool) -> SiteIndex | None:
    try:
        entry = _Entry.from_tuple(marshal.loads(data))
    except (ValueError, EOFError, TypeError):
        return None
    if entry is None or entry.format != _FORMAT:
        return None
    # A moved manifest may resolve its relative roots elsewhere: never reuse across paths.
    if entry.content != content or entry.source != source:
        return None
    manifest_roots = [Root(*raw) for raw in entry.manifest_roots]
    if verify and _identity_bytes(manifest_roots) != entry.identity:
        return None
    manifest = Manifest(source, manifest_roots, content)
    by_pointer = {root.pointer: root for root in manifest_roots}
    index = SiteIndex(
        manifest,
        roots=entry.roots,
        entries=entry.entries,
        mtimes=entry.mtimes,
        dists=entry.dists,
        pth=list(entry.pth),
        dropped=[DroppedRoot(by_pointer[p], dist, winner) for p, dist, winner in entry.dropped],
        native=entry.native,
    )
    index.plans = entry.plans
    index.identity = entry.identity
    return index


def _identity_bytes(roots: Sequence[Root]) -> bytes:
    """The identity as one bytes object: decoding one object beats decoding N tuples.

    marshal version 2 writes no back-references, so equal identities give equal bytes.
    """
    return marshal.dumps(_identity(roots), 2)


def _identity(roots: Sequence[Root]) -> tuple[tuple[int, int], ...]:
    """(inode, mtime) of every manifest root, dropped ones too."""
    found = []
    for root in roots:
        try:
            st = os.stat(root.path)
        except OSError:
            found.append((-1, -1))
        else:
            found.append((st.st_ino, st.st_mtime_ns))
    return tuple(found)


def sweep_temporaries(older_than: float = 60.0) -> int:
    """Remove index files a killed writer left half-written; return how many.

    A writer renames its ``*.tmp`` file into place within milliseconds, so one older
    than ``older_than`` seconds belongs to no live write (``vsite gc`` calls this).
    """
    import time

    from vsite._paths import state_dir

    base = state_dir("index")
    now = time.time()
    removed = 0
    for name in os.listdir(base):
        if not name.endswith(".tmp"):
            continue
        path = os.path.join(base, name)
        try:
            if now - os.lstat(path).st_mtime >= older_than:
                os.unlink(path)
                removed += 1
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _cache_file(source: str) -> str | None:
    try:
        from vsite._paths import state_dir

        base = state_dir("index")
    except OSError:  # no safe place (FarmError is an OSError): run uncached
        return None
    from vsite._paths import short_hash

    key = short_hash(source)
    return os.path.join(base, f"{key:08x}-{os.path.basename(source)[:40]}.marshal")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None
