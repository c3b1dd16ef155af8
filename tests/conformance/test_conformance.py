"""The conformance harness: real distributions behave under vsite as in one flat dir.

The corpus run takes minutes (downloads and installs are cached under
~/.cache/vsite-tests/conformance) and is opt-in for a bare pytest run:
``VSITE_CONFORMANCE=1 pytest tests/conformance``; ``scripts/test`` sets it. In required
mode (CI) it is on unless ``VSITE_CONFORMANCE=0``, and a corpus that cannot be prepared
fails with pip's reason instead of skipping.
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
    PYTHON,
    Prepared,
    SetupError,
    cache_dir,
    clean,
    differences,
    prepare,
    run,
    run_probe,
)
from tests.conftest import require_or_skip, required_mode
from tests.layouts import build_flat, shadowed


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


def test_a_later_roots_copy_of_a_file_two_wheels_ship_is_a_difference(tmp_path: Path) -> None:
    # Both wheels ship pkg/mod.py and pkg/LICENSE (no suffix) with their own contents:
    # the flat reference holds root 1's, so naming root 2's copy, directly or through a
    # farm link, is a difference, however alike the normalised paths look.
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    for root in (r1, r2):
        (root / "pkg").mkdir(parents=True)
        for name in ("mod.py", "LICENSE"):
            (root / "pkg" / name).write_text(root.name, encoding="utf-8")
    (r2 / "pkg" / "only_two.py").write_text("", encoding="utf-8")
    farm = tmp_path / "farm"
    (farm / "pkg").mkdir(parents=True)
    (farm / "pkg" / "mod.py").symlink_to(r2 / "pkg" / "mod.py")
    flat = build_flat([r1, r2], tmp_path / "flat")
    marks = shadowed([r1, r2])
    prefixes = [str(flat), str(r1), str(r2)]

    def output(mod: Path, license_dir: Path) -> dict[str, object]:
        return {
            "file": str(mod / "pkg" / "mod.py"),
            "error": f'File "{license_dir / "pkg" / "LICENSE"}", line 1',
            "other": str(r2 / "pkg" / "only_two.py"),
            "site_paths": [str(farm)],
        }

    reference = clean(output(flat, flat), prefixes, "/venv", marks)
    assert reference["file"] == "<site>/pkg/mod.py"
    assert differences(reference, clean(output(r1, r1), prefixes, "/venv", marks)) == []
    wrong = differences(reference, clean(output(r2, r2), prefixes, "/venv", marks))
    assert [key for key, _, _ in wrong] == ["/error", "/file"]
    assert wrong[1][2] == "<site>/pkg/mod.py (root 2's copy; the flat site holds root 1's)"
    through_farm = differences(reference, clean(output(farm, r1), prefixes, "/venv", marks))
    assert [key for key, _, _ in through_farm] == ["/file"]


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    if sys.version_info[:2] != PYTHON:
        pytest.skip("the conformance corpus is resolved for Python 3.11")
    # Opt-in for a bare pytest run; required mode runs it unless VSITE_CONFORMANCE=0.
    if os.environ.get("VSITE_CONFORMANCE", "1" if required_mode() else "0") != "1":
        pytest.skip("the corpus run takes minutes: set VSITE_CONFORMANCE=1 to run it")
    try:
        return prepare(cache_dir())
    except SetupError as exc:
        problem = f"cannot prepare the corpus: {exc}"
    require_or_skip(problem)  # outside the handler: pip's message, not a traceback chain


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
    assert not report["results"]["backports-tarfile"]["differences"]


@pytest.mark.realwheels
@pytest.mark.slow
def test_every_distribution_behaves_as_in_one_flat_site_packages(prepared: Prepared) -> None:
    out = io.StringIO()
    report = run(cache_dir(), jobs=2, out=out)
    print(out.getvalue())
    assert not report["results"][GLOBAL]["differences"], out.getvalue()
    assert not report["different"], out.getvalue()
