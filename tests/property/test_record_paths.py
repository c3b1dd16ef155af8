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

from vsite.native.detect import record_paths


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
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\n\r/\0"),
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
