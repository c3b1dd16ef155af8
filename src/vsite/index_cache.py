"""The persistent index: built once, then read by every later start in O(1) of the roots.

Where it lives: ``STATE/index/<hash>-<manifest name>.vsix`` (private to the user), or
``MANIFEST.vsite-index`` beside the manifest (written by ``vsite index`` for build systems:
trusted on the manifest's bytes alone, no root looked at).

**Freshness contract.** What a start notices, and what it costs:

- The manifest edited (its exact bytes are compared) or read from another path: another
  index is built. Cost: reading the manifest, which every start does.
- Immutable roots, i.e. roots in a vsite store (``.../wheels/<sha256>/site-packages``:
  content-addressed, read-only, verified by ``vsite install``) and roots the manifest
  declares ``"immutable"``: nothing. Declaring a root immutable promises that what is
  at its path never changes while the manifest's bytes stay the same: a build that
  replaces such a root writes a new manifest (or runs ``vsite index`` again).
- Every other ("verified") root: one ``stat`` per root, its inode and mtime, compared
  with what they were just before the index was built (taken before the scan, so a
  root changed during the scan is caught by the next start). This catches a root
  added, removed or replaced (inode) and a top-level entry added, removed or renamed
  in it (the root's mtime): installing, upgrading or removing a distribution. A
  ``stat`` costs a system call per root, the only cost that grows with the roots.
- Not caught: changes below a root's top level (``Q/`` gaining an ``__init__.py``, a
  module added inside a package). The index needs none of them: only top-level names
  are read from it; below, the stdlib's FileFinder (and vsite's union of split
  directories) looks at the disk at import time, as in a flat site. The one exception
  is native-code detection: a shared object appearing deeper in an existing package,
  with no top-level change, is not staged into the farm until the index is rebuilt
  (the root's mtime changes, the manifest changes, or ``vsite index``).

Writing index files is :mod:`vsite.index_write`'s job, never on a warm start's path.

**The file.** Little-endian u32 fields; read as untrusted input: every offset is checked
against the file's size and every record's shape is checked when it is decoded; any
inconsistency means the file is rebuilt (at start) or the index is rebuilt in process
(for a record decoded later). Layout::

    magic "vsite-ix", u32 format, u32 file size, u32 eager size, u32 section count,
    8 random bytes (this file, not a later one at its path), then (u32 offset, u32
    length) per section, then the sections:
    eager (one read at start): source, content, core, roots, verify, identity
    lazy (read when first used): names, dists, order, mtimes, dropped

``names`` and ``dists`` are hash tables (a prime number of buckets; a key's bucket is
its UTF-8 bytes as an integer modulo that prime, the same in every process and
version): a lookup reads its bucket and decodes the few records there with
``marshal``, so a start decodes nothing per name and a lookup costs the same at 10 or
10,000 roots. Names are grouped by their stem (the part before the first dot): the
union asks for ``tail``, ``tail.py``, ``tail.cpython-...so`` in a row, which one
bucket answers. Files are written to a temporary name and renamed into place.
"""

import marshal
import os
import sys
from _collections_abc import Mapping

from vsite.index import (
    COUNT,
    FIRST_SECTION,
    FORMAT,
    LAZY,
    MAGIC,
    SECTIONS,
    SIDECAR_SUFFIX,
    TABLE_AT,
    SiteIndex,
    bucket,
    identity,
    read_u32,
    text,
)
from vsite.index import stem as stem_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import (
        Any,
        Optional,  # local annotations: never evaluated
    )

    from vsite.index import DroppedRoot
    from vsite.manifest import Manifest

__all__ = ["SIDECAR_SUFFIX", "MappedIndex", "load", "load_or_build", "sidecar_path"]


#: What a damaged index file raises inside this module (never beyond it).
CorruptIndex = ValueError


def sidecar_path(manifest_source: str) -> str:
    return manifest_source + SIDECAR_SUFFIX


