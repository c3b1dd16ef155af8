"""``vsite run MANIFEST [-m MODULE | -c CODE | - | SCRIPT] [ARGS]``: in-process, like python.

Each case runs twice from the same directory: ``python ARGS`` and
``python -m vsite run MANIFEST ARGS``; ``sys.argv``, ``sys.path[0]``, ``__main__``,
exit status and stderr must come out the same.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.builders import make_root, write_manifest, write_tree
from tests.children import child_env

VSITE = [sys.executable, "-m", "vsite"]

# What python set up for the code that is running: JSON on the last stdout line.
PROBE = """\
import json, sys
_g = globals()
_main = sys.modules["__main__"]
print(json.dumps({
    "argv": sys.argv,
    "path0": sys.path[0],
    "keys": sorted(k for k in _g if k.startswith("__")),
    "name": _g.get("__name__"),
    "file": _g.get("__file__", "<absent>"),
    "package": _g.get("__package__", "<absent>"),
    "spec": getattr(_g.get("__spec__"), "name", None),
    "loader": type(_g.get("__loader__")).__name__,
    "cached": _g.get("__cached__", "<absent>"),
    "builtins": type(_g.get("__builtins__")).__name__,
    "doc": _g.get("__doc__"),
    "main_is_this_module": _main.__dict__ is _g,
}))
"""


def run(
    command: list[str], cwd: Path, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(**extra),
        input=stdin,
        check=False,
        timeout=120,
    )


def python(
    args: list[str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, *args], cwd, stdin)


def vsite_run(
    manifest: Path, args: list[str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([*VSITE, "run", os.fspath(manifest), *args], cwd, stdin)


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "roots", "alpha", {"alpha": {"__init__.py": "VALUE = 1\n"}})
    return write_manifest(tmp_path / "manifest.json", [root])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The directory both runs start in, holding programs in every form python runs."""
    work = write_tree(
        tmp_path / "work",
        {
            "prog.py": PROBE,
            "sub": {"prog.py": PROBE},
            "pkg": {"__init__.py": "", "mod.py": PROBE, "__main__.py": PROBE},
            "app": {"__main__.py": PROBE},
        },
    )
    elsewhere = write_tree(tmp_path / "elsewhere", {"real.py": PROBE})
    (work / "link.py").symlink_to(elsewhere / "real.py")
    with zipfile.ZipFile(work / "app.zip", "w") as archive:
        archive.writestr("__main__.py", PROBE)
    return work


CASES = {
    "script": ["prog.py", "a", "-b"],
    "script-in-subdir": ["sub/prog.py", "a"],
    "symlinked-script": ["link.py"],
    "absolute-script": ["<work>/prog.py", "x"],
    "module": ["-m", "pkg.mod", "a", "-m"],
    "package": ["-m", "pkg", "a"],
    "code": ["-c", PROBE, "a", "-c"],
    "directory": ["app", "a"],
    "zip": ["app.zip", "a"],
}


@pytest.mark.parametrize("args", list(CASES.values()), ids=list(CASES))
def test_argv_path0_and_main_are_set_as_python_sets_them(
    manifest: Path, work: Path, args: list[str]
) -> None:
    args = [arg.replace("<work>", os.fspath(work)) for arg in args]
    expected = last_json(python(args, work))
    assert last_json(vsite_run(manifest, args, work)) == expected


def test_stdin_program_is_run_as_python_runs_it(manifest: Path, work: Path) -> None:
    expected = last_json(python(["-", "a"], work, stdin=PROBE))
    assert last_json(vsite_run(manifest, ["-", "a"], work, stdin=PROBE)) == expected


@pytest.mark.skipif(sys.version_info < (3, 11), reason="-P (safe_path) is new in 3.11")
@pytest.mark.parametrize("args", [["prog.py"], ["-m", "pkg.mod"], ["-c", PROBE], ["app"]])
def test_safe_path_adds_no_path0_as_in_python(manifest: Path, work: Path, args: list[str]) -> None:
    # -m pkg.mod fails both ways: the current directory is not on sys.path.
    expected = run([sys.executable, "-P", *args], work)
    seen = run([sys.executable, "-P", "-m", "vsite", "run", str(manifest), *args], work)
    assert (seen.returncode, seen.stdout, seen.stderr) == (
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )


