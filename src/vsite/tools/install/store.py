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

Tooling path: imports ``installer`` (through :mod:`vsite.tools.install.unpack`).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time

from vsite._fs import remove_tree, write_atomic
from vsite.errors import StoreError
from vsite.tools.install.bytecode import BYTECODE_TAG, compile_root, locked, writable
from vsite.tools.install.hashes import remembered_sha256
from vsite.tools.install.unpack import unpack_wheel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["ENTRY_FILE", "ROOT_DIR", "Store", "StoreEntry", "default_store"]

ROOT_DIR = "site-packages"
ENTRY_FILE = "wheel.json"
_SCHEME_DIRS = {"scripts": "bin", "headers": "include", "data": "data"}
_STALE_TMP_SECONDS = 24 * 3600


def default_store() -> str:
    """``${XDG_CACHE_HOME:-~/.cache}/vsite/store``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "vsite", "store")


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
        """The sha256 of the wheel file at ``path``, remembered under ``STORE/hashes/``
        (see :func:`vsite.tools.install.hashes.remembered_sha256`)."""
        return remembered_sha256(path, os.path.join(self.path, "hashes"))

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
                remove_tree(tmp)
                if compile_bytecode:
                    self.add_bytecode(entry)
                return entry
        except BaseException:
            remove_tree(tmp)
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
                    remove_tree(path)
            except OSError:
                continue


def _write_entry_file(entry: str, info: Mapping[str, object]) -> None:
    """Write ``entry``'s wheel.json (read-only) atomically: readers see old or new."""
    text = json.dumps(info, indent=1).encode("utf-8")
    write_atomic(os.path.join(entry, ENTRY_FILE), text, 0o444)


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
