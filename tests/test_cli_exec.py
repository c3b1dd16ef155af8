"""``vsite exec MANIFEST -- COMMAND``: every Python process below it sees the same site.

Real subprocesses throughout (``python -m vsite exec ...``). Most children run on a
*clean* interpreter: a pip-less venv of the base interpreter, whose own site-packages
is empty, so anything the child can import beyond the stdlib came through vsite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import vsite
from tests.builders import make_root, write_manifest, write_tree
from tests.children import child_env
from vsite._startup import BOOT_DIR, boot_pythonpath
from vsite.tools.launch import isolating_option as _isolating_option

VSITE = [sys.executable, "-m", "vsite"]

# What a child reports about the site it sees: JSON on stdout.
PROBE = """\
import importlib.metadata, json, os, sys
import alpha, ns.one, ns.two
import vsite.activation
handle = vsite.activation.active()
print(json.dumps({
    "alpha": alpha.__file__,
    "ns": list(ns.__path__),
    "dists": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()),
    "site": handle.site_path if handle else None,
    "site_index": sys.path.index(handle.site_path) if handle else None,
    "manifest": handle.manifest.source if handle else None,
}))
"""


def vsite_exec(
    manifest: Path | str, *command: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VSITE, "exec", os.fspath(manifest), "--", *command],
        capture_output=True,
        text=True,
        env=env or child_env(),
        cwd=cwd,
        check=False,
        timeout=120,
    )


def base_python() -> str:
    """The interpreter this one's venv (if any) was made from."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidate = os.path.join(sys.base_prefix, "bin", f"python{version}")
    return candidate if os.access(candidate, os.X_OK) else sys.executable


def make_clean_python(where: Path) -> str:
    """A venv without pip of the base interpreter: nothing in its own site-packages."""
    subprocess.run([base_python(), "-m", "venv", "--without-pip", os.fspath(where)], check=True)
    return os.fspath(where / "bin" / "python")


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_clean_python(tmp_path_factory.mktemp("clean") / "venv")


@pytest.fixture
def site_manifest(tmp_path: Path) -> Path:
    """alpha (a package) and a PEP 420 namespace ``ns`` split over two roots."""
    roots = tmp_path / "roots"
    make_root(roots, "alpha", {"alpha": {"__init__.py": "VALUE = 1\n"}})
    make_root(roots, "ns-one", {"ns": {"one.py": ""}})
    make_root(roots, "ns-two", {"ns": {"two.py": ""}})
    return write_manifest(
        tmp_path / "manifest.json",
        [roots / "alpha", roots / "ns-one", roots / "ns-two"],
    )


