"""SPEC section 2, the manifest: schema v1, every problem reported at once with its pointer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.builders import write_manifest
from vsite import Manifest, ManifestError
from vsite.errors import Problem
from vsite.manifest import Root


def _load_data(tmp_path: Path, data: Any) -> Manifest:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return Manifest.load(path)


def _problems(tmp_path: Path, data: Any) -> list[tuple[str, str]]:
    """(pointer, message) of every problem ManifestError reports for ``data``."""
    with pytest.raises(ManifestError) as caught:
        _load_data(tmp_path, data)
    assert caught.value.manifest == str(tmp_path / "manifest.json")
    return [(problem.pointer, problem.message) for problem in caught.value.problems]


# -- valid manifests -------------------------------------------------------------------


def test_string_and_object_roots_load_in_order_with_hints(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path / "manifest.json",
        [
            str(tmp_path / "abs"),
            {"path": "rel/torch", "name": "torch", "version": "2.5.0"},
            {"path": "only-path"},
        ],
    )
    manifest = Manifest.load(path)
    assert manifest.source == str(path)
    assert manifest.content == path.read_bytes()
    assert manifest.roots == (
        Root(str(tmp_path / "abs"), "/roots/0"),
        Root(str(tmp_path / "rel" / "torch"), "/roots/1", "torch", "2.5.0"),
        Root(str(tmp_path / "only-path"), "/roots/2"),
    )


def test_relative_roots_resolve_against_the_manifest_directory_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    path = write_manifest(
        tmp_path / "conf" / "manifest.json", ["roots/a", "./b", "../shared/c", "d/../e"]
    )
    manifest = Manifest.load(os.path.relpath(path))
    assert [root.path for root in manifest.roots] == [
        str(tmp_path / "conf" / "roots" / "a"),
        str(tmp_path / "conf" / "b"),
        str(tmp_path / "shared" / "c"),
        str(tmp_path / "conf" / "e"),
    ]
    assert manifest.source == str(path)


def test_home_relative_roots_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    manifest = _load_data(tmp_path, {"vsite": 1, "roots": ["~/wheels/a"]})
    assert manifest.roots[0].path == str(tmp_path / "home" / "wheels" / "a")


def test_manifest_accepts_a_path_object_and_a_str(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.json", ["a"])
    assert Manifest.load(path) == Manifest.load(str(path))


def test_utf8_root_paths_load(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes('{"vsite": 1, "roots": ["r\u00e9pertoire/\u6839"]}'.encode())
    manifest = Manifest.load(path)
    assert manifest.roots[0].path == str(tmp_path / "r\u00e9pertoire" / "\u6839")


def test_from_roots_builds_a_manifest_in_code(tmp_path: Path) -> None:
    manifest = Manifest.from_roots([tmp_path / "a", tmp_path / "b"])
    assert manifest.source == "<memory>"
    assert [root.path for root in manifest.roots] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert [root.pointer for root in manifest.roots] == ["/roots/0", "/roots/1"]


# -- unusable files -------------------------------------------------------------------------


def test_missing_manifest_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read manifest") as caught:
        Manifest.load(tmp_path / "absent.json")
    assert caught.value.manifest == str(tmp_path / "absent.json")
    assert isinstance(caught.value, ValueError)


def test_directory_as_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="directory") as caught:
        Manifest.load(tmp_path)
    assert caught.value.manifest == str(tmp_path)


def test_non_utf8_manifest_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(b'{"vsite": 1, "roots": ["\xff"]}')
    with pytest.raises(ManifestError, match=r"not UTF-8 \(byte 24\)"):
        Manifest.load(path)


@pytest.mark.parametrize("text", ["", "{", '{"vsite": 1,}', "nul\0", "[1, 2"])
def test_invalid_json_is_a_manifest_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid JSON") as caught:
        Manifest.load(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("data", "kind"),
    [([], "a list"), ("roots", "a string"), (1, "a number"), (None, "null"), (True, "a boolean")],
)
def test_top_level_must_be_an_object(tmp_path: Path, data: Any, kind: str) -> None:
    assert _problems(tmp_path, data) == [("", f"expected an object, got {kind}")]


# -- schema rules, one at a time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"roots": ["a"]}, [("/vsite", "missing schema version (expected 1)")]),
        pytest.param(
            {"vsite": 2, "roots": ["a"]},
            [("/vsite", "unsupported schema version 2 (expected 1)")],
        ),
        pytest.param(
            {"vsite": "1", "roots": ["a"]},
            [("/vsite", "unsupported schema version '1' (expected 1)")],
        ),
        pytest.param(
            {"vsite": 1.0, "roots": ["a"]},
            [("/vsite", "unsupported schema version 1.0 (expected 1)")],
            id="float-version",
        ),
        pytest.param(
            {"vsite": True, "roots": ["a"]},
            [("/vsite", "unsupported schema version True (expected 1)")],
            id="bool-version",
        ),
        pytest.param({"vsite": 1}, [("/roots", "missing list of roots")]),
        pytest.param({"vsite": 1, "roots": []}, [("/roots", "no roots listed")]),
        pytest.param({"vsite": 1, "roots": "a"}, [("/roots", "expected a list, got a string")]),
        pytest.param(
            {"vsite": 1, "roots": {"path": "a"}}, [("/roots", "expected a list, got an object")]
        ),
        pytest.param(
            {"vsite": 1, "roots": ["a"], "root": ["b"]}, [("/root", "unknown key 'root'")]
        ),
        pytest.param(
            {"vsite": 1, "roots": ["a"], "a/b~c": 1},
            [("/a~1b~0c", "unknown key 'a/b~c'")],
            id="pointer-escaping",
        ),
        pytest.param(
            {"vsite": 1, "roots": [3]},
            [("/roots/0", "root must be a string or an object, got a number")],
        ),
        pytest.param(
            {"vsite": 1, "roots": [None]},
            [("/roots/0", "root must be a string or an object, got null")],
        ),
        pytest.param(
            {"vsite": 1, "roots": [["a"]]},
            [("/roots/0", "root must be a string or an object, got a list")],
        ),
        pytest.param(
            {"vsite": 1, "roots": [""]}, [("/roots/0", "root path is empty or contains NUL")]
        ),
        pytest.param(
            {"vsite": 1, "roots": ["a\0b"]}, [("/roots/0", "root path is empty or contains NUL")]
        ),
        pytest.param(
            {"vsite": 1, "roots": [{"name": "x"}]}, [("/roots/0/path", "root object has no 'path'")]
        ),
        pytest.param(
            {"vsite": 1, "roots": [{"path": 7}]},
            [("/roots/0", "root path must be a string, got a number")],
        ),
        pytest.param(
            {"vsite": 1, "roots": [{"path": "a", "verison": "1"}]},
            [("/roots/0/verison", "unknown key 'verison' in root")],
            id="typo-in-root-key",
        ),
        pytest.param(
            {"vsite": 1, "roots": [{"path": "a", "name": 1}]},
            [("/roots/0/name", "'name' must be a string, got a number")],
        ),
        pytest.param(
            {"vsite": 1, "roots": [{"path": "a", "version": None}]},
            [("/roots/0/version", "'version' must be a string, got null")],
        ),
        pytest.param(
            {"vsite": 1, "roots": ["a", "b", "./a"]}, [("/roots/2", "duplicate of /roots/0")]
        ),
        pytest.param(
            {"vsite": 1, "roots": ["a", "a/inner"]},
            [("/roots/1", "root is inside root /roots/0 ({base}/a)")],
            id="nested-root",
        ),
    ],
)
def test_each_schema_rule_reports_its_pointer(
    tmp_path: Path, data: Any, expected: list[tuple[str, str]]
) -> None:
    expected = [(pointer, message.format(base=tmp_path)) for pointer, message in expected]
    assert _problems(tmp_path, data) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = {
        "vsite": 3,
        "extra": True,
        "roots": [
            "ok",
            7,
            {"path": "x", "nmae": "typo", "version": 1},
            {"name": "no-path"},
            "",
            "ok",
        ],
    }
    with pytest.raises(ManifestError) as caught:
        _load_data(tmp_path, data)
    error = caught.value
    assert [(p.pointer, p.message) for p in error.problems] == [
        ("/extra", "unknown key 'extra'"),
        ("/vsite", "unsupported schema version 3 (expected 1)"),
        ("/roots/1", "root must be a string or an object, got a number"),
        ("/roots/2/nmae", "unknown key 'nmae' in root"),
        ("/roots/2/version", "'version' must be a string, got a number"),
        ("/roots/3/path", "root object has no 'path'"),
        ("/roots/4", "root path is empty or contains NUL"),
        ("/roots/5", "duplicate of /roots/0"),
    ]
    assert error.message == "invalid manifest (8 problems)"
    # The printed error names the file and every problem with its pointer.
    text = str(error)
    assert text.splitlines()[0] == f"{tmp_path / 'manifest.json'}: invalid manifest (8 problems)"
    for problem in error.problems:
        assert f"\n  {problem.pointer}: {problem.message}" in text


def test_duplicate_problem_names_the_root_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        _load_data(tmp_path, {"vsite": 1, "roots": ["a", "a/"]})
    assert caught.value.problems == (
        Problem("duplicate of /roots/0", "/roots/1", str(tmp_path / "a")),
    )
    assert f"(root {tmp_path / 'a'})" in str(caught.value)


def test_single_problem_is_singular(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"invalid manifest \(1 problem\)$|1 problem\)\n"):
        _load_data(tmp_path, {"vsite": 1, "roots": []})


def test_hints_are_not_checked_against_metadata_when_loading(tmp_path: Path) -> None:
    # SPEC: the truth is the root's dist-info; a disagreeing hint is for `vsite check`.
    manifest = _load_data(
        tmp_path, {"vsite": 1, "roots": [{"path": "absent", "name": "x", "version": "9"}]}
    )
    assert manifest.roots[0].name == "x"
    assert manifest.roots[0].version == "9"


def test_loading_never_touches_the_roots(tmp_path: Path) -> None:
    # Missing roots are activation's (and check's) business: the manifest itself is valid.
    manifest = _load_data(tmp_path, {"vsite": 1, "roots": ["missing-a", "missing-b"]})
    assert len(manifest.roots) == 2
    assert not (tmp_path / "missing-a").exists()
