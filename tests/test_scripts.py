"""Console scripts of the site: ``vsite exec M -- NAME`` and the environment's ``bin/NAME``.

The environment shell holds a launcher per entry point of the site (the first
distribution in site order that declares NAME wins it), first on PATH under ``vsite
exec`` as an activated venv's ``bin/`` is: it runs with ``sys.argv[0]`` its own path and
its return value is the exit status, as a wheel installer's generated script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import make_root, write_manifest, write_tree
from tests.children import child_env
from vsite.index import SiteIndex, build_index
from vsite.manifest import Manifest
from vsite.tools.scripts import Script, console_scripts, interpreter

VSITE = [sys.executable, "-m", "vsite"]
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
NAME = "vsite-test-tool"  # no such executable anywhere on PATH

TOOL = """\
import json, os, sys

def main():
    print(json.dumps({"argv": sys.argv, "pid": os.getpid(), "prefix": sys.prefix,
                      "base_prefix": sys.base_prefix, "path": sys.path,
                      "executable": sys.executable}))
    return int(os.environ.get("TOOL_EXIT", "0"))

def returns_none():
    return None

def returns_text():
    return "tool failed: bad input"

def raises():
    raise LookupError("no such thing")

def spawns():
    import subprocess
    return subprocess.run([sys.executable, "-c", "import tool; print(tool.__file__)"]).returncode

def imports_from_cwd():
    import shadow

class Commands:
    @staticmethod
    def nested():
        print("nested", sys.argv[1:])