def probe_output(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_script(tmp_path: Path, source: str) -> Path:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return script


# -- the site in every process ---------------------------------------------------------


def test_child_python_sees_the_site(site_manifest: Path, clean_python: str) -> None:
    seen = probe_output(vsite_exec(site_manifest, clean_python, "-c", PROBE))
    roots = site_manifest.parent / "roots"
    assert seen["alpha"] == os.fspath(roots / "alpha" / "alpha" / "__init__.py")
    assert seen["ns"] == [os.fspath(roots / "ns-one" / "ns"), os.fspath(roots / "ns-two" / "ns")]
    assert seen["dists"] == ["alpha", "ns-one", "ns-two"]
    assert seen["manifest"] == os.fspath(site_manifest)


def test_without_vsite_the_child_sees_none_of_it(site_manifest: Path, clean_python: str) -> None:
    # The contrast for the test above: the roots are importable through vsite only.
    result = subprocess.run(
        [clean_python, "-c", "import alpha"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "No module named 'alpha'" in result.stderr


def test_subprocess_of_the_child_sees_the_same_site(
    site_manifest: Path, clean_python: str, tmp_path: Path
) -> None:
    script = write_script(
        tmp_path,
        f"""\
        import subprocess, sys
        probe = {PROBE!r}
        exec(probe)
        sys.stdout.flush()
        subprocess.run([sys.executable, "-c", probe], check=True)
        """,
    )
    result = vsite_exec(site_manifest, clean_python, os.fspath(script))
    assert result.returncode == 0, result.stderr
    parent, child = (json.loads(line) for line in result.stdout.splitlines())
    assert child == parent
    assert parent["dists"] == ["alpha", "ns-one", "ns-two"]


MULTIPROCESSING = """\
import json, multiprocessing, sys
from concurrent.futures import ProcessPoolExecutor

def report():
    import io, contextlib
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(PROBE, {{}})
    return out.getvalue()

PROBE = {probe!r}

if __name__ == "__main__":
    method, how = sys.argv[1:3]
    context = multiprocessing.get_context(None if method == "default" else method)
    if how == "pool":
        with context.Pool(1) as pool:
            child = pool.apply(report)
    else:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
            child = executor.submit(report).result()
    print(json.dumps({{"parent": json.loads(report()), "child": json.loads(child),
                      "method": context.get_start_method()}}))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver", "default"])
@pytest.mark.parametrize("how", ["pool", "executor"])
def test_multiprocessing_workers_see_the_same_site(
    site_manifest: Path, clean_python: str, tmp_path: Path, method: str, how: str
) -> None:
    script = write_script(tmp_path, MULTIPROCESSING.format(probe=PROBE))
    seen = probe_output(vsite_exec(site_manifest, clean_python, os.fspath(script), method, how))
    if method != "default":
        assert seen["method"] == method
    assert seen["child"] == seen["parent"]
    assert seen["child"]["dists"] == ["alpha", "ns-one", "ns-two"]


# -- nothing of vsite's own environment --------------------------------------------------

ENVIRONMENT_PROBE = """\
import importlib.metadata, importlib.util, json, sys
import vsite
print(json.dumps({
    "importable": [n for n in ("pytest", "hypothesis", "packaging", "_pytest", "pluggy")
                   if importlib.util.find_spec(n) is not None],
    "dists": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()),
    "vsite": vsite.__file__,
    "path": sys.path,
    "prefix": sys.prefix,
}))
"""


def test_only_vsite_itself_comes_from_vsites_environment(
    site_manifest: Path, clean_python: str
) -> None:
    # vsite's environment (this test process) has them all ...
    import importlib.util

    assert all(importlib.util.find_spec(name) for name in ("pytest", "hypothesis", "packaging"))
    seen = probe_output(vsite_exec(site_manifest, clean_python, "-c", ENVIRONMENT_PROBE))
    # ... a clean child sees none of them, nor their metadata, only the site's.
    assert seen["importable"] == []
    assert seen["dists"] == ["alpha", "ns-one", "ns-two"]
    # vsite itself is importable (it booted the child), from this very checkout,
    # without the directory it is installed in being on sys.path.
    assert os.path.realpath(seen["vsite"]) == os.path.realpath(vsite.__file__)
    installed_in = os.path.dirname(os.path.dirname(os.path.realpath(vsite.__file__)))
    assert installed_in not in [os.path.realpath(p) for p in seen["path"] if p]
    assert os.path.realpath(BOOT_DIR) not in [os.path.realpath(p) for p in seen["path"] if p]


LAUNCH = """\
import json, os, sys
from vsite.tools.launch import exec_environment
exec_environment(sys.argv[1], dict(os.environ))
print(json.dumps(["vsite.activation" in sys.modules, "vsite.errors" in sys.modules]))
"""


def test_a_launch_builds_a_missing_farm_and_loads_no_activation_or_errors_when_it_is_there(
    site_manifest: Path, tmp_path: Path
) -> None:
    # The first child of vsite exec finds its farm made (no cold build in the program's
    # process); once made, exec only looks for it, leaving the check to the child.
    from vsite._farm_lock import MARKER

    state = tmp_path / "state"
    env = child_env(VSITE_DIR=os.fspath(state))

    def launch() -> tuple[bool, bool, int]:
        probe = [sys.executable, "-c", LAUNCH, os.fspath(site_manifest)]
        result = subprocess.run(probe, capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 0, result.stderr
        activation, errors = json.loads(result.stdout)
        farms = [f for f in (state / "farms").iterdir() if (f / MARKER).is_file()]
        return activation, errors, len(farms)

    assert launch()[::2] == (True, 1)  # built before the command: the activation loaded
    assert launch() == (False, False, 1)  # nothing raised, nothing to load errors for
    for farm in (state / "farms").iterdir():
        shutil.rmtree(farm)
    assert launch()[::2] == (True, 1)


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="vsite is not installed in a venv")
def test_child_interpreters_own_site_stays_visible(site_manifest: Path) -> None:
    # The child is whatever COMMAND names: run on vsite's own venv interpreter, that
    # venv is the child's own site, so its packages are there after the virtual site.
    seen = probe_output(vsite_exec(site_manifest, sys.executable, "-c", ENVIRONMENT_PROBE))
    assert "pytest" in seen["importable"]
    assert seen["prefix"] == sys.prefix
    assert {"alpha", "ns-one", "ns-two"} <= set(seen["dists"])


# -- exit codes, signals, process identity ----------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 3, 77, 255])
def test_exit_code_of_a_python_child_passes_through(
    site_manifest: Path, clean_python: str, code: int
) -> None:
    result = vsite_exec(site_manifest, clean_python, "-c", f"import sys; sys.exit({code})")
    assert result.returncode == code


def test_exit_code_of_a_non_python_command_passes_through(site_manifest: Path) -> None:
    result = vsite_exec(site_manifest, "sh", "-c", 'echo "$VSITE_MANIFEST"; exit 42')
    assert result.returncode == 42
    assert result.stdout.strip() == os.fspath(site_manifest)


def test_exec_replaces_the_vsite_process(site_manifest: Path, clean_python: str) -> None:
    code = "import os; print(os.getpid(), os.getppid())"
    with subprocess.Popen(
        [*VSITE, "exec", os.fspath(site_manifest), "--", clean_python, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    ) as process:
        out, _ = process.communicate(timeout=60)
    pid, ppid = map(int, out.split())
    assert pid == process.pid  # no vsite process stays in between
    assert ppid == os.getpid()


# The child says it is ready only once the site is active; it then waits for a signal.
WAIT_FOR_SIGNAL = """\
import signal, sys, time
import alpha
# A test runner may start us with SIGINT ignored; python then installs no handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
print("ready", flush=True)
time.sleep(60)
sys.exit(0)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_reach_the_command_and_its_death_passes_through(
    site_manifest: Path, clean_python: str, signum: int
) -> None:
    with subprocess.Popen(
        [*VSITE, "exec", os.fspath(site_manifest), "--", clean_python, "-c", WAIT_FOR_SIGNAL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    # Killed by the signal (python re-raises SIGINT after an uncaught KeyboardInterrupt).
    assert process.returncode == -signum, err
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in err


# -- children outside the site ------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "reason"),
    [
        ("-I", "isolated mode ignores PYTHONPATH"),
        ("-E", "ignores PYTHON* environment variables"),
        ("-S", "does not import site"),
    ],
)
def test_python_that_skips_the_boot_hook_gets_a_warning_and_no_site(
    site_manifest: Path, clean_python: str, flag: str, reason: str
) -> None:
    result = vsite_exec(site_manifest, clean_python, flag, "-c", "import alpha")
    warning = result.stderr.splitlines()[0]
    assert warning.startswith(f"vsite: warning: {clean_python} {flag} {reason}")
    # As documented: that child is outside the site.
    assert result.returncode == 1
    assert "No module named 'alpha'" in result.stderr


def test_no_warning_for_a_python_that_runs_the_boot_hook(
    site_manifest: Path, clean_python: str
) -> None:
    result = vsite_exec(site_manifest, clean_python, "-W", "ignore", "-c", "import alpha", "-I")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["python", "-I", "x.py"], "I"),
        (["/usr/bin/python3.11", "-E", "-c", "pass"], "E"),
        (["python3", "-bS"], "S"),
        (["python", "-Wignore", "-s", "-I"], "I"),
        (["python", "-W", "ignore", "-S"], "S"),
        (["python", "-X", "importtime", "-E"], "E"),
        (["python", "--check-hash-based-pycs", "never", "-I"], "I"),
        (["python", "-u", "-Ic", "pass"], "I"),
        (["python", "-c", "pass", "-I"], None),
        (["python", "-cI"], None),
        (["python", "-mSimpleHTTPServer"], None),
        (["python", "-m", "x", "-S"], None),
        (["python", "script.py", "-I"], None),
        (["python", "-", "-I"], None),
        (["python", "-W", "-S"], None),  # -S is the value of -W here
        (["python", "-X", "-I"], None),
        (["sh", "-I"], None),
        (["mypython", "-I"], None),
    ],
)
def test_isolating_options_are_recognised_where_python_reads_them(
    command: list[str], flag: str | None
) -> None:
    assert _isolating_option(command) == flag


