"""Which top-level entries of a root carry native code (and so go to the farm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import make_root, write_tree
from vsite.native.detect import is_shared_object, native_entries, record_paths

SO = b"\x7fELF"


@pytest.mark.parametrize(
    "name",
    [
        "libx.so",
        "libcudart.so.13",
        "libnvrtc-builtins.so.13.0",
        "_C.cpython-311-x86_64-linux-gnu.so",
        "_speedups.abi3.so",
        "x.pyd",
        "libomp.dylib",
    ],
)
def test_shared_object_names(name: str) -> None:
    assert is_shared_object(name)


@pytest.mark.parametrize(
    "name", ["x.py", "x.pyi", "solib.txt", "libx.a", "README.so-called", "x.dll.manifest"]
)
def test_other_names_are_not_shared_objects(name: str) -> None:
    assert not is_shared_object(name)


def test_entries_holding_shared_objects_anywhere_below_are_native(tmp_path: Path) -> None:
    root = make_root(tmp_path, "r", {
        "tpkg": {"__init__.py": "", "lib": {"libtorch.so": SO}},
        "nvidia": {"cu13": {"lib": {"libcudart.so.13": SO}}},
        "mod.cpython-311-x86_64-linux-gnu.so": SO,
        "pure": {"__init__.py": "", "deep": {"x.py": ""}},
        "single.py": "",
        "bin": {"tool": ""},
    })  # fmt: skip
    expected = ["mod.cpython-311-x86_64-linux-gnu.so", "nvidia", "tpkg"]
    assert native_entries(str(root)) == expected


def test_auditwheel_and_delocate_lib_dirs_are_native_even_when_empty_of_sonames(
    tmp_path: Path,
) -> None:
    root = make_root(tmp_path, "r", {
        "numpy.libs": {"libscipy_openblas64_-ff651d7f.so": SO},
        "pillow.dylibs": {"liblcms2.2.dylib": SO},
        "odd.libs": {"README": "vendored data, no shared object name"},
    })  # fmt: skip
    assert native_entries(str(root)) == ["numpy.libs", "odd.libs", "pillow.dylibs"]


def test_unrecorded_entries_are_walked(tmp_path: Path) -> None:
    root = make_root(tmp_path, "r", {"pkg": {"__init__.py": ""}})
    write_tree(root, {"extra": {"sub": {"libz.so.1": SO}}, "plain": {"a.py": ""}, "m.so": SO})
    assert native_entries(str(root)) == ["extra", "m.so"]


def test_root_without_record_is_walked(tmp_path: Path) -> None:
    root = make_root(tmp_path, "r", {"pkg": {"sub": {"_x.so": SO}}, "pure": {"a.py": ""}},
                     record=False)  # fmt: skip
    assert native_entries(str(root)) == ["pkg"]


def test_recorded_paths_outside_the_root_or_missing_are_ignored(tmp_path: Path) -> None:
    root = make_root(tmp_path, "r", {"pkg": {"__init__.py": ""}})
    (record,) = root.glob("*.dist-info/RECORD")
    with record.open("a", encoding="utf-8") as stream:
        stream.write("../../bin/libtool.so,,\ngone/libgone.so,,\n")
    assert native_entries(str(root)) == []


def test_metadata_and_bytecode_dirs_are_never_native(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {
        "x-1.0.dist-info": {"weird.so": SO},
        "y-1.0.egg-info": {"weird.so": SO},
        "__pycache__": {"z.so": SO},
    })  # fmt: skip
    assert native_entries(str(root)) == []


def test_record_paths_with_commas_and_quotes(tmp_path: Path) -> None:
    info = write_tree(tmp_path / "x-1.0.dist-info", {
        "RECORD": 'a/b.py,sha256=x,1\n"c,d/e.so",sha256=y,2\n"q""uote.so",,\nplain\n\n'
    })  # fmt: skip
    assert record_paths(str(info)) == ["a/b.py", "c,d/e.so", 'q"uote.so', "plain"]
    assert record_paths(str(tmp_path / "missing.dist-info")) is None


def test_quoted_native_path_with_comma_is_detected(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {
        "we,ird": {"x.so": SO},
        "w-1.0.dist-info": {"RECORD": '"we,ird/x.so",sha256=a,4\n'},
    })  # fmt: skip
    assert native_entries(str(root)) == ["we,ird"]


def test_listing_given_by_the_caller_is_used(tmp_path: Path) -> None:
    root = make_root(tmp_path, "r", {"a": {"x.so": SO}, "b": {"y.so": SO}})
    listing = {"a": True, "r-1.0.dist-info": True}  # what the caller scanned
    assert native_entries(str(root), listing) == ["a"]
