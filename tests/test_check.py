"""`vsite check`: the real command line, run in a subprocess, on roots built on tmp_path."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import sys_tags

from tests.builders import make_root, write_manifest, write_record, write_tree
from tests.children import child_env

TAG = sys.implementation.cache_tag


def user_cache(manifest: Path) -> Path:
    """The per-user bytecode cache the children of a test use (not the real user's)."""
    return manifest.parent / "user-bytecode"


def run_check(manifest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vsite", "check", str(manifest), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=child_env(VSITE_BYTECODE_DIR=str(user_cache(manifest))),
    )


def check_json(manifest: Path) -> tuple[int, dict[str, Any]]:
    result = run_check(manifest, "--json")
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def findings(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [finding for finding in document["findings"] if finding["kind"] == kind]


def vsite_run(manifest: Path, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "run", str(manifest), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip()


def test_clean_site_exits_0_and_says_ok(tmp_path: Path) -> None:
    one = make_root(tmp_path, "one", {"one.py": "X = 1"})
    two = make_root(tmp_path, "two", {"two": {"__init__.py": ""}})
    manifest = write_manifest(tmp_path / "m.json", [one, two])

    result = run_check(manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    # Roots without bytecode are information, as staged native entries are: still ok.
    assert result.stdout.splitlines() == [
        f"{manifest}: ok",
        f"roots without {TAG} bytecode (2):",
        f"  /roots/0: 1 of 1 modules (root {one})",
        f"  /roots/1: 1 of 1 modules (root {two})",
        f"modules in the user bytecode cache: 0 ({user_cache(manifest)})",
    ]
    assert result.stderr == ""

    code, document = check_json(manifest)
    assert code == 0
    missing = [
        {"pointer": "/roots/0", "root": str(one), "modules": 1, "without_bytecode": 1},
        {"pointer": "/roots/1", "root": str(two), "modules": 1, "without_bytecode": 1},
    ]
    assert document == {
        "manifest": str(manifest),
        "ok": True,
        "findings": [],
        "staged": [],
        "bytecode": {
            "cache_tag": TAG,
            "missing": missing,
            "user_cache": {"path": str(user_cache(manifest)), "modules": 0},
        },
    }


def test_json_document_has_a_stable_shape(tmp_path: Path) -> None:
    one = make_root(tmp_path, "one", {"one.py": ""})
    manifest = write_manifest(tmp_path / "m.json", [one, tmp_path / "gone"])

    code, document = check_json(manifest)
    assert code == 1
    assert list(document) == ["manifest", "ok", "findings", "staged", "bytecode"]
    assert document["ok"] is False
    assert document["findings"] == [
        {
            "kind": "missing-root",
            "pointer": "/roots/1",
            "root": str(tmp_path / "gone"),
            "message": "root does not exist",
        }
    ]


def test_every_unusable_root_is_reported_and_the_others_still_checked(tmp_path: Path) -> None:
    good = make_root(tmp_path, "good", {"good.py": ""}, dist="good", version="1.0")
    afile = tmp_path / "afile"
    afile.write_text("not a directory", encoding="utf-8")
    manifest = write_manifest(
        tmp_path / "m.json",
        [tmp_path / "missing", afile, {"path": str(good), "name": "good", "version": "2.0"}],
    )

    code, document = check_json(manifest)
    assert code == 1
    kinds = [(f["kind"], f["pointer"]) for f in document["findings"]]
    assert kinds == [
        ("missing-root", "/roots/0"),
        ("not-a-directory", "/roots/1"),
        ("hint-mismatch", "/roots/2/version"),
    ]


def test_human_output_groups_one_finding_per_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("", encoding="utf-8")
    manifest = write_manifest(tmp_path / "m.json", [tmp_path / "a", tmp_path / "b", afile])

    result = run_check(manifest)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{manifest}: 3 problems found",
        "missing roots (2):",
        f"  /roots/0: root does not exist (root {tmp_path / 'a'})",
        f"  /roots/1: root does not exist (root {tmp_path / 'b'})",
        "roots that are not directories (1):",
        f"  /roots/2: root is not a directory (root {afile})",
    ]


def test_duplicate_distribution_names_the_winner_and_the_dropped_root(tmp_path: Path) -> None:
    first = make_root(tmp_path, "first", {"dup.py": "WHO = 'first'"}, dist="Dup.Pkg")
    other = make_root(tmp_path, "other", {"other.py": ""})
    second = make_root(tmp_path, "second", {"dup.py": "WHO = 'second'"}, dist="dup_pkg")
    manifest = write_manifest(tmp_path / "m.json", [first, other, second])

    code, document = check_json(manifest)
    assert code == 1
    [finding] = findings(document, "duplicate-distribution")
    assert finding["pointer"] == "/roots/2"
    assert finding["root"] == str(second)
    assert "'dup-pkg'" in finding["message"]
    assert f"/roots/0 ({first}), which wins" in finding["message"]
    assert "dropped" in finding["message"]
    # A dropped root takes no part in file conflicts: dup.py is not reported.
    assert findings(document, "file-conflict") == []
    assert vsite_run(manifest, "import dup; print(dup.WHO)") == "first"


def test_two_metadata_dirs_of_one_distribution_in_a_root_are_reported(tmp_path: Path) -> None:
    root = make_root(tmp_path, "root", {"m.py": ""}, dist="thing", version="1.0")
    make_root(tmp_path, "root", dist="thing", version="2.0")  # merges into the same dir
    manifest = write_manifest(tmp_path / "m.json", [root])

    code, document = check_json(manifest)
    assert code == 1
    [finding] = findings(document, "duplicate-distribution")
    assert finding["pointer"] == "/roots/0"
    assert "thing-1.0.dist-info is used" in finding["message"]


def test_file_conflict_names_the_first_root_as_winner(tmp_path: Path) -> None:
    tree_a = {"pkg": {"__init__.py": "", "mod.py": "WHO = 'a'", "same.py": "X = 1"}}
    tree_b = {"pkg": {"mod.py": "WHO = 'b'", "same.py": "X = 1", "only_b.py": ""}}
    a = make_root(tmp_path, "a", tree_a, dist="dist-a")
    b = make_root(tmp_path, "b", tree_b, dist="dist-b")
    manifest = write_manifest(tmp_path / "m.json", [a, b])

    code, document = check_json(manifest)
    assert code == 1
    conflicts = findings(document, "file-conflict")
    # Identical copies (same.py) change nothing and are not reported.
    assert [(f["pointer"], f["root"]) for f in conflicts] == [("/roots/1", str(b))]
    rel = os.path.join("pkg", "mod.py")
    assert conflicts[0]["message"] == f"{rel!r} is also in /roots/0 ({a}), which wins"
    # ... and that is the file the virtual site imports.
    assert vsite_run(manifest, "import pkg.mod; print(pkg.mod.WHO)") == "a"


def test_file_conflicts_ignore_bytecode_caches(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", {"pkg": {"__init__.py": "", "__pycache__": {"x.pyc": b"a"}}})
    b = make_root(tmp_path, "b", {"pkg": {"__pycache__": {"x.pyc": b"b"}}})
    for root, text in ((a, "a"), (b, "b")):
        write_tree(root, {"__pycache__": {"top.pyc": text.encode()}})
    manifest = write_manifest(tmp_path / "m.json", [a, b])

    code, document = check_json(manifest)
    assert document["findings"] == []
    assert code == 0


def test_top_level_pth_with_the_same_name_is_a_conflict(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", pth={"shared.pth": "# a\n"})
    b = make_root(tmp_path, "b", pth={"shared.pth": "# b\n"})
    manifest = write_manifest(tmp_path / "m.json", [a, b])

    code, document = check_json(manifest)
    assert code == 1
    [conflict] = findings(document, "file-conflict")
    assert conflict["pointer"] == "/roots/1"
    assert conflict["message"].startswith("'shared.pth' is also in /roots/0")


def set_wheel_tags(root: Path, *tags: str) -> None:
    [info] = root.glob("*.dist-info")
    lines = ["Wheel-Version: 1.0", "Root-Is-Purelib: false", *(f"Tag: {t}" for t in tags)]
    (info / "WHEEL").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_wheel_tags_that_do_not_fit_this_interpreter_are_reported(tmp_path: Path) -> None:
    old = make_root(tmp_path, "old", {"old.py": ""}, dist="old")
    set_wheel_tags(old, "cp27-cp27mu-manylinux1_x86_64", "cp27-cp27mu-manylinux2010_x86_64")
    other_os = make_root(tmp_path, "win", {"win.py": ""}, dist="win")
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    set_wheel_tags(other_os, f"cp{version}-cp{version}-win_amd64")
    pure = make_root(tmp_path, "pure", {"pure.py": ""}, dist="pure")
    set_wheel_tags(pure, "py2.py3-none-any")  # a compressed tag set that fits
    abi3 = make_root(tmp_path, "abi3", {"abi3.py": ""}, dist="abi3")
    platform = next(iter(sys_tags())).platform
    set_wheel_tags(abi3, f"cp39-abi3-{platform}")  # a stable-ABI wheel fits 3.9 and later
    manifest = write_manifest(tmp_path / "m.json", [old, other_os, pure, abi3])

    code, document = check_json(manifest)
    assert code == 1
    reported = findings(document, "incompatible-wheel")
    assert [f["pointer"] for f in reported] == ["/roots/0", "/roots/1"]
    assert "cp27-cp27mu-manylinux1_x86_64" in reported[0]["message"]
    assert "old-1.0.dist-info" in reported[0]["message"]


def test_a_root_without_wheel_tags_is_not_judged(tmp_path: Path) -> None:
    root = make_root(tmp_path, "root", {"m.py": ""})
    [info] = root.glob("*.dist-info")
    (info / "WHEEL").unlink()
    egg = write_tree(tmp_path / "egg", {"e.py": "", "e-1.0.egg-info": {"PKG-INFO": ""}})
    manifest = write_manifest(tmp_path / "m.json", [root, egg])

    code, document = check_json(manifest)
    assert (code, document["findings"]) == (0, [])


def test_broken_pth_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    content = "\n".join(
        [
            "# a comment",
            "",
            "extra",  # exists
            "missing-dir",  # does not exist: site skips it silently
            "import os",  # fine
            "import os; x = (",  # does not compile
            "import\tsys",  # fine
        ]
    )
    root = make_root(tmp_path, "root", {"extra": {"m.py": ""}}, pth={"site-extra.pth": content})
    later = make_root(tmp_path, "later", pth={"zz.pth": "../nowhere\n"})
    manifest = write_manifest(tmp_path / "m.json", [root, later])

    code, document = check_json(manifest)
    assert code == 1
    broken = findings(document, "broken-pth")
    assert [(f["pointer"], f["message"].split(": ")[0]) for f in broken] == [
        ("/roots/0", "site-extra.pth:4"),
        ("/roots/0", "site-extra.pth:6"),
        ("/roots/1", "zz.pth:1"),
    ]
    assert "'missing-dir' does not exist" in broken[0]["message"]
    assert "does not compile" in broken[1]["message"]


def test_pth_of_a_dropped_root_is_not_checked(tmp_path: Path) -> None:
    first = make_root(tmp_path, "first", dist="same")
    second = make_root(tmp_path, "second", dist="same", pth={"bad.pth": "nowhere\n"})
    manifest = write_manifest(tmp_path / "m.json", [first, second])

    code, document = check_json(manifest)
    assert code == 1
    assert [f["kind"] for f in document["findings"]] == ["duplicate-distribution"]


def test_hints_that_disagree_with_the_metadata_are_reported(tmp_path: Path) -> None:
    roots = [
        make_root(tmp_path, "a", dist="alpha", version="1.0"),
        make_root(tmp_path, "b", dist="beta", version="2.0"),
        make_root(tmp_path, "c", dist="gamma", version="3.0"),
        make_root(tmp_path, "d", dist="Delta_Pkg", version="4.0"),
    ]
    manifest = write_manifest(
        tmp_path / "m.json",
        [
            {"path": str(roots[0]), "name": "not-alpha"},
            {"path": str(roots[1]), "name": "beta", "version": "2.1"},
            {"path": str(roots[2]), "version": "3.0.0"},  # equal as versions: fine
            {"path": str(roots[3]), "name": "delta.pkg", "version": "4.0"},  # fine
        ],
    )

    code, document = check_json(manifest)
    assert code == 1
    hints = findings(document, "hint-mismatch")
    assert [f["pointer"] for f in hints] == ["/roots/0/name", "/roots/1/version"]
    assert "'not-alpha'" in hints[0]["message"]
    assert "'2.1'" in hints[1]["message"]
    assert "'2.0'" in hints[1]["message"]


def test_hints_on_a_root_without_metadata_are_reported(tmp_path: Path) -> None:
    bare = write_tree(tmp_path / "bare", {"bare.py": ""})
    manifest = write_manifest(tmp_path / "m.json", [{"path": str(bare), "version": "1.0"}])

    code, document = check_json(manifest)
    assert code == 1
    [hint] = findings(document, "hint-mismatch")
    assert hint["pointer"] == "/roots/0/version"


def test_native_entries_to_stage_are_listed_but_are_no_problem(tmp_path: Path) -> None:
    ext = "_speed" + ".cpython-311-x86_64-linux-gnu.so"  # detection goes by name only
    native = make_root(
        tmp_path,
        "native",
        {
            "fast": {"__init__.py": "", ext: b"\x7fELF"},
            "fast.libs": {"libz-123.so.1": b"\x7fELF"},
            "pure": {"__init__.py": ""},
        },
        dist="fast",
    )
    plugin = make_root(tmp_path, "plugin", {"fast": {"plugin.py": ""}}, dist="fast-plugin")
    write_record(native)
    manifest = write_manifest(tmp_path / "m.json", [native, plugin])

    code, document = check_json(manifest)
    assert code == 0
    assert document["ok"] is True
    assert document["staged"] == [
        {"name": "fast", "pointer": "/roots/0", "root": str(native)},
        {"name": "fast", "pointer": "/roots/1", "root": str(plugin)},
        {"name": "fast.libs", "pointer": "/roots/0", "root": str(native)},
    ]
    human = run_check(manifest)
    assert human.returncode == 0
    assert f"  /roots/1: fast (root {plugin})" in human.stdout.splitlines()


def test_roots_without_bytecode_and_the_user_cache_are_reported_but_are_no_problem(
    tmp_path: Path,
) -> None:
    bare = make_root(tmp_path, "bare", {"bare": {"__init__.py": "", "a.py": "A = 1", "b.py": ""}})
    half = make_root(tmp_path, "half", {"half": {"__init__.py": "", "x.py": "X = 1"}})
    full = make_root(tmp_path, "full", {"full.py": "F = 1"})
    for source in (half / "half" / "__init__.py", half / "half" / "x.py", full / "full.py"):
        mode = py_compile.PycInvalidationMode.TIMESTAMP
        py_compile.compile(str(source), doraise=True, invalidation_mode=mode)  # valid for now
    os.utime(half / "half" / "x.py", (1_600_000_000, 1_600_000_000))  # x's is stale now
    manifest = write_manifest(tmp_path / "m.json", [bare, half, full])

    code, document = check_json(manifest)
    assert (code, document["ok"], document["findings"]) == (0, True, [])
    assert document["bytecode"] == {
        "cache_tag": TAG,
        "missing": [
            {"pointer": "/roots/0", "root": str(bare), "modules": 3, "without_bytecode": 3},
            {"pointer": "/roots/1", "root": str(half), "modules": 2, "without_bytecode": 1},
        ],
        "user_cache": {"path": str(user_cache(manifest)), "modules": 0},
    }

    # A process that may write bytecode compiles what the roots lack into the user cache.
    env = child_env(VSITE_BYTECODE_DIR=str(user_cache(manifest)))
    del env["PYTHONDONTWRITEBYTECODE"]
    code_line = "import bare.a, bare.b, half.x, full"
    command = [sys.executable, "-m", "vsite", "exec", str(manifest), "--", sys.executable]
    child = subprocess.run(
        [*command, "-c", code_line], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    assert not (bare / "bare" / "__pycache__").exists()  # never into a root

    code, document = check_json(manifest)
    assert code == 0
    assert document["bytecode"]["user_cache"]["modules"] == 4  # bare's 3 and half.x
    human = run_check(manifest)
    assert human.returncode == 0
    assert human.stdout.splitlines() == [
        f"{manifest}: ok",
        f"roots without {TAG} bytecode (2):",
        f"  /roots/0: 3 of 3 modules (root {bare})",
        f"  /roots/1: 1 of 2 modules (root {half})",
        f"modules in the user bytecode cache: 4 ({user_cache(manifest)})",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "manifest is not valid JSON"),
        ('{"vsite": 2, "roots": [], "extra": 1}', "invalid manifest (3 problems)"),
    ],
)
def test_unusable_manifest_exits_2_with_one_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(content, encoding="utf-8")

    result = run_check(manifest)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"vsite: error: {manifest}: {expected}")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unusable_manifest_in_json_lists_every_problem(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text('{"vsite": 2, "roots": [], "extra": 1}', encoding="utf-8")

    result = run_check(manifest, "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["manifest"] == str(manifest)
    assert {(f["kind"], f["pointer"]) for f in document["findings"]} == {
        ("invalid-manifest", "/extra"),
        ("invalid-manifest", "/vsite"),
        ("invalid-manifest", "/roots"),
    }


def test_missing_manifest_file_exits_2(tmp_path: Path) -> None:
    result = run_check(tmp_path / "nope.json")
    assert result.returncode == 2
    assert "cannot read manifest" in result.stderr
    assert len(result.stderr.splitlines()) == 1
