"""The conformance harness: real distributions behave under vsite as in one flat dir.

The corpus run takes minutes (downloads and installs are cached under
~/.cache/vsite-tests/conformance) and is opt-in for a bare pytest run:
``VSITE_CONFORMANCE=1 pytest tests/conformance``; ``scripts/test`` (and so CI) sets it.
The harness's comparison logic is checked on every run.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from tests.conformance.run import (
    GLOBAL,
    Prepared,
    SetupError,
    _explained,
    cache_dir,
    clean,
    differences,
    prepare,
    run,
    run_probe,
)


def test_differences_name_each_differing_leaf() -> None:
    flat = {"imports": {"a": {"file": "<site>/a.py", "path": None}}, "walk": [1, 2]}
    vsite = {"imports": {"a": {"file": "<site>/b.py", "path": None}}, "walk": [1, 2], "x": 1}
    assert differences(flat, vsite) == [
        ("/imports/a/file", "<site>/a.py", "<site>/b.py"),
        ("/x", "<absent>", 1),
    ]
    assert differences(flat, flat) == []


def test_clean_maps_every_root_to_one_site_and_counts_portions_once() -> None:
    output = {
        "imports": {"ns": {"path": ["/r1/ns", "/r2/ns"], "file": None}},
        "package_paths": {"ns": ["/r1/ns", "/r2/ns"]},
        "error": "at 0x7f00deadbeef in /farm/x.py",
        "site_paths": ["/farm"],
    }
    cleaned = clean(output, ["/r1", "/r2"], "/venv")
    assert cleaned == {
        "imports": {"ns": {"path": ["<site>/ns"], "file": None}},
        "package_paths": {"ns": ["<site>/ns"]},
        "error": "at 0x? in <site>/x.py",
    }
    flat = clean({"package_paths": {"ns": ["/flat/ns"]}}, ["/flat"], "/venv")
    assert differences(flat, {"package_paths": cleaned["package_paths"]}) == []


def test_only_differences_touching_a_conflicting_file_are_explained() -> None:
    conflicting = {"pkg/mod.py": ["/r1", "/r2"]}
    assert _explained(("/specs/pkg.mod", "a", "b"), conflicting)
    assert _explained(("/imports/x/file", "<site>/pkg/mod.py", None), conflicting)
    assert not _explained(("/specs/pkg.other", "a", "b"), conflicting)


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the conformance corpus is resolved for Python 3.11")
    if os.environ.get("VSITE_CONFORMANCE") != "1":
        pytest.skip("the corpus run takes minutes: set VSITE_CONFORMANCE=1 to run it")
    try:
        return prepare(cache_dir())
    except SetupError as exc:
        pytest.skip(f"cannot prepare the corpus: {exc}")


@pytest.mark.realwheels
@pytest.mark.slow
def test_probe_detects_what_the_naive_layout_gets_wrong(prepared: Prepared) -> None:
    # backports.tarfile and configparser both fill the pkgutil-style `backports`
    # package: with roots on sys.path, resources list only the first portion.
    report = run(cache_dir(), jobs=2, only=["backports-tarfile"], out=io.StringIO())
    config = cache_dir() / "probe-config.json"
    naive = run_probe(prepared, "naive", config, "backports-tarfile", cache_dir())
    flat = run_probe(prepared, "flat", config, "backports-tarfile", cache_dir())
    roots = [str(p) for p in Path(prepared.manifest).parent.glob("store/wheels/*/site-packages")]
    venv = str(Path(prepared.python).parent.parent)
    naive_found = differences(
        clean(flat, [str(prepared.flat), *roots], venv), clean(naive, roots, venv)
    )
    assert any(key.startswith("/resources/backports") for key, _, _ in naive_found), naive_found
    assert not report["results"]["backports-tarfile"]["unexplained"]


@pytest.mark.realwheels
@pytest.mark.slow
def test_every_distribution_behaves_as_in_one_flat_site_packages(prepared: Prepared) -> None:
    out = io.StringIO()
    report = run(cache_dir(), jobs=2, out=out)
    print(out.getvalue())
    assert not report["results"][GLOBAL]["unexplained"], out.getvalue()
    assert not report["different"], out.getvalue()
