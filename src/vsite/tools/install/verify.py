"""Store entries are verified, not trusted: what an entry holds, and the checks of it.

A store entry's ``wheel.json`` carries the entry ``format`` (:data:`STORE_FORMAT`) and,
from format 2 on, ``files``: every file under the entry (``site-packages/`` and its
siblings, bytecode included, ``wheel.json`` itself excepted) with its size, keyed by its
path relative to the entry. It is written with the entry, before the entry is renamed
into place, and rewritten (atomically, under the entry's lock) only when bytecode of
another interpreter is added.

Bytecode is recorded. A pyc in the store is unchecked-hash (:mod:`.bytecode`): the
import system loads it without looking at its source, so a truncated or deleted pyc
breaks the import of a module whose source is intact; it must be verified like any file.
Each interpreter's pycs are recorded when its cache tag is (in the same atomic write of
``wheel.json``, under the lock :meth:`Store.add_bytecode` holds), so the record never
names bytecode that a crash midway left unwritten.

Three checks, from cheap to dear:

- :func:`check_sizes`: every recorded file is there, a regular file of its recorded size
  (``lstat`` only). ``vsite install`` runs it before reusing an entry, ``vsite check`` for
  the store roots of a manifest.
- :func:`check_record_sizes`: the same against RECORD's sizes, for an entry written
  before the record existed (format 1): ``vsite check`` of such an entry.
- :func:`check_content`: every file RECORD lists hashes to RECORD's digest (the wheel's
  own), and this interpreter's pycs hold the hash of their source; ``vsite store
  verify`` runs it on every entry, and ``vsite install`` once on a format-1 entry before
  recording it.

An entry whose format is newer than :data:`STORE_FORMAT` (or not a format at all) is
never read as one this vsite knows: :func:`read_info` raises StoreError naming it.

Never on the activation path: only ``vsite install``, ``check`` and ``store verify``
import this module. Tooling path: the standard library; RECORD is parsed with
``installer``'s reader, imported where RECORD is read.
"""

from __future__ import annotations

import json
import os
import stat

from vsite._fs import remove_tree
from vsite.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Iterator, Mapping

__all__ = [
    "DAMAGE_KINDS",
    "ENTRY_FILE",
    "ROOT_DIR",
    "STORE_FORMAT",
    "Damage",
    "EntryInfo",
    "EntryResult",
    "bytecode_files",
    "check_content",
    "check_record_sizes",
    "check_sizes",
    "describe",
    "entry_damage",
    "read_info",
    "record_files",
    "record_rows",
    "store_entries",
    "verify_store",
]

ROOT_DIR = "site-packages"
ENTRY_FILE = "wheel.json"

#: The store entry format this vsite writes and the newest it reads. 1: entries written
#: before the field existed (no ``files``); 2: ``files`` records what the entry holds.
STORE_FORMAT = 2

_SHOWN = 3  # paths named per kind of damage in one line
_HEX = frozenset("0123456789abcdef")


#: Kinds of damage in the order :func:`describe` names them, with how it names them.
DAMAGE_KINDS = {
    "info": "entry description damaged",
    "missing": "missing files",
    "not-a-file": "not regular files",
    "size": "files of another size",
    "hash": "files changed (RECORD hash differs)",
    "bytecode": "bytecode not matching its source",
    "record": "RECORD unusable",
    "unreadable": "unreadable files",
}


class Damage:
    """One thing wrong with a store entry: its kind, the path (relative to the entry)
    and, for some kinds, what was found."""

    __slots__ = ("detail", "kind", "path")

    def __init__(self, kind: str, path: str, detail: str = "") -> None:
        assert kind in DAMAGE_KINDS, kind
        self.kind = kind
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.path} ({self.detail})" if self.detail else self.path

    def __repr__(self) -> str:
        return f"Damage({self.kind!r}, {self.path!r}, {self.detail!r})"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


def describe(damage: Iterable[Damage]) -> str:
    """One line: per kind, how many files and the first few of them."""
    groups: dict[str, list[Damage]] = {}
    for item in damage:
        groups.setdefault(item.kind, []).append(item)
    parts = []
    for kind, heading in DAMAGE_KINDS.items():
        group = groups.get(kind)
        if group:
            shown = ", ".join(str(item) for item in group[:_SHOWN])
            more = f" and {len(group) - _SHOWN} more" if len(group) > _SHOWN else ""
            parts.append(f"{heading} ({len(group)}): {shown}{more}")
    return "; ".join(parts)