def load_or_build(source: str) -> "SiteIndex":
    """The index for the manifest file at ``source`` (absolute), from cache when valid."""
    try:
        with open(source, "rb") as stream:
            content = stream.read()
    except (OSError, ValueError):  # the manifest module says why, in one line
        from vsite.manifest import read_manifest_bytes

        content = read_manifest_bytes(source)
    index = _open(sidecar_path(source), source, content, verify=False)
    if index is not None:
        return index
    cache_file = _cache_file(source)
    if cache_file is not None:
        index = _open(cache_file, source, content, verify=True)
        if index is not None:
            return index
    from vsite.index_write import build

    return build(source, content, cache_file)


def load(source: str, data: bytes, *, verify: bool = True) -> "SiteIndex | None":
    """Decode index file bytes ``data`` for manifest ``source``; None when stale or
    foreign (for tools and tests: a start reads the file itself, in parts)."""
    with open(source, "rb") as stream:
        content = stream.read()
    try:
        return _decode(_Reader(data), source, content, verify=verify)
    except CorruptIndex:
        return None


# -- reading ---------------------------------------------------------------------------


class _Reader:
    """The sections of one index file: bounds-checked, the lazy ones read on demand."""

    __slots__ = ("data", "path", "sections", "size")

    def __init__(self, data: bytes, path: "str | None" = None, size: "int | None" = None) -> None:
        if len(data) < FIRST_SECTION or data[: len(MAGIC)] != MAGIC:
            raise CorruptIndex("not an index file")
        fields = [read_u32(data, len(MAGIC) + 4 * i) for i in range(4)]
        file_format, total, eager, count = fields
        if file_format != FORMAT or count != COUNT:
            raise CorruptIndex("another format")
        if (size if size is not None else len(data)) != total or eager > total:
            raise CorruptIndex("truncated or overlong")
        sections = []
        for number in range(count):
            offset = read_u32(data, TABLE_AT + 8 * number)
            length = read_u32(data, TABLE_AT + 8 * number + 4)
            end = offset + length
            limit = eager if number < len(SECTIONS) else total
            if offset < FIRST_SECTION or end > limit:
                raise CorruptIndex(f"section {number} out of bounds")
            sections.append((offset, end))
        self.data = data  # the eager part: header, table and the first sections
        self.path = path  # where the lazy sections are read from, None: all is in data
        self.sections = sections
        self.size = total

    def eager(self, number: int) -> bytes:
        start, end = self.sections[number]
        return self.data[start:end]

    def lazy(self, name: str) -> bytes:
        start, end = self.sections[len(SECTIONS) + LAZY.index(name)]
        if self.path is None:
            return self.data[start:end]
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise CorruptIndex(f"cannot reopen: {exc}") from None
        try:
            # The file may have been replaced since the start read it (a rename by a
            # process that rebuilt it): its header must be the one the start read.
            if os.pread(fd, FIRST_SECTION, 0) != self.data[:FIRST_SECTION]:
                raise CorruptIndex("replaced since the start read it")
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise CorruptIndex("truncated")
        return data