def test_through_the_vsite_console_script(manifest: Path, work: Path) -> None:
    script = shutil.which("vsite", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("no vsite console script next to this interpreter")
    expected = last_json(python(["prog.py", "a"], work))
    assert last_json(run([script, "run", os.fspath(manifest), "prog.py", "a"], work)) == expected


# -- the program sees the site ---------------------------------------------------------


@pytest.mark.parametrize("args", [["-c", "import alpha; print(alpha.VALUE)"], ["uses.py"]])
def test_program_imports_from_the_site(manifest: Path, work: Path, args: list[str]) -> None:
    write_tree(work, {"uses.py": "import alpha; print(alpha.VALUE)\n"})
    assert vsite_run(manifest, args, work).stdout == "1\n"
    without = python(args, work)
    assert without.returncode == 1
    assert "No module named 'alpha'" in without.stderr


def test_pth_entries_inserted_at_0_stay_behind_the_programs_path0(
    tmp_path: Path, work: Path
) -> None:
    # site runs .pth files before python inserts sys.path[0]; compare with a flat site.
    marker = write_tree(tmp_path / "marker", {})
    pth = f"import sys; sys.path.insert(0, {os.fspath(marker)!r})\n"
    root = make_root(tmp_path / "roots", "early", {"early.pth": pth})
    manifest = write_manifest(tmp_path / "manifest.json", [root])
    flat = tmp_path / "flat"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    base = os.path.join(sys.base_prefix, "bin", f"python{version}")
    base = base if os.access(base, os.X_OK) else sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", os.fspath(flat)], check=True)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [flat / "bin" / "python", "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.copytree(root, purelib, dirs_exist_ok=True)
    show = "import json, sys; print(json.dumps(sys.path[:2]))"
    expected = last_json(run([os.fspath(flat / "bin" / "python"), "-c", show], work))
    assert expected == ["", os.fspath(marker)]
    assert last_json(vsite_run(manifest, ["-c", show], work)) == expected


def test_python_children_of_the_program_see_the_same_site(manifest: Path, work: Path) -> None:
    program = """\
import multiprocessing, subprocess, sys

def value():
    import alpha
    return alpha.VALUE

if __name__ == "__main__":
    subprocess.run([sys.executable, "-c", "import alpha; print(alpha.VALUE)"], check=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(pool.apply(value))
"""
    write_tree(work, {"children.py": program})
    result = vsite_run(manifest, ["children.py"], work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n1\n"


# -- __future__, exit codes, exceptions ---------------------------------------------------

ANNOTATIONS = "def f(x: int): pass\nprint(f.__annotations__)\n"


@pytest.mark.parametrize("how", ["code", "script"])
def test_vsites_own_future_imports_do_not_leak_into_the_program(
    manifest: Path, work: Path, how: str
) -> None:
    write_tree(work, {"annotated.py": ANNOTATIONS})
    args = ["-c", ANNOTATIONS] if how == "code" else ["annotated.py"]
    expected = python(args, work)
    assert expected.stdout == "{'x': <class 'int'>}\n"
    assert vsite_run(manifest, args, work).stdout == expected.stdout


BODIES = {
    "falls-off-the-end": "pass",
    "exit-3": "import sys; sys.exit(3)",
    "exit-none": "import sys; sys.exit()",
    "exit-message": "import sys; sys.exit('goodbye')",
    "exit-true": "raise SystemExit(True)",
    "exception": "def f():\n    raise ValueError('boom')\nf()",
    "exception-chain": "try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e",
    "syntax-error": "def (:",
    "custom-excepthook": (
        "import sys\nsys.excepthook = lambda t, v, tb: print('hooked', t.__name__, v)\n"
        "raise RuntimeError('x')"
    ),
    "atexit": "import atexit; atexit.register(print, 'at exit'); print('body')",
    "main-after-the-program": (
        "import atexit, sys\natexit.register(lambda: print(sorted(vars(sys.modules['__main__']))))"
    ),
    "keyboard-interrupt": "raise KeyboardInterrupt",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
@pytest.mark.parametrize("how", ["code", "script", "module"])
def test_exit_status_and_error_output_are_pythons(
    manifest: Path, work: Path, body: str, how: str
) -> None:
    write_tree(work, {"body.py": body + "\n"})
    args = {"code": ["-c", body], "script": ["body.py"], "module": ["-m", "body"]}[how]
    expected = python(args, work)
    result = vsite_run(manifest, args, work)
    assert (result.returncode, result.stdout, result.stderr) == (
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )
    if body == "raise KeyboardInterrupt":
        assert result.returncode == -signal.SIGINT  # dies by the signal, as python does


def test_missing_module_is_reported_as_python_reports_it(manifest: Path, work: Path) -> None:
    expected = python(["-m", "no_such_module"], work)
    result = vsite_run(manifest, ["-m", "no_such_module"], work)
    assert (result.returncode, result.stderr) == (expected.returncode, expected.stderr)
    assert result.returncode == 1


def test_directory_without_main_is_reported_as_python_reports_it(
    manifest: Path, work: Path
) -> None:
    write_tree(work, {"empty": {"x.py": ""}})
    expected = python(["empty"], work)
    result = vsite_run(manifest, ["empty"], work)
    assert (result.returncode, result.stderr) == (expected.returncode, expected.stderr)


def test_missing_script_exits_2_with_one_line(manifest: Path, work: Path) -> None:
    result = vsite_run(manifest, ["nope.py"], work)
    assert result.returncode == 2
    assert result.stderr == (
        f"vsite: error: can't open file {os.fspath(work / 'nope.py')!r}: "
        "[Errno 2] No such file or directory\n"
    )


# -- bad input -------------------------------------------------------------------------


def test_bad_manifest_exits_2_with_one_line(tmp_path: Path, work: Path) -> None:
    manifest = write_manifest(tmp_path / "bad.json", ["missing-a", "missing-b"])
    result = vsite_run(manifest, ["-c", "print('ran')"], work)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"vsite: error: {manifest}: 2 roots cannot be used")
    assert "/roots/0: root does not exist" in line
    assert "/roots/1: root does not exist" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "run needs -m MODULE, -c CODE, - or SCRIPT"),
        (["-m"], "-m needs an argument"),
        (["-c"], "-c needs an argument"),
        (["-u", "prog.py"], "unknown option '-u'"),
    ],
)
def test_usage_errors_exit_2(manifest: Path, work: Path, args: list[str], message: str) -> None:
    result = vsite_run(manifest, args, work)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"vsite: error: {message}")


def test_run_without_a_manifest_prints_usage_and_exits_2(work: Path) -> None:
    result = run([*VSITE, "run"], work)
    assert result.returncode == 2
    assert result.stdout.startswith("usage: vsite run MANIFEST")


def test_run_help_exits_0(work: Path) -> None:
    result = run([*VSITE, "run", "--help"], work)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: vsite run MANIFEST")
