"""Bad manifests (SPEC §3): one clear error naming file, pointer and root; nothing changed.

Each case is tried three ways: in this process (``vsite.activate`` raises a VsiteError
and the import system is exactly as before), and on the command line through
``vsite run``, ``vsite exec`` and ``vsite check`` (one ``vsite: error:`` line, no
traceback, exit 2; ``check`` reports root-level problems as findings, exit 1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest
from tests.conftest import SysState
from tests.reliability._support import (
    VSITE,
    as_other_user,
    assert_one_line_error,
    cli_commands,
    run,
    warm_imports,
)
from vsite.errors import SHOWN_PROBLEMS


class Case:
    """A bad manifest: how to write it, what its error names, what ``check`` exits."""

    def __init__(
        self,
        write: Callable[[Path], Path],
        names: tuple[str, ...],
        error: type[vsite.VsiteError] = vsite.ManifestError,
        check_exit: int = 2,
    ) -> None:
        self.write = write
        self.names = names  # substrings of the error text besides the manifest path
        self.error = error
        self.check_exit = check_exit


def _text(content: str | bytes) -> Callable[[Path], Path]:
    def write(tmp_path: Path) -> Path:
        (tmp_path / "r1").mkdir()
        target = tmp_path / "manifest.json"
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
        return target

    return write


def _roots(*entries: object) -> Callable[[Path], Path]:
    def write(tmp_path: Path) -> Path:
        make_root(tmp_path, "r1", {"relmod.py": "X = 1\n"})
        (tmp_path / "a_file").write_text("not a directory\n", encoding="utf-8")
        target = tmp_path / "manifest.json"
        target.write_text(json.dumps({"vsite": 1, "roots": list(entries)}), encoding="utf-8")
        return target

    return write


def _directory(tmp_path: Path) -> Path:
    target = tmp_path / "manifest.json"
    target.mkdir()
    return target


CASES = {
    "invalid-json": Case(_text('{"vsite": 1, "roots": ['), ("not valid JSON",)),
    "wrong-version": Case(
        _text('{"vsite": 2, "roots": ["r1"]}'), ("/vsite", "unsupported schema version 2")
    ),
    "version-as-string": Case(
        _text('{"vsite": "1", "roots": ["r1"]}'), ("/vsite", "unsupported schema version '1'")
    ),
    "missing-version": Case(_text('{"roots": ["r1"]}'), ("/vsite", "missing schema version")),
    "unknown-top-level-key": Case(
        _text('{"vsite": 1, "roots": ["r1"], "root": ["r1"]}'), ("/root", "unknown key 'root'")
    ),
    "unknown-key-in-root-object": Case(
        _text('{"vsite": 1, "roots": [{"path": "r1", "nmae": "x"}]}'),
        ("/roots/0/nmae", "unknown key 'nmae'"),
    ),
    "empty-roots": Case(_text('{"vsite": 1, "roots": []}'), ("/roots", "no roots listed")),
    "missing-root": Case(
        _roots("r1", "nowhere"),
        ("/roots/1", "does not exist", "nowhere"),
        error=vsite.RootError,
        check_exit=1,
    ),
    "root-is-a-file": Case(
        _roots("a_file"),
        ("/roots/0", "not a directory", "a_file"),
        error=vsite.RootError,
        check_exit=1,
    ),
    "duplicate-roots": Case(_roots("r1", "./r1/"), ("/roots/1", "duplicate of /roots/0", "r1")),
    "root-nested-in-a-root": Case(
        _roots("r1", "r1/relsub"), ("/roots/1", "inside root /roots/0", "relsub")
    ),
    "non-utf8-file": Case(_text(b'{"vsite": 1, "roots": ["r\xff"]}'), ("not UTF-8",)),
    "lone-surrogate-in-a-root-path": Case(
        _text('{"vsite": 1, "roots": ["r1", "\\ud800"]}'), ("/roots/1", "cannot be encoded")
    ),
    "json-nested-100000-deep": Case(
        _text('{"vsite": 1, "roots": ' + "[" * 100_000 + "]" * 100_000 + "}"), ("JSON",)
    ),
    "top-level-not-an-object": Case(_text('["r1"]'), ("must be a JSON object",)),
    "manifest-path-is-a-directory": Case(_directory, ("is a directory",)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_manifest_fails_in_process_naming_it_and_changes_nothing(
    tmp_path: Path, sys_state: SysState, case: Case
) -> None:
    manifest = case.write(tmp_path)
    warm_imports()
    before = SysState()
    with pytest.raises(case.error) as caught:
        vsite.activate(manifest)
    text = str(caught.value)
    assert caught.value.manifest == str(manifest)
    assert text.startswith(f"{manifest}: ")
    for fragment in case.names:
        assert fragment in text
    assert SysState().changes_since(before) == {}
    assert vsite.activation.active() is None


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_manifest_on_the_command_line_is_one_line_and_exit_2(
    tmp_path: Path, case: Case
) -> None:
    manifest = case.write(tmp_path)
    for command, args in cli_commands(manifest).items():
        result = run(args, cwd=tmp_path)
        if command == "check" and case.check_exit == 1:
            # A manifest that loads but whose roots are bad: check lists the findings.
            assert result.returncode == 1, result.stderr
            assert result.stderr == ""
            assert all(fragment in result.stdout for fragment in case.names)
            continue
        line = assert_one_line_error(result)
        assert str(manifest) in line, command
        for fragment in case.names:
            assert fragment in line, (command, fragment)


# -- 10 MB manifests -----------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def test_ten_mb_manifest_of_many_long_root_paths_works(tmp_path: Path, sys_state: SysState) -> None:
    """1,000 roots, each spelled with 10 kB of ``./`` before its name."""
    base = tmp_path / "many"
    entries = []
    for number in range(1000):
        root = base / f"r{number:04d}"
        root.mkdir(parents=True)
        (root / f"relbig{number}.py").write_text(f"N = {number}\n", encoding="utf-8")
        entries.append("./" * 5300 + f"many/r{number:04d}")
    manifest = write_manifest(tmp_path / "manifest.json", entries)
    assert manifest.stat().st_size > TEN_MB - 100_000
    handle = vsite.activate(manifest)
    assert len(handle.roots) == 1000
    import relbig0  # type: ignore[import-not-found]  # written by the test
    import relbig999  # type: ignore[import-not-found]  # written by the test

    assert (relbig0.N, relbig999.N) == (0, 999)
    assert relbig999.__file__ == str(base / "r0999" / "relbig999.py")


def test_ten_mb_root_path_that_normalises_to_a_real_root_works(
    tmp_path: Path, sys_state: SysState
) -> None:
    make_root(tmp_path, "r1", {"rellong.py": "X = 'long'\n"})
    manifest = write_manifest(tmp_path / "manifest.json", ["r1" + "/." * (TEN_MB // 2)])
    assert manifest.stat().st_size > TEN_MB
    handle = vsite.activate(manifest)
    assert handle.roots == (str(tmp_path / "r1"),)
    import rellong  # type: ignore[import-not-found]  # written by the test

    assert rellong.X == "long"


def test_ten_mb_root_name_fails_clearly(tmp_path: Path, sys_state: SysState) -> None:
    manifest = write_manifest(tmp_path / "manifest.json", ["x" * TEN_MB])
    with pytest.raises(vsite.RootError) as caught:
        vsite.activate(manifest)
    assert caught.value.pointer == "/roots/0"
    assert "File name too long" in caught.value.message
    line = assert_one_line_error(run([*VSITE, "run", str(manifest), "-c", "pass"]))
    assert "/roots/0" in line


def test_twenty_thousand_missing_roots_give_a_short_error_listing_the_count(
    tmp_path: Path, sys_state: SysState
) -> None:
    count = 20_000
    manifest = write_manifest(tmp_path / "manifest.json", [f"gone/{n}" for n in range(count)])
    with pytest.raises(vsite.RootError) as caught:
        vsite.activate(manifest)
    error = caught.value
    assert len(error.problems) == count  # every problem is kept...
    assert error.pointer == "/roots/0"
    text = str(error)  # ...the text lists the first ones and counts the rest
    assert len(text.splitlines()) == 1 + SHOWN_PROBLEMS + 1
    assert text.endswith(f"... and {count - SHOWN_PROBLEMS} more")
    for command, args in cli_commands(manifest).items():
        result = run(args, cwd=tmp_path)
        if command == "check":
            assert result.returncode == 1
            assert result.stdout.count("root does not exist") == count  # the full report
            continue
        line = assert_one_line_error(result)
        assert f"{count} roots cannot be used" in line
        assert len(line) < 10_000, command


def test_manifest_path_with_a_nul_or_a_lone_surrogate_is_a_manifest_error(
    sys_state: SysState,
) -> None:
    for path in ("rel\0manifest.json", "rel\ud800manifest.json"):
        with pytest.raises(vsite.ManifestError, match="cannot read manifest"):
            vsite.activate(path)


def test_unreadable_manifest_file_names_the_reason(shared_tmp: Path) -> None:
    manifest = write_manifest(shared_tmp / "manifest.json", [shared_tmp])
    os.chmod(manifest, 0)

    def attempt() -> str:
        with pytest.raises(vsite.ManifestError) as caught:
            vsite.activate(manifest)
        return str(caught.value)

    warm_imports()
    # Permissions never deny root: as root, the attempt runs as another user.
    text = attempt() if os.geteuid() != 0 else as_other_user(attempt)
    assert text == f"{manifest}: cannot read manifest: Permission denied"
