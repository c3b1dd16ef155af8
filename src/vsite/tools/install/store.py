"""A content-addressed store of unpacked wheels: each wheel is unpacked once, read-only.

Layout (``STORE`` defaults to ``${XDG_CACHE_HOME:-~/.cache}/vsite/store``)::

    STORE/wheels/<sha256 of the .whl file>/
        site-packages/   the root: purelib and platlib, *.dist-info with RECORD
        bin/             the scripts scheme (console-script launchers, .data/scripts)
        include/         the headers scheme
        data/            the data scheme (what a venv would put under sys.prefix)
        wheel.json       {"format", "wheel": file name, "name", "version", "sha256",
                          "bytecode": cache tags, "files": {path: size}}
    STORE/locks/<sha256>.lock   taken while an existing entry is written or replaced

Only ``site-packages/`` goes into a manifest; the siblings exist only when the wheel
has files for them. RECORD lists the siblings relative to the root (``../bin/x``), as
an installer does for any scheme outside the root. Launchers in ``bin/`` name the
interpreter that unpacked the wheel; ``vsite exec`` runs console scripts from entry
points and does not need them.

An entry is unpacked into ``STORE/wheels/.tmp-*`` and renamed into place only when
complete and read-only, so a crash leaves no partial entry under a key (stale temp
dirs are removed by the next unpack), and two processes unpacking the same wheel race
harmlessly: the second rename fails and its copy is discarded.

Entries are verified, not trusted (:mod:`vsite.tools.install.verify`): ``files`` in
wheel.json records every file of the entry with its size, written before the rename.
Before an entry is reused, every recorded file is checked for presence and size (lstat
only); a damaged entry (files deleted by a ``pip uninstall`` run as root, a truncated
file) is unpacked again into a temp dir and swapped in under the entry's lock: the
damaged one renamed aside, the new one renamed in, the old one removed; the key never
holds half an entry. An entry written before the record (format 1) is checked against
RECORD's hashes on its first reuse and its record written, or unpacked again. An entry
of a newer format is refused (StoreError naming it), never read as this format.

Bytecode: the root is byte-compiled for the interpreter that unpacks it (as pip does),
and an interpreter that later installs the same wheel adds its own to the entry;
``bytecode`` in wheel.json lists the cache tags the entry holds, and ``files`` their
pycs. Only ``vsite install`` writes the store, never a process running in a site; where
the entry cannot be written (another user's store, a read-only mount) nothing is added
and the runtime's per-user cache (:mod:`vsite.finder.bytecode`) covers that interpreter.

Tooling path: imports ``installer`` (through :mod:`vsite.tools.install.unpack`).
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from contextlib import contextmanager

from vsite._fs import remove_tree, write_atomic
from vsite.errors import StoreError, VsiteError
from vsite.tools.install.bytecode import BYTECODE_TAG, compile_root, locked, writable
from vsite.tools.install.hashes import remembered_sha256
from vsite.tools.install.unpack import unpack_wheel
from vsite.tools.install.verify import (
    ENTRY_FILE,
    ROOT_DIR,
    STORE_FORMAT,
    Damage,
    bytecode_files,
    check_content,
    check_sizes,
    describe,
    read_info,
    record_files,
    record_rows,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = ["ENTRY_FILE", "ROOT_DIR", "STORE_FORMAT", "Store", "StoreEntry", "default_store"]

_SCHEME_DIRS = {"scripts": "bin", "headers": "include", "data": "data"}
#: Where a damaged entry goes while it is replaced (``store verify --repair``'s name too).
_ASIDE = ".tmp-damaged-"
_ASIDES = (_ASIDE, ".tmp-removed-")
_STALE_TMP_SECONDS = 24 * 3600


def default_store() -> str:
    """``${XDG_CACHE_HOME:-~/.cache}/vsite/store``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "vsite", "store")