class EntryInfo:
    """A store entry's ``wheel.json``, read and checked for shape.

    ``files`` is the record (None for a format-1 entry, which has none); ``data`` is the
    whole document, unknown keys included, so a rewrite keeps them.
    """

    __slots__ = ("bytecode", "data", "entry_format", "files", "name", "path", "version", "wheel")

    def __init__(self, path: str, data: dict[str, object], entry_format: int) -> None:
        self.path = path
        self.data = data
        self.entry_format = entry_format
        self.wheel = str(data["wheel"])
        self.name = str(data["name"])
        self.version = str(data["version"])
        tags = data.get("bytecode")  # absent from entries written before it was recorded
        self.bytecode = (
            tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else ()
        )
        files = data.get("files") if entry_format >= 2 else None
        self.files: dict[str, int] | None = files if isinstance(files, dict) else None


def read_info(path: str, sha256: str | None = None) -> EntryInfo | Damage:
    """The ``wheel.json`` of the entry at ``path``, or what is wrong with it.

    Raises StoreError, naming the entry, when its format is newer than this vsite knows
    (or is no format at all): such an entry is neither read nor repaired here.
    """
    try:
        with open(os.path.join(path, ENTRY_FILE), "rb") as stream:
            data = json.loads(stream.read().decode("utf-8"))
    except FileNotFoundError:
        return Damage("info", ENTRY_FILE, "missing")
    except NotADirectoryError:
        return Damage("info", ENTRY_FILE, "the entry is not a directory")
    except OSError as exc:
        return Damage("info", ENTRY_FILE, f"cannot be read: {exc.strerror or exc}")
    except ValueError:  # not UTF-8, not JSON
        return Damage("info", ENTRY_FILE, "not valid JSON")
    if not isinstance(data, dict):
        return Damage("info", ENTRY_FILE, "not a JSON object")
    found = data.get("format", 1)
    if type(found) is not int or found < 1:
        raise StoreError(
            f"store entry {path} has an unknown entry format {found!r}: "
            "not read; remove it or use the vsite that wrote it"
        )
    if found > STORE_FORMAT:
        raise StoreError(
            f"store entry {path} was written by a newer vsite (entry format {found}; "
            f"this vsite knows up to {STORE_FORMAT}): use that vsite, or another --store"
        )
    for key in ("wheel", "name", "version", "sha256"):
        if not isinstance(data.get(key), str):
            return Damage("info", ENTRY_FILE, f"no {key!r}")
    if sha256 is not None and data["sha256"] != sha256:
        return Damage("info", ENTRY_FILE, "describes another wheel")
    if found >= 2:
        files = data.get("files")
        if not isinstance(files, dict) or not all(
            isinstance(rel, str) and type(size) is int and _inside(rel)
            for rel, size in files.items()
        ):
            return Damage("info", ENTRY_FILE, "its record of files is damaged")
    return EntryInfo(path, data, found)


def _inside(rel: str) -> bool:
    """``rel`` is a relative path that stays inside the entry."""
    return bool(rel) and not rel.startswith("/") and ".." not in rel.split("/")


# -- the record --------------------------------------------------------------------------