def _open(path: str, source: str, content: bytes, *, verify: bool) -> "MappedIndex | None":
    """The index in file ``path`` when it is intact and still describes the roots."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, 65536)
        if len(data) >= FIRST_SECTION and size <= 0xFFFFFFFF:
            eager = read_u32(data, len(MAGIC) + 8)
            if len(data) < eager <= size:
                data += os.pread(fd, eager - len(data), len(data))
        index = _decode(_Reader(data, path, size), source, content, verify=verify)
    except (OSError, CorruptIndex):
        return None
    finally:
        os.close(fd)
    if index is not None and verify:
        index.cache_file = path
    return index


def _decode(
    reader: "_Reader", source: str, content: bytes, *, verify: bool
) -> "MappedIndex | None":
    """Check and decode the eager part; None when the file is of another manifest or
    its roots changed; CorruptIndex when it is damaged."""
    # A moved manifest may resolve its relative roots elsewhere: never reuse across paths.
    if reader.eager(1) != content or reader.eager(0) != text(source):
        return None
    try:
        core = marshal.loads(reader.eager(2))
        pth, native, plans, held, system_site, verify_roots = core
        roots = tuple(_split(reader.eager(3)))
    except (ValueError, EOFError, TypeError, MemoryError):
        raise CorruptIndex("core") from None
    # The roots this start verifies; none for a sidecar, trusted whole.
    changing = (roots if verify_roots is True else _split(reader.eager(4))) if verify else []
    if verify and not _same_identity(changing, reader.eager(5)):
        return None
    if not (
        _strings(held)
        and _strings(native)
        and type(plans) is dict
        and type(system_site) is bool
        and type(pth) is tuple
        and all(type(p) is tuple and len(p) == 2 and _strings(p) for p in pth)
    ):
        raise CorruptIndex("core")
    return MappedIndex(
        reader,
        source,
        content,
        system_site,
        roots=roots,
        pth=list(pth),
        native=native,
        plans=plans,
        held=held,
        identity=reader.eager(5),
        changing=tuple(changing),
    )


def _split(data: bytes) -> list[str]:
    return data.decode("utf-8", "surrogateescape").split("\0") if data else []


def _strings(values: object) -> bool:
    return type(values) is tuple and all(type(v) is str for v in values)


class MappedIndex(SiteIndex):
    """A :class:`SiteIndex` read from an index file.

    What a start needs is decoded at once (roots, ``.pth`` files, native names, farm
    plans); ``entries`` and ``dists`` are lazy mappings answering one name at a time;
    ``manifest``, ``mtimes`` and ``dropped`` are decoded on first use.
    """

    __slots__ = ("_content", "_reader", "_rebuilt", "_source", "_system_site", "_tables")

    def __init__(
        self,
        reader: "_Reader",
        source: str,
        content: bytes,
        system_site: bool,
        *,
        roots: tuple[str, ...],
        pth: list[tuple[str, str]],
        native: tuple[str, ...],
        plans: dict[str, tuple[object, ...]],
        held: tuple[str, ...],
        identity: bytes,
        changing: tuple[str, ...],
    ) -> None:
        self._reader = reader
        self._source = source
        self._content = content
        self._system_site = system_site
        self._rebuilt: Optional[SiteIndex] = None
        self._tables: dict[str, bytes] = {}  # hash table sections read so far
        self.roots = roots
        self.pth = pth
        self.native = native
        self.plans = plans
        self.held = held
        self.identity = identity
        self.changing = changing
        self.cache_file = None
        self.entries = _NameTable(self, len(roots))
        self.dists = _DistTable(self)

    @property
    def source(self) -> str:
        return self._source

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def system_site_packages(self) -> bool:
        return self._system_site

    def same_manifest(self, other: "SiteIndex") -> bool:
        if isinstance(other, MappedIndex):
            return (self._source, self._content) == (other._source, other._content)
        return super().same_manifest(other)

    def __getattr__(self, name: str) -> object:
        # Called only for the slots left unset: the parts decoded on first use.
        if name == "manifest":
            value: object = self._manifest()
        elif name == "mtimes":
            value = self._lazy("mtimes", lambda v: _ints(v, len(self.roots)), "mtimes")
        elif name == "dropped":
            value = self._dropped()
        else:
            raise AttributeError(name)
        object.__setattr__(self, name, value)
        return value

    def _manifest(self) -> "Manifest":
        from vsite.manifest import Manifest

        return Manifest.from_bytes(self._content, self._source)

    def _dropped(self) -> "list[DroppedRoot]":
        from vsite.index import DroppedRoot

        triples = self._lazy("dropped", _triples, "dropped")
        if isinstance(triples, list):  # the rebuilt index's
            return triples
        assert isinstance(triples, tuple)
        by_pointer = {root.pointer: root for root in self.manifest.roots}
        try:
            return [DroppedRoot(by_pointer[p], dist, winner) for p, dist, winner in triples]
        except KeyError:
            return list(self.rebuilt().dropped)

    def _lazy(self, section: str, check: "Callable[[object], bool]", fallback: str) -> object:
        """Section ``section`` decoded and checked; the rebuilt index's ``fallback``
        attribute when the file does not hold what it should."""
        try:
            value = marshal.loads(self._reader.lazy(section))
        except (ValueError, EOFError, TypeError, MemoryError, CorruptIndex):
            value = None
        if value is None or not check(value):
            return getattr(self.rebuilt(), fallback)
        return value

    def bucket(self, section: str, key: str) -> "dict[str, object] | None":
        """The records of ``key``'s bucket in hash table ``section``; None when the file
        is damaged (the caller then asks :meth:`rebuilt`)."""
        data = self.table(section)
        if data is None:
            return None
        count = read_u32(data, 0)
        at = 4 + 4 * bucket(key, count)
        start, end = read_u32(data, at), read_u32(data, at + 4)
        if start == end:
            return {}
        if not 4 + 4 * (count + 1) <= start < end <= len(data):
            return None
        try:
            records = marshal.loads(data[start:end])
        except (ValueError, EOFError, TypeError, MemoryError):
            return None
        return records if type(records) is dict else None

    def table(self, section: str) -> "bytes | None":
        """Hash table ``section``, read on first use; None when damaged."""
        data = self._tables.get(section)
        if data is None:
            try:
                data = self._reader.lazy(section)
            except CorruptIndex:
                return None
            if len(data) < 8 or len(data) < 4 + 4 * (read_u32(data, 0) + 1):
                return None
            self._tables[section] = data
        return data

    def order(self) -> tuple[tuple[str, str], ...]:
        pairs = self._lazy("order", _pairs, "dists")
        if isinstance(pairs, dict):  # rebuilt
            return tuple(pairs.items())
        return pairs  # type: ignore[return-value]

    def rebuilt(self) -> "SiteIndex":
        """The index built anew from the roots, for a damaged file (which it replaces).

        Its roots must be the ones this start activated: answers from another set of
        roots would not fit the site already in place.
        """
        if self._rebuilt is None:
            from vsite.index_write import build

            rebuilt = build(self._source, self._content, self.cache_file)
            if rebuilt.roots != self.roots:
                raise ImportError(
                    f"vsite: the index file {self.cache_file or self._reader.path} was damaged "
                    "and the roots changed since this process started; restart it"
                )
            self._rebuilt = rebuilt
        return self._rebuilt


class _ByName:
    """``[]`` and ``in`` of a lazy table, through its ``get`` (one bucket, no full read)."""

    __slots__ = ()

    def get(self, name: str, default: object = None) -> object:
        raise NotImplementedError

    def __getitem__(self, name: str) -> "Any":
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


class _NameTable(_ByName, Mapping[str, "list[tuple[int, bool]]"]):
    """``SiteIndex.entries`` of a mapped index: top-level name -> [(root, is dir)]."""

    __slots__ = ("_index", "_memo", "_roots")

    def __init__(self, index: "MappedIndex", roots: int) -> None:
        self._index = index
        self._roots = roots
        self._memo: dict[str, dict[str, list[tuple[int, bool]]]] = {}

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        stem = name.partition(".")[0]
        group = self._memo.get(stem)
        if group is None:
            group = self._group(stem)
        return group.get(name, default)

    def _group(self, stem: str) -> dict[str, list[tuple[int, bool]]]:
        records = self._index.bucket("names", stem)
        group = None if records is None else records.get(stem, {})
        if not _holders_by_name(group, self._roots, stem):
            rebuilt = self._index.rebuilt().entries
            group = {name: rebuilt[name] for name in rebuilt if stem_of(name) == stem}
        self._memo[stem] = group  # type: ignore[assignment]
        return group  # type: ignore[return-value]

    def _all(self) -> dict[str, list[tuple[int, bool]]]:
        every: dict[str, list[tuple[int, bool]]] = {}
        data = self._index.table("names")
        if data is None:
            return dict(self._index.rebuilt().entries)
        count = read_u32(data, 0)
        for number in range(count):
            start, end = read_u32(data, 4 + 4 * number), read_u32(data, 8 + 4 * number)
            if start == end:
                continue
            try:
                records = marshal.loads(data[start:end])
            except (ValueError, EOFError, TypeError, MemoryError):
                return dict(self._index.rebuilt().entries)
            for stem in records if type(records) is dict else ():
                every.update(self.get_group(stem))
        return every

    def get_group(self, stem: str) -> dict[str, list[tuple[int, bool]]]:
        group = self._memo.get(stem)
        return group if group is not None else self._group(stem)

    def __iter__(self) -> "Iterator[str]":
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class _DistTable(_ByName, Mapping[str, str]):
    """``SiteIndex.dists`` of a mapped index: canonical name -> dist-info path, iterated
    in site order."""

    __slots__ = ("_index", "_ordered")

    def __init__(self, index: "MappedIndex") -> None:
        self._index = index
        self._ordered: Optional[dict[str, str]] = None

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        if self._ordered is not None:
            return self._ordered.get(name, default)
        records = self._index.bucket("dists", name)
        if records is None:
            return self._index.rebuilt().dists.get(name, default)
        found = records.get(name)
        if found is None:
            return default
        if type(found) is not str:
            return self._index.rebuilt().dists.get(name, default)
        return found

    def ordered(self) -> dict[str, str]:
        if self._ordered is None:
            self._ordered = dict(self._index.order())
        return self._ordered

    def __iter__(self) -> "Iterator[str]":
        return iter(self.ordered())

    def __len__(self) -> int:
        return len(self.ordered())


def _holders_by_name(group: object, roots: int, stem: str) -> bool:
    if type(group) is not dict:
        return False
    for name, holders in group.items():
        if type(name) is not str or stem_of(name) != stem or type(holders) is not list:
            return False
        for holder in holders:
            if not (
                type(holder) is tuple
                and len(holder) == 2
                and type(holder[0]) is int
                and 0 <= holder[0] < roots
                and type(holder[1]) is bool
            ):
                return False
    return True


def _ints(value: object, count: int) -> bool:
    return type(value) is tuple and len(value) == count and all(type(v) is int for v in value)


def _pairs(value: object) -> bool:
    return type(value) is tuple and all(
        type(v) is tuple and len(v) == 2 and _strings(v) for v in value
    )


def _triples(value: object) -> bool:
    return type(value) is tuple and all(
        type(v) is tuple and len(v) == 3 and _strings(v) for v in value
    )


# -- identity of the verified roots -------------------------------------------------------


def _same_identity(paths: "Sequence[str]", expected: bytes) -> bool:
    """Whether every path still has its recorded identity: one ``stat`` a path, the
    start's only cost that grows with the roots.

    The stats are compared a chunk of paths at a time, in one list comparison against
    the recorded bytes read as u64s: ~2.9 us a root here, of which the ``stat`` itself
    is ~2.3 (a loop building each path's 16 bytes: ~3.3); chunks, so the ints made
    for the comparison stay a few KiB at any number of roots (not a start's peak RSS).
    A path that cannot be stat'ed takes the loop that compares byte by byte (a path
    recorded as gone is still gone: fresh).
    """
    if len(expected) != 16 * len(paths):
        return False
    if _LITTLE_ENDIAN:
        recorded = memoryview(expected).cast("Q")
        stat = os.stat
        try:
            for at in range(0, len(paths), _CHUNK):
                now = [
                    field
                    for st in map(stat, paths[at : at + _CHUNK])
                    for field in (st.st_ino, st.st_mtime_ns & _U64)
                ]
                if now != recorded[2 * at : 2 * at + len(now)].tolist():
                    return False
        except OSError:
            pass
        else:
            return True
    at = 0
    for path in paths:
        if identity(path) != expected[at : at + 16]:
            return False
        at += 16
    return True


_CHUNK = 256  # paths compared at once
_U64 = (1 << 64) - 1  # a negative mtime as its two's complement, as identity() stores it
_LITTLE_ENDIAN = sys.byteorder == "little"  # how identity() stores it; cast("Q") is native


def _cache_file(source: str) -> "str | None":
    try:
        from vsite._paths import state_dir

        base = state_dir("index")
    except OSError:  # no safe place (FarmError is an OSError): run uncached
        return None
    from vsite._paths import short_hash

    key = short_hash(source)
    return os.path.join(base, f"{key:08x}-{os.path.basename(source)[:40]}.vsix")