class StoreEntry:
    """One unpacked wheel in the store.

    ``info`` is its wheel.json as read (rewritten with unknown keys kept); ``files`` the
    record of what it holds (None for an entry written before the record existed);
    ``repaired`` says what was wrong when the call that returned it unpacked it again.
    """

    __slots__ = (
        "bytecode",
        "files",
        "info",
        "name",
        "path",
        "repaired",
        "sha256",
        "version",
        "wheel",
    )

    def __init__(
        self,
        path: str,
        sha256: str,
        wheel: str,
        name: str,
        version: str,
        bytecode: Iterable[str] = (),
        *,
        info: Mapping[str, object] | None = None,
        files: Mapping[str, int] | None = None,
    ) -> None:
        self.path = path
        self.sha256 = sha256
        self.wheel = wheel  # the wheel's file name
        self.name = name  # distribution name as the wheel file spells it
        self.version = version
        self.bytecode = tuple(bytecode)  # cache tags whose bytecode the root holds
        self.info: dict[str, object] = dict(info or {})
        self.files: dict[str, int] | None = None if files is None else dict(files)
        self.repaired = ""

    @property
    def root(self) -> str:
        """The directory to list in a manifest."""
        return os.path.join(self.path, ROOT_DIR)

    def lacks_bytecode(self) -> bool:
        """Whether this interpreter could compile bytecode the root does not hold."""
        return BYTECODE_TAG is not None and BYTECODE_TAG not in self.bytecode

    def __repr__(self) -> str:
        return f"StoreEntry({self.wheel!r}, {self.path!r})"