"""

SCRIPTS = {
    NAME: "tool:main",
    f"{NAME}-none": "tool:returns_none",
    f"{NAME}-text": "tool:returns_text",
    f"{NAME}-raises": "tool:raises",
    f"{NAME}-spawns": "tool:spawns",
    f"{NAME}-cwd": "tool:imports_from_cwd",
    f"{NAME}-nested": "tool:Commands.nested [cli]",
}


def vsite_exec(
    manifest: Path, *command: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VSITE, "exec", os.fspath(manifest), "--", *command],
        capture_output=True,
        text=True,
        env=child_env(**extra),
        cwd=cwd,
        check=False,
        timeout=120,
    )


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    roots = tmp_path / "roots"
    tool = make_root(
        roots,
        "tool",
        {"tool.py": TOOL},
        entry_points={"console_scripts": SCRIPTS, "gui_scripts": {f"{NAME}-gui": "tool:main"}},
    )
    return write_manifest(tmp_path / "manifest.json", [tool])


def index_of(tmp_path: Path, *roots: Path) -> SiteIndex:
    return build_index(Manifest.load(write_manifest(tmp_path / "m.json", list(roots))))


# -- finding the entry points -----------------------------------------------------------


def scripts_of(index: SiteIndex) -> list[tuple[str, str, str]]:
    return [(script.name, script.value, script.group) for script in console_scripts(index)]


def test_distributions_come_in_site_order_so_the_first_declaration_wins(tmp_path: Path) -> None:
    first = make_root(tmp_path, "b-first", entry_points={"console_scripts": {"tool": "b:main"}})
    second = make_root(tmp_path, "a-second", entry_points={"console_scripts": {"tool": "a:main"}})
    assert scripts_of(index_of(tmp_path, first, second)) == [
        ("tool", "b:main", "console_scripts"),
        ("tool", "a:main", "console_scripts"),
    ]


def test_gui_scripts_are_listed_too(tmp_path: Path) -> None:
    root = make_root(tmp_path, "gui", entry_points={"gui_scripts": {"viewer": "gui:main"}})
    assert scripts_of(index_of(tmp_path, root)) == [("viewer", "gui:main", "gui_scripts")]


def test_script_names_keep_their_case(tmp_path: Path) -> None:
    root = make_root(tmp_path, "tool", entry_points={"console_scripts": {"Tool": "t:main"}})
    assert [name for name, _, _ in scripts_of(index_of(tmp_path, root))] == ["Tool"]


def test_scripts_of_a_dropped_root_are_not_listed(tmp_path: Path) -> None:
    kept = make_root(tmp_path, "one", dist="tool", version="1")
    dropped = make_root(
        tmp_path, "two", dist="tool", version="2", entry_points={"console_scripts": {"t2": "x:y"}}
    )
    assert scripts_of(index_of(tmp_path, kept, dropped)) == []


def test_unreadable_entry_points_and_references_without_a_callable_are_skipped(
    tmp_path: Path,
) -> None:
    broken = make_root(tmp_path, "broken")
    (broken / "broken-1.0.dist-info" / "entry_points.txt").write_bytes(b"[console_scripts\n\xff")
    good = make_root(
        tmp_path, "good", entry_points={"console_scripts": {"tool": "g:main", "bare": "g"}}
    )
    assert scripts_of(index_of(tmp_path, broken, good)) == [("tool", "g:main", "console_scripts")]


@pytest.mark.parametrize(
    ("value", "module", "attr"),
    [
        ("mod:func", "mod", "func"),
        ("mod:Class.method", "mod", "Class.method"),
        ("mod:func [extra1, extra2]", "mod", "func"),
        ("mod : func", "mod", "func"),
    ],
)
def test_the_reference_splits_into_module_and_attribute_path(
    value: str, module: str, attr: str
) -> None:
    script = Script("tool", value, "console_scripts")
    assert (script.module, script.attr) == (module, attr)


# -- running it through vsite exec --------------------------------------------------------


def test_console_script_runs_as_its_launcher_in_the_environment(manifest: Path) -> None:
    result = vsite_exec(manifest, NAME, "a", "--flag", "-c", "x")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    launcher = Path(seen["argv"][0])
    assert (launcher.name, launcher.parent) == (NAME, Path(seen["prefix"]) / "bin")
    assert seen["argv"][1:] == ["a", "--flag", "-c", "x"]


@pytest.mark.parametrize("code", [0, 1, 4, 255])
def test_exit_status_is_the_functions_return_value(manifest: Path, code: int) -> None:
    assert vsite_exec(manifest, NAME, TOOL_EXIT=str(code)).returncode == code


def test_none_returned_is_exit_0(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-none")
    assert (result.returncode, result.stderr) == (0, "")


def test_text_returned_is_printed_and_exit_1(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-text")
    assert (result.returncode, result.stderr) == (1, "tool failed: bad input\n")


def test_uncaught_exception_prints_a_traceback_and_exits_1(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-raises")
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.endswith("LookupError: no such thing\n")


def test_dotted_attribute_and_extras(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-nested", "x")
    assert (result.returncode, result.stdout) == (0, "nested ['x']\n")


def test_gui_script_runs_too(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-gui", "y")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["argv"][1:] == ["y"]


def test_the_sites_script_wins_over_an_executable_on_path_as_in_an_activated_venv(
    manifest: Path, tmp_path: Path
) -> None:
    bin_dir = write_tree(tmp_path / "bin", {NAME: '#!/bin/sh\necho from PATH "$@"\n'})
    (bin_dir / NAME).chmod(0o755)
    path = os.pathsep.join([os.fspath(bin_dir), os.environ.get("PATH", os.defpath)])
    result = vsite_exec(manifest, NAME, "z", PATH=path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["argv"][1:] == ["z"]
    other = vsite_exec(manifest, "sh", "-c", f"command -v {NAME}", PATH=path)
    assert Path(other.stdout.strip()).parent.name == "bin"
    assert Path(other.stdout.strip()).parent != bin_dir


def test_a_name_with_a_slash_is_never_a_console_script(manifest: Path) -> None:
    result = vsite_exec(manifest, f"./{NAME}")
    assert result.returncode == 127
    assert f"cannot run './{NAME}'" in result.stderr


def test_a_name_no_distribution_declares_exits_127(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-undeclared")
    assert result.returncode == 127


def test_the_console_script_replaces_the_vsite_process(manifest: Path) -> None:
    with subprocess.Popen(
        [*VSITE, "exec", os.fspath(manifest), "--", NAME],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    ) as process:
        out, _ = process.communicate(timeout=60)
    assert json.loads(out)["pid"] == process.pid


def test_processes_the_script_starts_see_the_site(manifest: Path) -> None:
    result = vsite_exec(manifest, f"{NAME}-spawns")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == os.fspath(manifest.parent / "roots" / "tool" / "tool.py")


def test_current_directory_is_not_on_the_scripts_path(manifest: Path, tmp_path: Path) -> None:
    cwd = write_tree(tmp_path / "cwd", {"shadow.py": ""})
    result = vsite_exec(manifest, f"{NAME}-cwd", cwd=cwd)
    assert result.returncode == 1
    assert "No module named 'shadow'" in result.stderr


def test_script_runs_in_the_environment_not_in_vsites_own(manifest: Path) -> None:
    seen = json.loads(vsite_exec(manifest, NAME).stdout)
    assert seen["prefix"] != seen["base_prefix"]
    assert os.path.realpath(seen["base_prefix"]) == os.path.realpath(sys.base_prefix)
    assert seen["executable"] == os.path.join(seen["prefix"], "bin", f"python{VERSION}")
    if sys.prefix != sys.base_prefix:
        venv = os.path.join(os.path.realpath(sys.prefix), "")
        assert [p for p in seen["path"] if os.path.realpath(p).startswith(venv)] == []


# -- the interpreter it runs on ----------------------------------------------------------


def test_interpreter_outside_a_venv_is_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    assert interpreter() == sys.executable


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="vsite is not installed in a venv")
def test_interpreter_in_a_venv_is_its_base_of_the_same_version() -> None:
    python = interpreter()
    assert not os.path.abspath(python).startswith(os.path.join(sys.prefix, ""))
    code = "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.prefix]))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    version, prefix = json.loads(out.stdout)
    assert version == list(sys.version_info[:3])
    assert os.path.realpath(prefix) == os.path.realpath(sys.base_prefix)


def test_interpreter_falls_back_to_pyvenv_cfg_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before 3.11, sys._base_executable in a venv is the venv's own python.
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    home = write_tree(tmp_path / "base" / "bin", {f"python{version}": ""})
    (home / f"python{version}").chmod(0o755)
    venv = write_tree(tmp_path / "venv", {"pyvenv.cfg": f"home = {home}\n", "bin": {}})
    monkeypatch.setattr(sys, "prefix", os.fspath(venv))
    monkeypatch.setattr(sys, "base_prefix", os.fspath(tmp_path / "elsewhere"))
    monkeypatch.setattr(sys, "_base_executable", os.fspath(venv / "bin" / "python"), raising=False)
    assert interpreter() == os.fspath(home / f"python{version}")


def test_interpreter_without_any_base_is_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", os.fspath(tmp_path / "venv"))
    monkeypatch.setattr(sys, "base_prefix", os.fspath(tmp_path / "gone"))
    monkeypatch.setattr(sys, "_base_executable", "", raising=False)
    assert interpreter() == sys.executable
