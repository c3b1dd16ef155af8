"""Unpack one wheel with ``installer``, checking RECORD names and hashes in one pass.

Every file of the wheel must be in RECORD with a hash (checked before anything is
written); each file's hash is checked as ``installer`` reads it, and the files it did
not read to their end are checked from the zip afterwards. Any problem raises
WheelError; a file-system failure raises StoreError.

Tooling path: imports ``installer``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from typing import BinaryIO, cast

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import parse_record_file
from installer.sources import WheelContentElement, WheelFile

from vsite.errors import StoreError, WheelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["unpack_wheel"]


def unpack_wheel(wheel: str, entry: str, schemes: Mapping[str, str]) -> tuple[str, str]:
    """Install ``wheel`` into the ``schemes`` directories (purelib = platlib = the root),
    all under the directory ``entry``; return the distribution's name and version as its
    METADATA spells them."""
    label = os.path.basename(wheel)
    root = schemes["purelib"]
    destination = SchemeDictionaryDestination(
        dict(schemes), interpreter=sys.executable, script_kind="posix"
    )
    try:
        with zipfile.ZipFile(wheel) as archive:
            source = _CheckedWheel(archive)
            # Names only: contents are checked as they are read (one pass, not two).
            source.validate_record(validate_contents=False)
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
        self.archive = archive  # our own reference: WheelFile keeps it privately
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
            with self.archive.open(path) as stream:
                check = _HashCheck(cast("BinaryIO", stream), path, digest, self)
                while check.read(1 << 20):
                    pass