def record_files(entry: str) -> dict[str, int]:
    """Every regular file under the entry directory ``entry`` (``wheel.json`` excepted):
    its path relative to ``entry``, and its size."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(entry):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, entry)
        for name in sorted(filenames):
            if rel_dir == "." and name == ENTRY_FILE:
                continue
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                found[os.path.normpath(os.path.join(rel_dir, name))] = st.st_size
    return found


def bytecode_files(entry: str, tags: Iterable[str]) -> dict[str, int]:
    """The pycs of the cache ``tags`` under the entry's root (``__pycache__/*.TAG.pyc``,
    optimized levels included), relative to the entry, with their sizes."""
    suffixes = tuple(f".{tag}{opt}.pyc" for tag in tags for opt in ("", ".opt-1", ".opt-2"))
    found: dict[str, int] = {}
    if not suffixes:
        return found
    for dirpath, dirnames, filenames in os.walk(os.path.join(entry, ROOT_DIR)):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        if os.path.basename(dirpath) != "__pycache__":
            continue
        for name in filenames:
            if not name.endswith(suffixes):
                continue
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                found[os.path.relpath(path, entry)] = st.st_size
    return found


def check_sizes(entry: str, files: Mapping[str, int]) -> list[Damage]:
    """Every file of the record ``files`` present under ``entry``, with its size."""
    damage: list[Damage] = []
    prefix = os.path.join(entry, "")
    is_file = stat.S_ISREG
    for rel, size in files.items():  # one lstat a file: the whole cost (~4 us)
        try:
            found = os.lstat(prefix + rel)
        except OSError:
            _lstat(entry, rel, damage)  # says why
            continue
        if not is_file(found.st_mode):
            damage.append(Damage("not-a-file", rel))
        elif found.st_size != size:
            detail = f"{found.st_size} bytes, recorded {size}"
            damage.append(Damage("size", rel, detail))
    return damage


def _lstat(entry: str, rel: str, damage: list[Damage]) -> os.stat_result | None:
    """``rel``'s lstat, or None with the reason appended to ``damage``."""
    try:
        st = os.lstat(os.path.join(entry, rel))
    except (FileNotFoundError, NotADirectoryError):
        damage.append(Damage("missing", rel))
        return None
    except OSError as exc:
        damage.append(Damage("unreadable", rel, exc.strerror or str(exc)))
        return None
    if not stat.S_ISREG(st.st_mode):
        damage.append(Damage("not-a-file", rel))
        return None
    return st


# -- RECORD ------------------------------------------------------------------------------


def record_rows(entry: str) -> list[tuple[str, str, str]] | Damage:
    """Each row of the RECORD of every ``.dist-info`` in the entry's root, its path made
    relative to the entry: (path, hash, size). What is wrong instead, when the root or
    RECORD is missing, unreadable or names a path outside the entry."""
    from installer.records import InvalidRecordEntry, parse_record_file

    root = os.path.join(entry, ROOT_DIR)
    try:
        names = sorted(name for name in os.listdir(root) if name.endswith(".dist-info"))
    except (FileNotFoundError, NotADirectoryError):
        return Damage("missing", ROOT_DIR)
    except OSError as exc:
        return Damage("unreadable", ROOT_DIR, exc.strerror or str(exc))
    if not names:
        return Damage("record", ROOT_DIR, "no .dist-info")
    rows: list[tuple[str, str, str]] = []
    for name in names:
        record = f"{ROOT_DIR}/{name}/RECORD"
        try:
            with open(os.path.join(entry, record), "rb") as stream:
                lines = stream.read().decode("utf-8").splitlines()
            parsed = list(parse_record_file(lines))
        except FileNotFoundError:
            return Damage("record", record, "missing")
        except OSError as exc:
            return Damage("record", record, f"cannot be read: {exc.strerror or exc}")
        except (ValueError, InvalidRecordEntry):  # not UTF-8, a bad row
            return Damage("record", record, "not a valid RECORD")
        for path, digest, size in parsed:
            rel = os.path.normpath(os.path.join(ROOT_DIR, path))
            if not _inside(rel):
                return Damage("record", record, f"names {path!r}, outside the entry")
            rows.append((rel, digest, size))
    return rows


def check_record_sizes(entry: str, rows: Iterable[tuple[str, str, str]]) -> list[Damage]:
    """Every file RECORD lists present, with RECORD's size where it gives one."""
    damage: list[Damage] = []
    for rel, _, size in rows:
        found = _lstat(entry, rel, damage)
        if found is not None and size.isdigit() and found.st_size != int(size):
            damage.append(Damage("size", rel, f"{found.st_size} bytes, RECORD says {size}"))
    return damage