class Store:
    """Unpacked wheels under ``path``, keyed by the sha256 of the wheel file."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.wheels = os.path.join(self.path, "wheels")
        self._swept = False
        self._claims: dict[str, int] = {}  # token of a temp dir -> its claim's descriptor
        self._mode = 0o755 & ~_umask()

    def entry_path(self, sha256: str) -> str:
        return os.path.join(self.wheels, sha256)

    def wheel_sha256(self, path: str) -> str:
        """The sha256 of the wheel file at ``path``, remembered under ``STORE/hashes/``
        (see :func:`vsite.tools.install.hashes.remembered_sha256`)."""
        return remembered_sha256(path, os.path.join(self.path, "hashes"))

    def get(self, sha256: str) -> StoreEntry | None:
        """The entry for ``sha256`` fit for reuse; None when the wheel is not unpacked or
        its entry is damaged (:meth:`add` unpacks it again and swaps it in).

        Every recorded file is checked for presence and size (lstat only). An entry
        written before the record (format 1) is checked against RECORD's hashes and its
        record written, where this user may write it. Raises StoreError, naming the
        entry, for an entry of a newer format than this vsite knows.
        """
        found = self._read(sha256)
        if not isinstance(found, StoreEntry) or self._damage(found, record=True):
            return None
        return found

    def add(self, wheel: str, sha256: str, *, compile_bytecode: bool = True) -> StoreEntry:
        """Unpack ``wheel`` (whose hash is ``sha256``) unless present; return its entry.

        The wheel's RECORD is checked, names and hashes, while unpacking; any problem
        raises WheelError and leaves nothing in the store. With ``compile_bytecode``,
        the root holds this interpreter's bytecode (added to an entry already there).
        A damaged entry is unpacked again and swapped in whole (``repaired`` of the
        entry returned says what was wrong).
        """
        found = self._read(sha256)
        damage: list[Damage] = []
        if isinstance(found, StoreEntry):
            damage = self._damage(found, record=True)
            if not damage:
                if compile_bytecode:
                    self.add_bytecode(found)
                return found
        elif found is not None:
            damage = found
        try:
            os.makedirs(self.wheels, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store {self.wheels}: {exc.strerror}") from None
        self.sweep()
        try:
            tmp, claim = self._claim()
            os.mkdir(tmp, 0o700)
        except OSError as exc:
            if found is not None:
                raise _unrepairable(self.entry_path(sha256), damage, exc) from None
            raise StoreError(f"cannot write the store {self.wheels}: {exc.strerror}") from None
        try:
            os.chmod(tmp, self._mode)  # 0700 until now would hide a shared store
            name, version = _unpack(wheel, tmp)
            tags = []
            if compile_bytecode and BYTECODE_TAG is not None:
                final_root = os.path.join(self.entry_path(sha256), ROOT_DIR)
                compile_root(os.path.join(tmp, ROOT_DIR), final_root)
                tags.append(BYTECODE_TAG)
            # The record: every file, this interpreter's bytecode included (see
            # vsite.tools.install.verify), written before the entry is renamed into place.
            info = {
                "format": STORE_FORMAT,
                "wheel": os.path.basename(wheel),
                "name": name,
                "version": version,
                "sha256": sha256,
                "bytecode": tags,
                "files": record_files(tmp),
            }
            _write_entry_file(tmp, info)
            _make_read_only(tmp)
            if found is not None:
                entry = self._swap(tmp, sha256, damage)
            else:
                try:
                    os.rename(tmp, self.entry_path(sha256))
                except OSError as exc:
                    # Another process renamed the same wheel into place first: use its copy.
                    other = self.get(sha256)
                    if other is None:
                        raise StoreError(
                            f"cannot put {os.path.basename(wheel)} into the store at "
                            f"{self.entry_path(sha256)}: {exc.strerror or exc}"
                        ) from None
                    remove_tree(tmp)
                    entry = other
                else:
                    read = self._read(sha256)
                    assert isinstance(read, StoreEntry)
                    return read
        except VsiteError:
            remove_tree(tmp)  # nothing when it was renamed into place
            raise
        except OSError as exc:  # a full file system, a store made read-only meanwhile
            remove_tree(tmp)
            raise StoreError(
                f"cannot write {os.path.basename(wheel)} into the store at {tmp}: "
                f"{exc.strerror or exc}"
            ) from None
        except BaseException:
            remove_tree(tmp)
            raise
        finally:
            self._release(claim)
        if compile_bytecode:
            self.add_bytecode(entry)  # a copy another process made may lack ours
        return entry

    def add_bytecode(self, entry: StoreEntry) -> bool:
        """Compile this interpreter's bytecode into ``entry``'s root if it lacks it.

        True when this call added it. Under a lock, so two installers never compile
        into one entry at once; each .pyc appears whole (written aside, then renamed);
        the entry's modes are put back as they were, and the tag is recorded only
        once every module is compiled (its pycs in the record with it), so after a
        crash midway the next install of the wheel compiles again and makes the entry
        read-only again. An entry this user cannot write is left as it is (False): the
        runtime's per-user cache compiles for this interpreter. Bytecode written before
        tags were recorded (timestamp pycs of ``--compile``) is replaced.
        """
        if not entry.lacks_bytecode():
            return False
        assert BYTECODE_TAG is not None
        try:
            with locked(self._lock_path(entry.sha256)):
                current = self._read(entry.sha256)  # another installer may have added it
                if not isinstance(current, StoreEntry) or not current.lacks_bytecode():
                    entry.bytecode = current.bytecode if isinstance(current, StoreEntry) else ()
                    return False
                tags = [*current.bytecode, BYTECODE_TAG]
                with writable(current.path, current.root):
                    compile_root(current.root, current.root)
                    info = {**current.info, "bytecode": tags}
                    if current.files is not None:
                        files = dict(current.files)
                        files.update(bytecode_files(current.path, [BYTECODE_TAG]))
                        info["files"] = files
                    _write_entry_file(current.path, info)
        except OSError:
            return False  # not ours to write: see the docstring
        entry.bytecode = tuple(tags)
        entry.info = info
        if current.files is not None:
            entry.files = files
        return True

    def _lock_path(self, sha256: str) -> str:
        return os.path.join(self.path, "locks", f"{sha256}.lock")

    def _read(self, sha256: str) -> StoreEntry | list[Damage] | None:
        """The entry at ``sha256``'s key as its wheel.json describes it, unchecked; what
        is wrong with wheel.json; None when nothing is there."""
        path = self.entry_path(sha256)
        if not os.path.lexists(path):
            return None
        info = read_info(path, sha256)  # raises StoreError for a newer format
        if isinstance(info, Damage):
            return [info]
        return StoreEntry(
            path,
            sha256,
            info.wheel,
            info.name,
            info.version,
            info.bytecode,
            info=info.data,
            files=info.files,
        )

    def _damage(self, entry: StoreEntry, *, record: bool) -> list[Damage]:
        """What is wrong with ``entry``: its record's files by presence and size; for an
        entry without a record, RECORD's hashes, and then (``record``) its record is
        written so later reuses check sizes only. Never takes the entry's lock unless
        ``record``."""
        if entry.files is not None:
            return check_sizes(entry.path, entry.files)
        rows = record_rows(entry.path)
        if isinstance(rows, Damage):
            return [rows]
        damage = check_content(entry.path, rows, entry.bytecode)
        if not damage and record:
            self._record(entry, [rel for rel, _, _ in rows])
        return damage

    def _record(self, entry: StoreEntry, listed: list[str]) -> None:
        """Write the record of a format-1 ``entry`` that passed RECORD's hash check: the
        files RECORD lists and the pycs of its cache tags, with their sizes. Nothing when
        this user may not write the entry (it is checked against RECORD again next time)."""
        try:
            with locked(self._lock_path(entry.sha256)):
                current = self._read(entry.sha256)
                if not isinstance(current, StoreEntry) or current.files is not None:
                    return  # recorded, or replaced, meanwhile
                files = {rel: os.lstat(os.path.join(current.path, rel)).st_size for rel in listed}
                files.update(bytecode_files(current.path, current.bytecode))
                info = {**current.info, "format": STORE_FORMAT, "files": files}
                with _writable_dir(current.path):
                    _write_entry_file(current.path, info)
        except OSError:
            return
        entry.info, entry.files = info, files

    def _swap(self, tmp: str, sha256: str, damage: list[Damage]) -> StoreEntry:
        """Put the fresh entry ``tmp`` in place of the damaged one at ``sha256``'s key:
        under the entry's lock, the damaged entry renamed aside, ``tmp`` renamed in, the
        old one removed. Readers see the whole old entry, nothing, or the whole new one.
        An aside a crash left behind is removed by a later unpack's sweep (its lock is
        free then: see :meth:`_remove_stale_tmp`)."""
        path = self.entry_path(sha256)
        try:
            with locked(self._lock_path(sha256)):
                current = self._read(sha256)
                if isinstance(current, StoreEntry) and not self._damage(current, record=False):
                    remove_tree(tmp)  # another install repaired it meanwhile: use that copy
                    return current
                aside = ""
                if current is not None:
                    aside = os.path.join(self.wheels, f"{_ASIDE}{sha256}-{uuid.uuid4().hex[:12]}")
                    os.rename(path, aside)
                try:
                    os.rename(tmp, path)
                except OSError:
                    # A fresh unpack (it takes no lock) renamed a whole entry in meanwhile.
                    other = self._read(sha256)
                    if not isinstance(other, StoreEntry) or self._damage(other, record=False):
                        raise
                    remove_tree(tmp)
                    return other
                finally:
                    if aside:
                        _remove_quietly(aside)
        except StoreError:
            raise  # an entry of a newer format took its place: not ours to replace
        except OSError as exc:
            raise _unrepairable(path, damage, exc) from None
        entry = self._read(sha256)
        if not isinstance(entry, StoreEntry):  # pragma: no cover - just renamed in, whole
            raise StoreError(f"store entry {path} vanished while it was repaired")
        entry.repaired = describe(damage) or "damaged"
        return entry

    def sweep(self) -> None:
        """Remove what killed installs left under ``wheels/`` (once per Store: before its
        first unpack, and from :func:`vsite.tools.install.install`)."""
        if not self._swept:
            self._swept = True
            self._remove_stale_tmp()

    def _claim(self) -> tuple[str, str]:
        """The path of a new temp dir under ``wheels/`` (not yet made) and its token.

        The claim is an exclusive lock on ``locks/tmp-TOKEN.lock``, taken before the dir
        exists and held until it is gone (renamed into place or removed): a temp dir
        whose claim is free belongs to a process that is gone (the kernel drops a killed
        process's locks), and the next sweep removes it at once.
        """
        import fcntl

        token = uuid.uuid4().hex
        lock = self._claim_path(token)
        os.makedirs(os.path.dirname(lock), exist_ok=True)
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._claims[token] = fd
        return os.path.join(self.wheels, f".tmp-{token}"), token

    def _release(self, token: str) -> None:
        """Give up the claim of a temp dir that is gone."""
        fd = self._claims.pop(token)
        try:
            os.unlink(self._claim_path(token))
        except OSError:
            pass
        finally:
            os.close(fd)

    def _claim_path(self, token: str) -> str:
        return os.path.join(self.path, "locks", f"tmp-{token}.lock")

    def _remove_stale_tmp(self) -> None:
        """Temp dirs whose process is gone: a claimed one whose claim is free; an
        unclaimed one (an older vsite's) once a day old."""
        now = time.time()
        try:
            names = os.listdir(self.wheels)
        except OSError:
            return
        for name in names:
            if not name.startswith(".tmp-"):
                continue
            if name.startswith(_ASIDES):
                # A damaged entry renamed aside: its mover removes it before releasing the
                # entry's lock, so one whose lock is free was left by a crash.
                key = name.split("-")[2]
                if len(key) == 64:
                    _remove_unless_locked(self._lock_path(key), os.path.join(self.wheels, name))
                continue
            path = os.path.join(self.wheels, name)
            claim = self._claim_path(name[len(".tmp-") :])
            if os.path.exists(claim):
                if _remove_unless_locked(claim, path):
                    _unlink_quietly(claim)
                continue
            try:
                if now - os.lstat(path).st_mtime > _STALE_TMP_SECONDS:
                    remove_tree(path)
            except OSError:
                continue


def _remove_quietly(path: str) -> None:
    try:
        remove_tree(path)
    except OSError:
        pass  # a `.tmp-` dir: the sweep of a later unpack removes it


def _remove_unless_locked(lock: str, path: str) -> bool:
    """Remove ``path`` if the lock file ``lock`` can be taken at once (no process is
    working on that entry); whether it was removed."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:  # never locked: no process moved it aside and lives on
        _remove_quietly(path)
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        remove_tree(path)
    except OSError:
        return False  # held (a repair under way), or not ours to remove
    finally:
        os.close(fd)
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _unrepairable(path: str, damage: list[Damage], exc: OSError) -> StoreError:
    return StoreError(
        f"store entry {path} is damaged ({describe(damage) or 'unreadable'}) "
        f"and cannot be repaired: {exc.strerror or exc}"
    )


def _write_entry_file(entry: str, info: Mapping[str, object]) -> None:
    """Write ``entry``'s wheel.json (read-only) atomically: readers see old or new."""
    text = json.dumps(info, indent=1).encode("utf-8")
    write_atomic(os.path.join(entry, ENTRY_FILE), text, 0o444)


@contextmanager
def _writable_dir(path: str) -> Iterator[None]:
    """Let the owner write the directory ``path`` (not what is in it) for the block."""
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    os.chmod(path, mode | stat.S_IWUSR)
    try:
        yield
    finally:
        os.chmod(path, mode & ~0o222)  # read-only as an entry is, even if a crash left it not


def _unpack(wheel: str, entry: str) -> tuple[str, str]:
    """Unpack ``wheel`` into the entry dir ``entry`` (renamed into place later): the root
    in ``site-packages/``, the other schemes beside it."""
    root = os.path.join(entry, ROOT_DIR)
    schemes = {"purelib": root, "platlib": root}
    schemes.update({key: os.path.join(entry, sub) for key, sub in _SCHEME_DIRS.items()})
    return unpack_wheel(wheel, entry, schemes)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_read_only(top: str) -> None:
    """chmod a-w everything under ``top`` (``top`` itself too)."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(path, stat.S_IMODE(mode) & ~0o222)
    os.chmod(top, stat.S_IMODE(os.stat(top).st_mode) & ~0o222)