# -- sitecustomize: chained, as the flat site would run it --------------------------------

MARK = "import builtins; builtins.__dict__.setdefault('SITECUSTOMIZE', []).append({tag!r})\n"
REPORT = "import builtins, json; print(json.dumps(getattr(builtins, 'SITECUSTOMIZE', [])))"


def flat_python(tmp_path: Path, roots: list[Path]) -> str:
    """A clean venv with the roots' files copied into its site-packages: the flat site."""
    python = make_clean_python(tmp_path / "flat")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    for root in roots:
        shutil.copytree(root, purelib.stdout.strip(), dirs_exist_ok=True)
    return python


@pytest.mark.parametrize(
    ("on_pythonpath", "in_root"),
    [(True, False), (False, True), (True, True)],
    ids=["pythonpath", "root", "both"],
)
def test_existing_sitecustomize_runs_as_in_the_flat_site(
    tmp_path: Path, clean_python: str, on_pythonpath: bool, in_root: bool
) -> None:
    roots = tmp_path / "roots"
    tree = {"sitecustomize.py": MARK.format(tag="root")} if in_root else {}
    root = make_root(roots, "alpha", {"alpha": {"__init__.py": ""}, **tree})
    manifest = write_manifest(tmp_path / "manifest.json", [root])
    user = write_tree(tmp_path / "user", {"sitecustomize.py": MARK.format(tag="pythonpath")})
    env = child_env(PYTHONPATH=os.fspath(user)) if on_pythonpath else child_env()

    through_vsite = vsite_exec(manifest, clean_python, "-c", REPORT, env=env)
    flat = subprocess.run(
        [flat_python(tmp_path, [root]), "-c", REPORT],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert through_vsite.returncode == 0, through_vsite.stderr
    assert json.loads(through_vsite.stdout) == json.loads(flat.stdout)
    assert json.loads(flat.stdout) == ["pythonpath" if on_pythonpath else "root"]


def test_chained_sitecustomize_runs_with_the_site_already_active(
    site_manifest: Path, clean_python: str, tmp_path: Path
) -> None:
    # site runs sitecustomize after site-packages is on sys.path; so must the chain.
    user = write_tree(
        tmp_path / "user",
        {"sitecustomize.py": "import alpha, builtins; builtins.SEEN = alpha.__file__\n"},
    )
    result = vsite_exec(
        site_manifest,
        clean_python,
        "-c",
        "import builtins; print(builtins.SEEN)",
        env=child_env(PYTHONPATH=os.fspath(user)),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(os.path.join("alpha", "alpha", "__init__.py"))


def test_interpreters_own_sitecustomize_still_runs(site_manifest: Path, tmp_path: Path) -> None:
    python = make_clean_python(tmp_path / "own")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    write_tree(purelib.stdout.strip(), {"sitecustomize.py": MARK.format(tag="interpreter")})
    result = vsite_exec(site_manifest, python, "-c", "import alpha; " + REPORT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["interpreter"]


def test_error_in_chained_sitecustomize_is_reported_as_site_reports_it(
    site_manifest: Path, clean_python: str, tmp_path: Path
) -> None:
    # Broken only where a manifest is set: vsite's own process reads PYTHONPATH too.
    broken = "import os\nif os.environ.get('VSITE_MANIFEST'):\n    raise ValueError('broken')\n"
    user = write_tree(tmp_path / "user", {"sitecustomize.py": broken})
    env = child_env(PYTHONPATH=os.fspath(user))
    result = vsite_exec(site_manifest, clean_python, "-c", "import alpha; print('ran')", env=env)
    plain = subprocess.run(
        [clean_python, "-c", "print('ran')"],
        capture_output=True,
        text=True,
        env={**env, "VSITE_MANIFEST": os.fspath(site_manifest)},
        check=True,
    )
    assert "Error in sitecustomize" in plain.stderr
    assert result.stderr == plain.stderr
    assert result.returncode == 0
    assert result.stdout == "ran\n"  # and the site is still active


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read manifest"),
        ("{not json", "manifest is not valid JSON"),
        ('{"vsite": 2, "roots": [], "extra": 1}', "invalid manifest (3 problems)"),
        ('{"vsite": 1, "roots": ["missing"]}', "root does not exist"),
    ],
    ids=["missing-file", "bad-json", "three-problems", "missing-root"],
)
def test_bad_manifest_exits_2_with_one_line_and_runs_nothing(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    manifest = tmp_path / "manifest.json"
    if content is not None:
        manifest.write_text(content, encoding="utf-8")
    marker = tmp_path / "ran"
    result = vsite_exec(manifest, "touch", os.fspath(marker))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vsite: error: {manifest}: ")
    assert expected in lines[0]
    assert not marker.exists()


def test_every_problem_is_on_the_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"vsite": 2, "roots": [], "extra": 1}', encoding="utf-8")
    (line,) = vsite_exec(manifest, "true").stderr.splitlines()
    for problem in ("/extra: unknown key 'extra'", "/vsite: unsupported", "/roots: no roots"):
        assert problem in line


def test_unknown_command_exits_127(site_manifest: Path) -> None:
    result = vsite_exec(site_manifest, "no-such-command-vsite-test")
    assert result.returncode == 127
    assert result.stderr == (
        "vsite: error: cannot run 'no-such-command-vsite-test': No such file or directory\n"
    )


def test_command_that_cannot_be_executed_exits_126(site_manifest: Path, tmp_path: Path) -> None:
    not_executable = write_tree(tmp_path, {"tool": "#!/bin/sh\n"}) / "tool"
    result = vsite_exec(site_manifest, os.fspath(not_executable))
    assert result.returncode == 126
    assert result.stderr.startswith("vsite: error: cannot run ")


def test_missing_command_is_a_usage_error(site_manifest: Path) -> None:
    result = subprocess.run(
        [*VSITE, "exec", os.fspath(site_manifest)],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("vsite: error: exec needs a command")


# -- the environment it passes on -------------------------------------------------------


def test_pythonpath_keeps_the_users_entries_after_the_boot_directory(
    site_manifest: Path, clean_python: str, tmp_path: Path
) -> None:
    user = write_tree(tmp_path / "user", {"usermod.py": ""})
    code = "import os, sys, usermod; print(os.environ['PYTHONPATH']); print(sys.path[1])"
    env = child_env(PYTHONPATH=os.fspath(user))
    result = vsite_exec(site_manifest, clean_python, "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    pythonpath, path1 = result.stdout.splitlines()
    assert pythonpath == os.pathsep.join([BOOT_DIR, os.fspath(user)])
    assert path1 == os.fspath(user)  # the boot directory itself is gone from sys.path


def test_nested_exec_puts_the_boot_directory_on_pythonpath_once(
    site_manifest: Path, clean_python: str
) -> None:
    inner = [*VSITE, "exec", os.fspath(site_manifest), "--", clean_python, "-c"]
    code = "import os; print(os.environ['PYTHONPATH'])"
    result = vsite_exec(site_manifest, *inner, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == BOOT_DIR


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        (None, [BOOT_DIR]),
        ("", [BOOT_DIR]),
        ("/a", [BOOT_DIR, "/a"]),
        (f"{BOOT_DIR}:/a", [BOOT_DIR, "/a"]),
        (f"/a:{BOOT_DIR}:/b", [BOOT_DIR, "/a", "/b"]),
        (BOOT_DIR, [BOOT_DIR]),
    ],
)
def test_boot_pythonpath(previous: str | None, expected: list[str]) -> None:
    assert boot_pythonpath(previous) == os.pathsep.join(expected)


def test_manifest_path_is_absolute_for_children_in_other_directories(
    site_manifest: Path, clean_python: str
) -> None:
    code = (
        "import os, subprocess, sys; os.chdir('/'); "
        "subprocess.run([sys.executable, '-c', 'import alpha'], check=True)"
    )
    result = subprocess.run(
        [*VSITE, "exec", "manifest.json", "--", clean_python, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=site_manifest.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_venv_created_here_is_clean(clean_python: str) -> None:
    # The premise of the tests above: the clean child imports nothing but the stdlib.
    code = "import importlib.metadata as m; print(len(list(m.distributions())))"
    out = subprocess.run([clean_python, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
