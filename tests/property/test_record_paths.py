"""SPEC section 1, native code:

    This is done by staging the top-level entries that hold native code (extension
    modules, `*.so*`, `*.dylib`, auditwheel `*.libs` dirs, `nvidia/*`, ...) into a small
    symlink farm [...]

Which entries hold native code is read from each distribution's RECORD
(``vsite.native.detect.record_paths``). A RECORD is a CSV file written by whatever
installed the wheel, so reading one never raises, whatever its bytes, and gives back
exactly the paths a CSV writer put in it (pip writes ``\\r\\n`` line ends, installer
``\\n``; a path with a comma or a quote is quoted).
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vsite.native.detect import is_shared_object, native_entries, record_paths


@pytest.fixture(scope="module")
def dist_info() -> Iterator[Path]:
    """One .dist-info directory whose RECORD every example rewrites."""
    base = Path(tempfile.mkdtemp(prefix="vsite-record-"))
    path = base / "x-1.0.dist-info"
    path.mkdir()
    yield path
    shutil.rmtree(base, ignore_errors=True)


@given(st.binary())
@example(b'\xff\xfe\x00,\n""",,,\r\n\r')
def test_any_record_bytes_read_without_error(dist_info: Path, content: bytes) -> None:
    (dist_info / "RECORD").write_bytes(content)
    paths = record_paths(str(dist_info))
    assert isinstance(paths, list)
    assert all(isinstance(path, str) for path in paths)


# Any file name but one holding a line break: no RECORD reader can be sure of those.
paths = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n\r/\0"),
    min_size=1,
)


@given(
    st.lists(st.lists(paths, min_size=1, max_size=3).map("/".join), max_size=8),
    st.sampled_from(("\n", "\r\n")),
)
@example(["a,b/c.so", 'q"uote.py', '"both,".so'], "\r\n")
def test_record_paths_are_the_paths_a_csv_writer_wrote(
    dist_info: Path, written: list[str], line_end: str
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=line_end)
    for path in written:
        writer.writerow((path, "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", "0"))
    writer.writerow(("x-1.0.dist-info/RECORD", "", ""))
    (dist_info / "RECORD").write_bytes(buffer.getvalue().encode("utf-8"))
    assert record_paths(str(dist_info)) == [*written, "x-1.0.dist-info/RECORD"]


# -- native_entries' fast path for pure wheels must agree with parsing every line ---------

_pure_names = ["pkg", "pkg2", "mod.py"]
_names = st.sampled_from(
    [*_pure_names, "m.so", "libx.so.13", "x.libs", "x.dylibs", "a,b", 'q"t', "n.pyd"]
)
_pure_tails = ["", "/__init__.py", "/data.txt"]
_tails = st.sampled_from([*_pure_tails, "/sub/lib.so", "/x.dylib", "/y.so.1"])
# Half the RECORDs are of pure wheels (no native marker, no quoting): the fast path.
_records = st.one_of(
    st.lists(st.tuples(st.sampled_from(_pure_names), st.sampled_from(_pure_tails)), max_size=6),
    st.lists(st.tuples(_names, _tails), max_size=8),
)


def _recorded(dist_info: Path) -> list[str]:
    """RECORD's paths read as PEP 376 / 627 define the file, independently of vsite: a CSV
    file in the csv module's default dialect, one row per file, the path first."""
    with open(dist_info / "RECORD", encoding="utf-8", newline="") as stream:
        return [row[0] for row in csv.reader(stream) if row]


def _reference(root: Path, listing: dict[str, bool]) -> list[str]:
    """native_entries' rule, from every RECORD line parsed by the csv module."""
    found: set[str] = set()
    unrecorded = dict(listing)
    for name, is_dir in listing.items():
        if not (is_dir and name.endswith(".dist-info")):
            continue
        for path in _recorded(root / name):
            top, sep, _ = path.replace("\\", "/").partition("/")
            if top.startswith(".."):
                continue
            unrecorded.pop(top, None)
            if top in listing and (
                is_shared_object(path) or (sep and top.endswith((".libs", ".dylibs")))
            ):
                found.add(top)
    for name, is_dir in unrecorded.items():
        if name in found or name.endswith(".dist-info") or name == "__pycache__":
            continue
        # A directory is walked, and every test directory holds an unrecorded hidden.so.
        if is_dir or is_shared_object(name):
            found.add(name)
    return sorted(found)


@given(
    present=st.dictionaries(_names, st.booleans(), max_size=5),
    recorded=_records,
    crlf=st.booleans(),
)
def test_native_entries_agree_with_parsing_every_record_line(
    dist_info: Path,
    present: dict[str, bool],
    recorded: list[tuple[str, str]],
    crlf: bool,
) -> None:
    root = dist_info.parent / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name, is_dir in present.items():
        if is_dir:
            # A shared object RECORD does not list: found only if the directory is
            # walked, which it must be exactly when RECORD does not list the directory.
            (root / name).mkdir()
            (root / name / "hidden.so").write_bytes(b"")
        else:
            (root / name).write_bytes(b"")
    info = root / "d-1.0.dist-info"
    info.mkdir()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    for name, tail in recorded:
        writer.writerow([name + tail, "sha256=x", "1"])
    (info / "RECORD").write_text(out.getvalue(), encoding="utf-8")
    listing = {**present, info.name: True}
    assert native_entries(str(root), listing) == _reference(root, listing)
