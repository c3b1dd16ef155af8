"""A content-addressed store of unpacked wheels: each wheel is unpacked once, read-only.

Layout (``STORE`` defaults to ``${XDG_CACHE_HOME:-~/.cache}/vsite/store``)::

    STORE/wheels/<sha256 of the .whl file>/
        site-packages/   the root: purelib and platlib, *.dist-info with RECORD
        bin/             the scripts scheme (console-script launchers, .data/scripts)
        include/         the headers scheme
        data/            the data scheme (what a venv would put under sys.prefix)
        wheel.json       {"wheel": file name, "name", "version", "sha256", "bytecode"}
    STORE/locks/<sha256>.lock   taken while bytecode is added to an existing entry

Only ``site-packages/`` goes into a manifest; the siblings exist only when the wheel
has files for them. RECORD lists the siblings relative to the root (``../bin/x``), as
an installer does for any scheme outside the root. Launchers in ``bin/`` name the
interpreter that unpacked the wheel; ``vsite exec`` runs console scripts from entry
points and does not need them.

An entry is unpacked into ``STORE/wheels/.tmp-*`` and renamed into place only when
complete and read-only, so a crash leaves no partial entry under a key (stale temp
dirs are removed by the next unpack), and two processes unpacking the same wheel race
harmlessly: the second rename fails and its copy is discarded.

Bytecode: the root is byte-compiled for the interpreter that unpacks it (as pip does),
and an interpreter that later installs the same wheel adds its own to the entry;
``bytecode`` in wheel.json lists the cache tags the entry holds. Only ``vsite install``
writes the store, never a process running in a site; where the entry cannot be written
(another user's store, a read-only mount) nothing is added and the runtime's per-user
cache (:mod:`vsite.finder.bytecode`) covers that interpreter.

Tooling path: imports ``installer`` and ``packaging``; activation never imports this.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from typing import BinaryIO, cast

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import parse_record_file
from installer.sources import WheelContentElement, WheelFile

from vsite.errors import VsiteError
from vsite.store_bytecode import BYTECODE_TAG, compile_root, locked, writable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "ENTRY_FILE",
    "ROOT_DIR",
    "Store",
    "StoreEntry",
    "StoreError",
    "WheelError",
    "default_store",
    "wheel_sha256",
]

ROOT_DIR = "site-packages"
ENTRY_FILE = "wheel.json"
_SCHEME_DIRS = {"scripts": "bin", "headers": "include", "data": "data"}
_STALE_TMP_SECONDS = 24 * 3600


class WheelError(VsiteError, ValueError):
    """A wheel cannot be used: unreadable, corrupt, RECORD mismatch, or wrong tags."""


class StoreError(VsiteError, OSError):
    """The store cannot be written or read."""


def default_store() -> str:
    """``${XDG_CACHE_HOME:-~/.cache}/vsite/store``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "vsite", "store")


