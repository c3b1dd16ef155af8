"""The index: merge the roots of a manifest, in order, into one SiteIndex; and the
layout of its file with the primitives its reader (:mod:`vsite.index_cache`) and writer
(:mod:`vsite.index_write`) share (one module: both are on every start's path).

Validation happens here, before activation touches any global state: every missing or
unusable root is reported at once.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Optional  # local annotations: never evaluated

    from vsite.manifest import Manifest, Root
    from vsite.scan import RootScan

__all__ = ["DroppedRoot", "SiteIndex", "build_index"]

# -- the index file's layout (the format is described in vsite.index_cache) --------------

MAGIC = b"vsite-ix"
FORMAT = 8  # 6: sectioned, hashed tables read lazily; immutable roots unverified; 7: views;
# 8: farm plans of farm format 4 (the marker records mtimes; see vsite._farm_lock)
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


# -- the index -----------------------------------------------------------------------------


class DroppedRoot:
    """A root left out whole because an earlier root has the same distribution."""

    __slots__ = ("dist", "root", "winner")

    def __init__(self, root: "Root", dist: str, winner: str) -> None:
        self.root = root
        self.dist = dist
        self.winner = winner

    def __repr__(self) -> str:
        return f"DroppedRoot({self.root.path!r}, {self.dist!r}, winner={self.winner!r})"


class SiteIndex:
    """The union of the used roots, in manifest order.

    Built here from the roots, or read from an index file
    (:class:`vsite.index_cache.MappedIndex`, whose ``entries`` and ``dists`` answer one
    name at a time).
    """

    __slots__ = (
        "cache_file",
        "changing",
        "dists",
        "dropped",
        "entries",
        "held",
        "identity",
        "manifest",
        "mtimes",
        "native",
        "plans",
        "pth",
        "roots",
    )

    def __init__(
        self,
        manifest: "Manifest",
        roots: tuple[str, ...],
        entries: "Mapping[str, list[tuple[int, bool]]]",
        mtimes: tuple[int, ...],
        dists: "Mapping[str, str]",
        pth: list[tuple[str, str]],
        dropped: "list[DroppedRoot]",
        native: tuple[str, ...] = (),
    ) -> None:
        self.manifest = manifest
        self.roots = roots  # used roots, in manifest order
        self.entries = entries  # top-level name -> [(root number, is dir)]
        self.mtimes = mtimes  # st_mtime_ns of each used root
        self.dists = dists  # canonical name -> dist-info path, in site order
        self.pth = pth  # (file name, root) in site order: by name, first root wins
        self.dropped = dropped
        self.native = native  # top-level names holding native code, to stage in the farm
        self.plans: dict[str, tuple[object, ...]] = {}  # link mode -> farm plan data
        self.cache_file: Optional[str] = None  # where this index persists, if anywhere
        self.identity: Optional[bytes] = None  # the roots' identity, taken before the scan
        # The roots a start verifies, whose files may change between starts; None: not
        # known here (every link of the farm's native part is then checked).
        self.changing: Optional[tuple[str, ...]] = None
        # The vsite store entries among the roots: held for this process's lifetime.
        self.held: tuple[str, ...] = _store_entries(roots)

    @property
    def source(self) -> str:
        """The manifest file's path ("<memory>" for one made in code)."""
        return self.manifest.source

    @property
    def content(self) -> bytes:
        """The manifest file's exact bytes."""
        return self.manifest.content

    @property
    def system_site_packages(self) -> bool:
        """The manifest's ``"system-site-packages"``."""
        return self.manifest.system_site_packages

    def same_manifest(self, other: "SiteIndex") -> bool:
        """Whether ``other`` is the index of the same manifest."""
        return self.manifest == other.manifest


def _store_entries(roots: tuple[str, ...]) -> tuple[str, ...]:
    from vsite.store_holds import store_entry

    return tuple(entry for entry in map(store_entry, roots) if entry is not None)


def scan_roots(manifest: "Manifest", mtimes: "Mapping[str, int] | None" = None) -> "list[RootScan]":
    """Scan every root of ``manifest``; RootError lists every unusable root at once.

    ``mtimes``: root path -> its mtime, where the caller has just stat'ed the roots.
    """
    # Imported here: a warm start (persistent index) never scans.
    from vsite.errors import Problem, RootError
    from vsite.scan import scan_root

    scans: list[RootScan] = []
    problems: list[Problem] = []
    for root in manifest.roots:
        try:
            scans.append(scan_root(root.path, None if mtimes is None else mtimes.get(root.path)))
        except FileNotFoundError:
            problems.append(Problem("root does not exist", root.pointer, root.path))
        except NotADirectoryError:
            problems.append(Problem("root is not a directory", root.pointer, root.path))
        except OSError as exc:
            problems.append(
                Problem(f"root cannot be read: {exc.strerror or exc}", root.pointer, root.path)
            )
    if problems:
        first = problems[0]
        raise RootError(
            first.message if len(problems) == 1 else f"{len(problems)} roots cannot be used",
            manifest=manifest.source,
            pointer=first.pointer,
            root=first.root,
            problems=problems if len(problems) > 1 else (),
        )
    return scans


def build_index(manifest: "Manifest", mtimes: "Mapping[str, int] | None" = None) -> "SiteIndex":
    """Scan and merge ``manifest``'s roots; a root repeating a distribution is dropped.

    ``mtimes``: root path -> its mtime, where the caller has just stat'ed the roots.
    """
    from vsite.native.detect import native_entries

    scans = scan_roots(manifest, mtimes)
    owner: dict[str, str] = {}  # canonical dist name -> root path that provides it
    dists: dict[str, str] = {}
    dropped: list[DroppedRoot] = []
    kept: list[RootScan] = []
    for root, scan in zip(manifest.roots, scans):
        clash = next((name for name, _ in scan.dists if name in owner), None)
        if clash is not None:
            dropped.append(DroppedRoot(root, clash, owner[clash]))
            continue
        for name, dirname in scan.dists:
            if name not in owner:  # Two dist-infos of one name in one root: first wins.
                owner[name] = scan.path
                dists[name] = os.path.join(scan.path, dirname)
        kept.append(scan)

    entries: dict[str, list[tuple[int, bool]]] = {}
    pth_owner: dict[str, str] = {}
    native: set[str] = set()
    for number, scan in enumerate(kept):
        native.update(native_entries(scan.path, scan.listing))
        for name, is_dir in scan.listing.items():
            holders = entries.get(name)
            if holders is None:
                entries[name] = [(number, is_dir)]
            else:
                holders.append((number, is_dir))
        for name in scan.pth:
            pth_owner.setdefault(name, scan.path)
    pth = sorted(pth_owner.items())
    return SiteIndex(
        manifest,
        tuple(scan.path for scan in kept),
        entries,
        tuple(scan.mtime for scan in kept),
        dists,
        pth,
        dropped,
        tuple(sorted(native)),
    )