def check_content(
    entry: str, rows: Iterable[tuple[str, str, str]], bytecode: Iterable[str]
) -> list[Damage]:
    """Every file RECORD lists present and hashing to RECORD's digest; this
    interpreter's unchecked-hash pycs holding their source's hash.

    A pyc that RECORD lists (a wheel that ships bytecode) under a cache tag in
    ``bytecode`` is vsite's own, compiled over the shipped one: it is checked as bytecode,
    not against RECORD.
    """
    import base64
    import hashlib

    tags = tuple(f".{tag}.pyc" for tag in bytecode)
    damage: list[Damage] = []
    for rel, digest, _ in rows:
        if not digest or (tags and _is_pyc(rel) and rel.endswith(tags)):
            continue
        algorithm, _, want = digest.partition("=")
        try:
            hasher = hashlib.new(algorithm)
        except ValueError:
            damage.append(Damage("record", rel, f"unknown hash {algorithm!r} in RECORD"))
            continue
        if _lstat(entry, rel, damage) is None:
            continue
        try:
            with open(os.path.join(entry, rel), "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    hasher.update(block)
        except OSError as exc:
            damage.append(Damage("unreadable", rel, exc.strerror or str(exc)))
            continue
        got = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode("ascii")
        if got != want:
            damage.append(Damage("hash", rel))
    damaged = {item.path for item in damage}
    damage.extend(_check_own_bytecode(entry, damaged))
    return damage


def _is_pyc(rel: str) -> bool:
    return rel.endswith(".pyc") and os.path.basename(os.path.dirname(rel)) == "__pycache__"


def _check_own_bytecode(entry: str, damaged: Container[str]) -> list[Damage]:
    """This interpreter's unchecked-hash pycs (what ``vsite install`` compiles) against the
    hash of their source, unless the source is among the ``damaged`` paths. Other
    interpreters' bytecode cannot be read here: their pycs are checked by size only;
    timestamp pycs (an older ``--compile``) are left alone."""
    import importlib.util
    import sys

    tag: str | None = sys.implementation.cache_tag  # None: no bytecode written
    if tag is None:
        return []
    damage: list[Damage] = []
    for rel in sorted(bytecode_files(entry, [tag])):
        name = os.path.basename(rel)
        if not name.endswith(f".{tag}.pyc"):
            continue  # optimized levels: vsite writes none
        source = os.path.join(os.path.dirname(os.path.dirname(rel)), name[: -len(tag) - 5])
        source += ".py"
        if source in damaged:
            continue  # the source is reported; the pyc still holds the wheel's code
        try:
            with open(os.path.join(entry, rel), "rb") as stream:
                header = stream.read(16)
            with open(os.path.join(entry, source), "rb") as stream:
                data = stream.read()
        except OSError:
            continue  # a missing source or pyc is reported by the size and RECORD checks
        flags = int.from_bytes(header[4:8], "little") if len(header) == 16 else -1
        if flags == 0 and header[:4] == importlib.util.MAGIC_NUMBER:
            continue  # a timestamp pyc: not vsite's unchecked-hash bytecode
        if header[:4] != importlib.util.MAGIC_NUMBER or flags != 0b01:
            damage.append(Damage("bytecode", rel, "bad header"))
        elif header[8:16] != importlib.util.source_hash(data):
            damage.append(Damage("bytecode", rel))
    return damage


# -- one entry, and the whole store ------------------------------------------------------


def entry_damage(path: str, *, content: bool = False) -> list[Damage]:
    """What is wrong with the store entry at ``path``: an empty list for a sound one.

    Without ``content``, sizes only (the record's, or RECORD's for a format-1 entry);
    with it, RECORD's hashes and this interpreter's bytecode too. Raises StoreError for
    an entry of a newer format (see :func:`read_info`).
    """
    info = read_info(path, os.path.basename(path))
    if isinstance(info, Damage):
        return [info]
    damage: list[Damage] = []
    if info.files is not None:
        damage = check_sizes(path, info.files)
    if content or info.files is None:
        rows = record_rows(path)
        if isinstance(rows, Damage):
            return _merged(damage, [rows])
        extra = check_content(path, rows, info.bytecode) if content else []
        if info.files is None:
            extra = check_record_sizes(path, rows) + extra
        damage = _merged(damage, extra)
    return damage


def _merged(first: list[Damage], second: list[Damage]) -> list[Damage]:
    """``first``, then what ``second`` says of paths ``first`` does not name."""
    named = {item.path for item in first}
    return first + [item for item in second if item.path not in named]


def store_entries(wheels: str) -> list[str]:
    """The names of the entries in the store's ``wheels`` directory (their sha256), sorted;
    temp dirs of unpacks under way are not entries."""
    try:
        names = os.listdir(wheels)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read the store {wheels}: {exc.strerror or exc}") from None
    return sorted(name for name in names if len(name) == 64 and set(name) <= _HEX)


class EntryResult:
    """What ``vsite store verify`` found of one entry, and what it did.

    ``status``: ``ok``, ``damaged`` or ``unverified`` (a format this vsite does not know:
    ``message`` says which). ``action`` after a repair: ``removed``, ``sound`` (another
    process repaired it meanwhile) or ``failed: REASON``.
    """

    __slots__ = ("action", "damage", "message", "path", "status", "wheel")

    def __init__(
        self,
        path: str,
        status: str,
        damage: list[Damage] | None = None,
        message: str = "",
        wheel: str = "",
    ) -> None:
        self.path = path
        self.status = status
        self.damage = damage or []
        self.message = message
        self.wheel = wheel
        self.action = ""

    def line(self) -> str:
        """The one line ``vsite store verify`` prints for an entry that is not ok."""
        if self.status == "unverified":
            return f"{self.path}: not verified: {self.message}"
        wheel = self.wheel or "its wheel"
        text = f"{self.path}"
        if self.wheel:
            text += f" ({self.wheel})"
        text += f": damaged: {describe(self.damage)}"
        if self.action == "removed":
            text += f"; removed: the next `vsite install` of {wheel} unpacks it again"
        elif self.action == "sound":
            text += "; repaired meanwhile by another process"
        elif self.action:
            text += f"; cannot remove it: {self.action[len('failed: ') :]}"
        return text


def verify_store(
    store: str, *, repair: bool = False, jobs: int | None = None
) -> Iterator[EntryResult]:
    """Check the content of every entry of the store at ``store``; yield one result per
    entry, in the order of their names, as each is done (``jobs`` entries at a time).

    With ``repair``, a damaged entry is removed (the store keeps no wheel files to unpack
    it again from): under the entry's lock it is checked again, renamed aside whole and
    deleted, so the key holds the whole entry or nothing, and the next ``vsite install``
    of its wheel unpacks it afresh. An entry this vsite cannot read is never touched.
    """
    from concurrent.futures import ThreadPoolExecutor

    wheels = os.path.join(store, "wheels")
    names = store_entries(wheels)

    def one(name: str) -> EntryResult:
        path = os.path.join(wheels, name)
        try:
            damage = entry_damage(path, content=True)
        except StoreError as exc:
            return EntryResult(path, "unverified", message=_reason(exc, path))
        if not damage:
            return EntryResult(path, "ok")
        info = read_info(path)
        wheel = info.wheel if isinstance(info, EntryInfo) else ""
        result = EntryResult(path, "damaged", damage, wheel=wheel)
        if repair:
            result.action = _remove_damaged(store, name)
        return result

    # Hashing and reading release the GIL: threads overlap them.
    with ThreadPoolExecutor(max_workers=jobs or min(8, os.cpu_count() or 1)) as pool:
        yield from pool.map(one, names)


def _reason(exc: StoreError, path: str) -> str:
    text = str(exc)
    prefix = f"store entry {path} "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _remove_damaged(store: str, name: str) -> str:
    """Remove the damaged entry ``name`` whole, under its lock; what was done."""
    import uuid

    from vsite.tools.install.bytecode import locked

    path = os.path.join(store, "wheels", name)
    aside = os.path.join(store, "wheels", f".tmp-removed-{name}-{uuid.uuid4().hex[:12]}")
    try:
        with locked(os.path.join(store, "locks", f"{name}.lock")):
            if not entry_damage(path, content=True):
                return "sound"  # a `vsite install` repaired it since it was checked
            os.rename(path, aside)  # the key now holds nothing: never half an entry
            try:
                remove_tree(aside)
            except OSError:
                pass  # the sweep of a later unpack removes it (Store._remove_stale_tmp)
    except OSError as exc:  # StoreError too: the entry changed to a newer format
        return f"failed: {exc.strerror or exc}"
    return "removed"