def wheel_sha256(path: str) -> str:
    """The hex sha256 of the file at ``path`` (the store key of a wheel)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StoreEntry:
    """One unpacked wheel in the store."""

    __slots__ = ("bytecode", "name", "path", "sha256", "version", "wheel")

    def __init__(
        self,
        path: str,
        sha256: str,
        wheel: str,
        name: str,
        version: str,
        bytecode: Iterable[str] = (),
    ) -> None:
        self.path = path
        self.sha256 = sha256
        self.wheel = wheel  # the wheel's file name
        self.name = name  # distribution name as the wheel file spells it
        self.version = version
        self.bytecode = tuple(bytecode)  # cache tags whose bytecode the root holds

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
        self._mode = 0o755 & ~_umask()

    def entry_path(self, sha256: str) -> str:
        return os.path.join(self.wheels, sha256)

    def wheel_sha256(self, path: str) -> str:
        """The sha256 of the wheel file at ``path``, remembered per file state.

        Hashing is most of a new environment's cost when every root is already in the
        store (2.9 GB for the torch set), so the digest is kept under
        ``STORE/hashes/`` keyed by the file's (device, inode, size, mtime, ctime): a
        file rewritten or touched in any way changes its ctime, which no user can set
        back, so a remembered digest is never one of other contents.
        """
        st = os.stat(path)
        key = f"{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}"
        memo = os.path.join(self.path, "hashes", key)
        try:
            with open(memo, encoding="ascii") as stream:
                known = stream.read()
            if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
                return known
        except (OSError, ValueError):
            pass
        digest = wheel_sha256(path)
        _write_memo(memo, digest)
        return digest

    def get(self, sha256: str) -> StoreEntry | None:
        """The complete entry for ``sha256``, or None when the wheel is not unpacked."""
        path = self.entry_path(sha256)
        try:
            with open(os.path.join(path, ENTRY_FILE), encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return None
        if not os.path.isdir(os.path.join(path, ROOT_DIR)):
            return None
        tags = data.get("bytecode")  # absent from entries written before it was recorded
        bytecode = [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
        return StoreEntry(path, sha256, data["wheel"], data["name"], data["version"], bytecode)

    def add(self, wheel: str, sha256: str, *, compile_bytecode: bool = True) -> StoreEntry:
        """Unpack ``wheel`` (whose hash is ``sha256``) unless present; return its entry.

        The wheel's RECORD is checked, names and hashes, while unpacking; any problem
        raises WheelError and leaves nothing in the store. With ``compile_bytecode``,
        the root holds this interpreter's bytecode (added to an entry already there).
        """
        existing = self.get(sha256)
        if existing is not None:
            if compile_bytecode:
                self.add_bytecode(existing)
            return existing
        try:
            os.makedirs(self.wheels, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store {self.wheels}: {exc.strerror}") from None
        if not self._swept:
            self._swept = True
            self._remove_stale_tmp()
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.wheels)
        try:
            os.chmod(tmp, self._mode)  # mkdtemp's 0700 would hide a shared store
            name, version = _unpack(wheel, tmp)
            tags = []
            if compile_bytecode and BYTECODE_TAG is not None:
                final_root = os.path.join(self.entry_path(sha256), ROOT_DIR)
                compile_root(os.path.join(tmp, ROOT_DIR), final_root)
                tags.append(BYTECODE_TAG)
            info = {"wheel": os.path.basename(wheel), "name": name, "version": version}
            _write_entry_file(tmp, {**info, "sha256": sha256, "bytecode": tags})
            _make_read_only(tmp)
            try:
                os.rename(tmp, self.entry_path(sha256))
            except OSError:
                # Another process renamed the same wheel into place first: use its copy.
                entry = self.get(sha256)
                if entry is None:
                    raise
                _remove(tmp)
                if compile_bytecode:
                    self.add_bytecode(entry)
                return entry
        except BaseException:
            _remove(tmp)
            raise
        entry = self.get(sha256)
        assert entry is not None
        return entry

    def add_bytecode(self, entry: StoreEntry) -> bool:
        """Compile this interpreter's bytecode into ``entry``'s root if it lacks it.

        True when this call added it. Under a lock, so two installers never compile
        into one entry at once; each .pyc appears whole (written aside, then renamed);
        the entry's modes are put back as they were, and the tag is recorded only
        once every module is compiled, so after a crash midway the next install of the
        wheel compiles again and makes the entry read-only again. An entry this user
        cannot write is left as it is (False): the runtime's per-user cache compiles
        for this interpreter. Bytecode written before tags were recorded (timestamp pycs
        of ``--compile``) is replaced.
        """
        if not entry.lacks_bytecode():
            return False
        assert BYTECODE_TAG is not None
        try:
            with locked(os.path.join(self.path, "locks", f"{entry.sha256}.lock")):
                current = self.get(entry.sha256)  # another installer may have added it
                if current is None or not current.lacks_bytecode():
                    entry.bytecode = () if current is None else current.bytecode
                    return False
                tags = [*current.bytecode, BYTECODE_TAG]
                with writable(current.path, current.root):
                    compile_root(current.root, current.root)
                    info = {
                        "wheel": current.wheel,
                        "name": current.name,
                        "version": current.version,
                        "sha256": current.sha256,
                        "bytecode": tags,
                    }
                    _write_entry_file(current.path, info)
        except OSError:
            return False  # not ours to write: see the docstring
        entry.bytecode = tuple(tags)
        return True

    def _remove_stale_tmp(self) -> None:
        """Temp dirs left by a crash long ago (a live unpack is never a day old)."""
        now = time.time()
        try:
            names = os.listdir(self.wheels)
        except OSError:
            return
        for name in names:
            if not name.startswith(".tmp-"):
                continue
            path = os.path.join(self.wheels, name)
            try:
                if now - os.lstat(path).st_mtime > _STALE_TMP_SECONDS:
                    _remove(path)
            except OSError:
                continue


def _write_memo(memo: str, digest: str) -> None:
    """Remember ``digest`` at ``memo`` atomically; a store we cannot write is no error."""
    try:
        os.makedirs(os.path.dirname(memo), exist_ok=True)
        _write_atomic(memo, digest.encode("ascii"), 0o644)
    except OSError:
        pass


def _write_entry_file(entry: str, info: Mapping[str, object]) -> None:
    """Write ``entry``'s wheel.json (read-only) atomically: readers see old or new."""
    text = json.dumps(info, indent=1).encode("utf-8")
    _write_atomic(os.path.join(entry, ENTRY_FILE), text, 0o444)


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temp file renamed over it; OSError on failure."""
    temp = f"{path}.{os.getpid()}.{id(data):x}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with open(fd, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _unpack(wheel: str, entry: str) -> tuple[str, str]:
    """Install ``wheel`` into the entry dir ``entry`` (renamed into place later)."""
    label = os.path.basename(wheel)
    root = os.path.join(entry, ROOT_DIR)
    schemes = {"purelib": root, "platlib": root}
    schemes.update({key: os.path.join(entry, sub) for key, sub in _SCHEME_DIRS.items()})
    destination = SchemeDictionaryDestination(
        schemes, interpreter=sys.executable, script_kind="posix"
    )
    try:
        with zipfile.ZipFile(wheel) as archive:
            source = _CheckedWheel(archive)
            _validate_names(source)
            install(source, destination, {"INSTALLER": b"vsite\n"})
            source.verify_unread()
            name, version = _metadata_name(root, source.dist_info_dir, source.distribution)
    except WheelError:
        raise
    except zipfile.BadZipFile as exc:
        raise WheelError(f"{label}: not a valid wheel (corrupt zip: {exc})") from None
    except (InstallerError, ValueError, KeyError) as exc:
        raise WheelError(f"{label}: not a valid wheel: {_describe(exc)}") from None
    except OSError as exc:
        raise StoreError(f"{label}: cannot unpack into {entry}: {exc.strerror or exc}") from None
    return name, version


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _metadata_name(root: str, dist_info: str, fallback: str) -> tuple[str, str]:
    """Name and version as METADATA spells them (``Pillow``, ``charset-normalizer``)."""
    from email.parser import BytesHeaderParser

    try:
        with open(os.path.join(root, dist_info, "METADATA"), "rb") as stream:
            headers = BytesHeaderParser().parse(stream)
    except OSError:
        raise WheelError(f"{dist_info} has no METADATA: not a valid wheel") from None
    name = headers.get("Name") or fallback
    version = headers.get("Version") or dist_info[: -len(".dist-info")].rpartition("-")[2]
    return str(name).strip(), str(version).strip()


def _validate_names(source: WheelFile) -> None:
    """Every file of the wheel is in RECORD with a hash (contents are checked later)."""
    try:
        source.validate_record(validate_contents=False)
    except TypeError:  # installer 0.7 (the last for Python 3.9) checks contents too
        source.validate_record()


def _describe(exc: BaseException) -> str:
    issues = getattr(exc, "issues", None)
    if issues:
        more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
        return "; ".join(str(issue) for issue in issues[:3]) + more
    return str(exc) or type(exc).__name__


class _HashCheck:
    """A stream out of the wheel that checks its RECORD hash once read to the end."""

    def __init__(self, stream: BinaryIO, path: str, expected: str, owner: _CheckedWheel):
        algorithm, _, self._want = expected.partition("=")
        self._algorithm = algorithm
        self._stream = stream
        self._path = path
        self._owner = owner
        try:
            self._hash = hashlib.new(algorithm)
        except ValueError:
            raise WheelError(
                f"{owner.label}: {path}: unknown hash {algorithm!r} in RECORD"
            ) from None

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._hash.update(data)
        elif size != 0:
            self._finish()
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self._hash.update(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            self._owner.unchecked.add(self._path)  # checked afterwards, from the zip
        self._hash = hashlib.new(self._algorithm)
        return self._stream.seek(offset, whence)

    def _finish(self) -> None:
        got = base64.urlsafe_b64encode(self._hash.digest()).rstrip(b"=").decode("ascii")
        if got != self._want:
            raise WheelError(f"{self._owner.label}: {self._path} does not match its RECORD hash")
        self._owner.checked.add(self._path)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


class _CheckedWheel(WheelFile):
    """installer's WheelFile whose streams check their RECORD hashes as they are read:
    one pass over the archive instead of validate_record's second one."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        super().__init__(archive)
        self.checked: set[str] = set()
        self.unchecked: set[str] = set()
        self.label = os.path.basename(archive.filename or "wheel")

    def get_contents(self) -> Iterator[WheelContentElement]:
        record_path = f"{self.dist_info_dir}/RECORD"
        for record, stream, executable in super().get_contents():
            path, digest = record[0], record[1]
            if digest and path != record_path:
                checked = cast("BinaryIO", _HashCheck(stream, path, digest, self))
                yield record, checked, executable
            else:
                yield record, stream, executable

    def verify_unread(self) -> None:
        """Check, from the zip, every hashed file that was not read to its end."""
        record_path = f"{self.dist_info_dir}/RECORD"
        lines = self.read_dist_info("RECORD").splitlines()
        for path, digest, _size in parse_record_file(lines):
            if not digest or path == record_path:
                continue
            if path in self.checked and path not in self.unchecked:
                continue
            with self._zipfile.open(path) as stream:
                check = _HashCheck(cast("BinaryIO", stream), path, digest, self)
                while check.read(1 << 20):
                    pass


def _make_read_only(top: str) -> None:
    """chmod a-w everything under ``top`` (``top`` itself too)."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(path, stat.S_IMODE(mode) & ~0o222)
    os.chmod(top, stat.S_IMODE(os.stat(top).st_mode) & ~0o222)


def _remove(path: str) -> None:
    """Remove a (possibly read-only) tree."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, _ in os.walk(path):
            for name in dirnames:
                target = os.path.join(dirpath, name)
                if not os.path.islink(target):
                    os.chmod(target, 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        os.unlink(path)
