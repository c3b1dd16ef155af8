"""vsite manifest DIR...: a manifest from existing per-wheel directories."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.builders import make_root, write_tree
from vsite.index import build_index
from vsite.manifest import Manifest
from vsite.tools.cli import main


def test_dirs_holding_site_packages_list_that_subdir_relative_to_the_manifest(
    tmp_path: Path,
) -> None:
    # rules_python lays a wheel out as <repo>/site-packages/...
    make_root(tmp_path / "external" / "pypi_alpha", "site-packages", {"alpha.py": ""}, dist="alpha")
    plain = make_root(tmp_path / "roots", "beta", {"beta.py": ""}, version="2.5")
    out = tmp_path / "bazel-out" / "env.json"
    assert main(["manifest", f"{tmp_path}/external/pypi_alpha", f"{plain}", "-o", f"{out}"]) == 0
    data = json.loads(out.read_text())
    assert data == {
        "vsite": 1,
        "roots": [
            {
                "path": "../external/pypi_alpha/site-packages",
                "name": "alpha",
                "version": "1.0",
            },
            {"path": "../roots/beta", "name": "beta", "version": "2.5"},
        ],
    }
    index = build_index(Manifest.load(out))
    assert sorted(index.dists) == ["alpha", "beta"]


def test_relative_manifest_survives_moving_the_whole_tree(tmp_path: Path) -> None:
    make_root(tmp_path / "tree" / "roots", "gamma", {"gamma.py": ""})
    out = tmp_path / "tree" / "manifest.json"
    assert main(["manifest", f"{tmp_path}/tree/roots/gamma", "-o", f"{out}"]) == 0
    shutil.move(tmp_path / "tree", tmp_path / "moved")
    manifest = Manifest.load(tmp_path / "moved" / "manifest.json")
    assert manifest.roots[0].path == os.fspath(tmp_path / "moved" / "roots" / "gamma")
    assert build_index(manifest).dists == {
        "gamma": os.fspath(tmp_path / "moved" / "roots" / "gamma" / "gamma-1.0.dist-info")
    }


def test_absolute_paths_on_request_and_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_root(tmp_path, "delta", {"delta.py": ""})
    out = tmp_path / "sub" / "m.json"
    assert main(["manifest", f"{root}", "--absolute", "-o", f"{out}"]) == 0
    assert json.loads(out.read_text())["roots"][0]["path"] == os.fspath(root)
    capsys.readouterr()
    assert main(["manifest", os.path.relpath(root)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["roots"][0]["path"] == os.fspath(root)


def test_hints_are_left_out_where_a_root_holds_no_single_distribution(tmp_path: Path) -> None:
    bare = write_tree(tmp_path / "bare", {"mod.py": ""})
    two = make_root(tmp_path, "two", {"a.py": ""}, dist="a")
    make_root(tmp_path, "two", {"b.py": ""}, dist="b")
    out = tmp_path / "m.json"
    assert main(["manifest", f"{bare}", f"{two}", "-o", f"{out}"]) == 0
    assert json.loads(out.read_text())["roots"] == [{"path": "bare"}, {"path": "two"}]


def test_missing_directories_are_all_reported_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_root(tmp_path, "good", {"good.py": ""})
    (tmp_path / "file").write_text("")
    out = tmp_path / "m.json"
    code = main(["manifest", f"{tmp_path}/nope", f"{good}", f"{tmp_path}/file", "-o", f"{out}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "2 directories are unusable" in err
    assert "/roots/0" in err
    assert "nope does not exist" in err
    assert "/roots/2" in err
    assert "file is not a directory" in err
    assert not out.exists()
