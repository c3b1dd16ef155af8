"""The environment shell: a venv-shaped directory whose site-packages is the site.

``vsite env`` / ``vsite install -o DIR/manifest.json`` write it; ``vsite exec`` puts one
first on PATH. What is checked here is what a venv gives and roots on PYTHONPATH do not:
``sys.prefix`` and isolation from the interpreter's own site, a ``sys.executable`` that
keeps the site for children started with ``env={}``/``-E``/``-I``, launchers and data
files relative to the prefix, venvs made inside the site that see nothing of it, and
the roots registered as install locations for tools that classify code by location.
Real wheels (jupyter, coverage, pip) are in tests/environment/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest, write_tree
from tests.children import child_env
from tests.test_install import make_wheel
from vsite.tools.cli import main

VSITE = [sys.executable, "-m", "vsite"]
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
REPORT = (
    "import json, os, site, sys\n"
    "import probe\n"
    "print(json.dumps({'prefix': sys.prefix, 'base': sys.base_prefix, 'exe': sys.executable,"
    " 'path': sys.path, 'probe': probe.__file__, 'user_site': site.ENABLE_USER_SITE}))\n"
)


def run(*argv: str | os.PathLike[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.fspath(a) for a in argv],
        capture_output=True,
        text=True,
        env=child_env(**env),
        check=False,
        timeout=120,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A manifest in ``tmp/env/`` with a module ``probe`` and a console script."""
    roots = tmp_path / "roots"
    probe = make_root(
        roots,
        "probe",
        {"probe.py": "def main():\n    import sys\n    print('probe', sys.argv[1:])\n"},
        entry_points={"console_scripts": {"probe-tool": "probe:main"}},
    )
    return write_manifest(tmp_path / "env" / "manifest.json", [probe])


@pytest.fixture
def env(site: Path) -> Path:
    assert main(["env", os.fspath(site), "-o", os.fspath(site.parent)]) == 0
    return site.parent


def report(python: str | os.PathLike[str], *flags: str, **env: str) -> dict[str, object]:
    result = run(python, *flags, "-c", REPORT, **env)
    assert result.returncode == 0, result.stderr
    seen: dict[str, object] = json.loads(result.stdout)
    return seen


# -- the front door -------------------------------------------------------------------------


def test_the_shell_is_a_venv_whose_python_has_the_site(env: Path) -> None:
    seen = report(env / "bin" / "python")
    assert seen["prefix"] == os.fspath(env)
    assert seen["exe"] == os.fspath(env / "bin" / "python")
    assert seen["probe"] == os.fspath(env.parent / "roots" / "probe" / "probe.py")
    assert seen["user_site"] is False
    # The roots are the site's, not sys.path entries (site.main() adds what
    # getsitepackages() lists: the naive layout, if activation's extra entries leaked).
    roots = os.fspath(env.parent / "roots")
    assert [p for p in seen["path"] if p.startswith(roots)] == []  # type: ignore[attr-defined]
    site_packages = env / "lib" / f"python{VERSION}" / "site-packages"
    assert os.listdir(site_packages) == ["_vsite.pth"]  # no package file in it
    assert (
        "vsite-manifest = " + os.fspath(env / "manifest.json") in (env / "pyvenv.cfg").read_text()
    )


def test_the_interpreters_own_site_packages_and_the_user_site_stay_out(
    env: Path, tmp_path: Path
) -> None:
    user_base = tmp_path / "userbase"
    user_site = user_base / "lib" / f"python{VERSION}" / "site-packages"
    write_tree(user_site, {"probe.py": "raise SystemExit('the user site won')\n"})
    base_purelib = sysconfig.get_path("purelib", vars={"base": sys.base_prefix})
    seen = report(env / "bin" / "python", PYTHONUSERBASE=os.fspath(user_base))
    assert base_purelib not in seen["path"]  # type: ignore[operator]
    assert os.fspath(user_site) not in seen["path"]  # type: ignore[operator]
    # Control: the interpreter itself (no shell) runs its user site, so it would lose.
    control = run(
        sys.base_prefix + "/bin/python3", "-c", "import probe", PYTHONUSERBASE=os.fspath(user_base)
    )
    assert "the user site won" in control.stderr


def test_system_site_packages_keeps_them_after_the_site(site: Path) -> None:
    assert (
        main(["env", os.fspath(site), "-o", os.fspath(site.parent), "--system-site-packages"]) == 0
    )
    seen = report(site.parent / "bin" / "python")
    path: list[str] = seen["path"]  # type: ignore[assignment]
    base_purelib = sysconfig.get_path("purelib", vars={"base": sys.base_prefix})
    assert base_purelib in path
    ours = next(
        i
        for i, p in enumerate(path)
        if p.startswith(os.path.join(os.path.dirname(path[-1]), ""))
        or "site-" in os.path.basename(p)
    )
    assert ours < path.index(base_purelib)


@pytest.mark.parametrize("how", ["env={}", "-E", "-I"])
def test_children_of_sys_executable_keep_the_site(env: Path, how: str) -> None:
    flags = [] if how == "env={}" else [how]
    code = (
        "import subprocess, sys\n"
        f"r = subprocess.run([sys.executable, *{flags!r}, '-c', 'import probe'], "
        "env={} if " + repr(how == "env={}") + " else None)\n"
        "sys.exit(r.returncode)\n"
    )
    result = run(env / "bin" / "python", "-c", code)
    assert result.returncode == 0, result.stderr


def test_console_scripts_and_python_are_launchers_in_bin(env: Path) -> None:
    result = run(env / "bin" / "probe-tool", "a", "b")
    assert (result.returncode, result.stdout) == (0, "probe ['a', 'b']\n"), result.stderr
    activate = (env / "bin" / "activate").read_text()
    assert os.fspath(env) in activate
    assert "deactivate ()" in activate


def test_a_removed_interpreter_fails_the_launchers_with_one_line(env: Path) -> None:
    python = env / "bin" / f"python{VERSION}"
    python.unlink()
    python.symlink_to(env / "no-such-python")
    result = run(env / "bin" / "probe-tool")
    assert result.returncode == 127
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"vsite: {python} is gone")


def test_another_python_behind_the_shell_stops_with_one_line(env: Path) -> None:
    pth = env / "lib" / f"python{VERSION}" / "site-packages" / "_vsite.pth"
    pth.write_text(pth.read_text().replace(repr(VERSION), "'2.7'"))
    result = run(env / "bin" / "python", "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("vsite: error: this environment was made for Python 2.7")


def test_a_bad_manifest_stops_the_front_door_before_the_program(env: Path) -> None:
    (env / "manifest.json").write_text('{"vsite": 1, "roots": ["nowhere"]}')
    result = run(env / "bin" / "python", "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("vsite: error: cannot activate the virtual site:")


def test_making_it_again_keeps_the_users_files_and_drops_scripts_that_left(
    env: Path, site: Path
) -> None:
    site_packages = env / "lib" / f"python{VERSION}" / "site-packages"
    (site_packages / "__editable__.mine.pth").write_text("/somewhere\n")
    other = make_root(site.parent.parent / "roots", "other", {"other.py": ""})
    write_manifest(site, [other])
    assert main(["env", os.fspath(site), "-o", os.fspath(env)]) == 0
    assert sorted(os.listdir(site_packages)) == ["__editable__.mine.pth", "_vsite.pth"]
    assert not (env / "bin" / "probe-tool").exists()


# -- data, headers and scripts of the wheels --------------------------------------------------


def test_install_writes_the_environment_with_the_wheels_data(tmp_path: Path) -> None:
    wheels = [
        make_wheel(
            tmp_path / "w",
            "first",
            {"first.py": "def main():\n    print('first')\n"},
            entry_points="[console_scripts]\nfirst = first:main\n",
            data={
                "scripts": {"helper": "#!python\nimport first; print('helper ran')\n"},
                "data": {"share": {"kit": {"a.txt": "first a", "both.txt": "first"}}},
                "headers": {"first.h": "int first;"},
            },
        ),
        make_wheel(
            tmp_path / "w",
            "second",
            {"second.py": ""},
            data={"data": {"share": {"kit": {"b.txt": "second b", "both.txt": "second"}}}},
        ),
    ]
    out = tmp_path / "env" / "manifest.json"
    argv = ["install", *map(os.fspath, wheels), "--store", f"{tmp_path}/s", "-o", f"{out}"]
    assert main(argv) == 0
    env = out.parent
    kit = env / "share" / "kit"
    assert {p.name: p.read_text() for p in kit.iterdir()} == {
        "a.txt": "first a",
        "b.txt": "second b",
        "both.txt": "first",  # the first root wins a file, as in one directory
    }
    header = env / "include" / "site" / f"python{VERSION}" / "first" / "first.h"
    assert header.read_text() == "int first;"
    helper = run(env / "bin" / "helper")
    assert (helper.returncode, helper.stdout) == (0, "helper ran\n"), helper.stderr
    assert (env / "bin" / "helper").read_text().startswith(f"#!{env}/bin/python{VERSION}\n")
    lookup = "import os, sys; print(open(os.path.join(sys.prefix, 'share/kit/b.txt')).read())"
    result = run(env / "bin" / "python", "-c", lookup)
    assert (result.returncode, result.stdout) == (0, "second b\n"), result.stderr


def test_install_no_env_writes_only_the_manifest(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "solo", {"solo.py": ""})
    out = tmp_path / "env" / "manifest.json"
    argv = ["install", os.fspath(wheel), "--store", f"{tmp_path}/s", "-o", f"{out}", "--no-env"]
    assert main(argv) == 0
    assert os.listdir(out.parent) == ["manifest.json"]


# -- vsite exec -----------------------------------------------------------------------------


def exec_(manifest: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(*VSITE, "exec", os.fspath(manifest), "--", *command, **env)


def test_exec_puts_a_shell_first_on_path_and_reuses_it(site: Path) -> None:
    first = exec_(site, "python", "-c", REPORT)
    second = exec_(site, "python", "-c", REPORT)
    assert first.returncode == 0, first.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["prefix"] == two["prefix"] != one["base"]
    assert one["exe"] == os.path.join(one["prefix"], "bin", "python")
    assert one["user_site"] is False


def test_a_venv_made_inside_exec_sees_nothing_of_the_site(site: Path, tmp_path: Path) -> None:
    before = tmp_path / "before"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", os.fspath(before)], check=True)
    inside = tmp_path / "inside"
    script = (
        f"python -m venv --without-pip {inside} && "
        f"{inside}/bin/python -c 'import probe' 2>/dev/null && echo inside-sees; "
        f"{before}/bin/python -c 'import probe' && echo before-sees"
    )
    result = exec_(site, "sh", "-c", script)
    # A venv made before the exec is a Python named by path: it boots the site.
    assert result.stdout.split() == ["before-sees"], result.stderr


def test_a_nested_exec_of_another_manifest_replaces_the_site(site: Path, tmp_path: Path) -> None:
    other = make_root(tmp_path / "roots", "other", {"other.py": ""})
    second = write_manifest(tmp_path / "second.json", [other])
    code = (
        "import importlib.util as u; print(u.find_spec('probe'), u.find_spec('other') is not None)"
    )
    inner = " ".join([*VSITE, "exec", os.fspath(second), "--", "python", "-c", repr(code)])
    result = exec_(site, "sh", "-c", inner)
    assert (result.returncode, result.stdout) == (0, "None True\n"), result.stderr
    path = exec_(
        site, "sh", "-c", " ".join([*VSITE, "exec", os.fspath(second), "--", "printenv", "PATH"])
    )
    shells = [p for p in path.stdout.strip().split(os.pathsep) if "envs" in p and p.endswith("bin")]
    assert len(shells) == 1, path.stdout


# -- install locations -------------------------------------------------------------------


def test_roots_are_install_locations_for_sysconfig_and_site(env: Path) -> None:
    code = (
        "import json, os, site, sys\n"
        "assert 'sysconfig' not in sys.modules\n"
        "import sysconfig\n"
        "ours = [sysconfig.get_paths(n) for n in sysconfig.get_scheme_names() if 'vsite' in n]\n"
        "print(json.dumps({'schemes': [(p['purelib'], p['stdlib']) for p in ours],"
        " 'stdlib': sysconfig.get_paths()['stdlib'], 'site': site.getsitepackages(),"
        " 'loader': type(sysconfig.__loader__).__name__}))\n"
    )
    result = run(env / "bin" / "python", "-c", code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    root = os.fspath(env.parent / "roots" / "probe")
    vsite_package = os.path.dirname(os.path.abspath(vsite.__file__))
    assert seen["schemes"] == [[root, seen["stdlib"]], [vsite_package, seen["stdlib"]]]
    assert os.fspath(env.parent / "roots" / "probe") in seen["site"]
    assert seen["loader"] == "SourceFileLoader"  # the stdlib's loader, put back


def test_schemes_go_with_deactivate(tmp_path: Path) -> None:
    root = make_root(tmp_path, "probe", {"probe.py": ""})
    code = (
        "import sysconfig, vsite\n"
        f"handle = vsite.activate(vsite.Manifest.from_roots([{os.fspath(root)!r}]))\n"
        "before = [n for n in sysconfig.get_scheme_names() if 'vsite' in n]\n"
        "handle.deactivate()\n"
        "print(before, [n for n in sysconfig.get_scheme_names() if 'vsite' in n])\n"
    )
    result = run(sys.executable, "-c", code)
    expected = f"['{os.name}_vsite_0', '{os.name}_vsite_1'] []\n"
    assert (result.returncode, result.stdout) == (0, expected), result.stderr


def test_system_site_packages_in_the_manifest_is_validated(tmp_path: Path) -> None:
    manifest = write_tree(
        tmp_path, {"m.json": '{"vsite": 1, "roots": ["r"], "system-site-packages": 1}'}
    )
    (tmp_path / "r").mkdir()
    result = run(*VSITE, "check", os.fspath(manifest / "m.json"))
    assert result.returncode == 2
    assert "/system-site-packages: expected true or false, got a number" in result.stderr


def test_store_roots_share_one_scheme_by_their_shape() -> None:
    from vsite.finder.install_schemes import scheme_paths

    sha = "ab" * 32
    store = [f"/s/wheels/{sha[:-1]}{n}/site-packages" for n in range(3)]
    assert scheme_paths([*store, "/bazel/pypi_x/site-packages", f"/x/{sha}/site-packages"]) == [
        "/s/wheels",
        "/bazel/pypi_x/site-packages",
        f"/x/{sha}/site-packages",
    ]


def test_concurrent_execs_make_the_shell_once(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    command = [
        *VSITE,
        "exec",
        os.fspath(site),
        "--",
        "python",
        "-c",
        "import probe, sys; print(sys.prefix)",
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=child_env(VSITE_DIR=os.fspath(state)))
        for _ in range(6)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0] * 6, outputs
    prefixes = {out.strip() for out, _ in outputs}
    assert len(prefixes) == 1
    shells = [p for p in (state / "envs").iterdir() if p.is_dir()]
    assert shells == [Path(prefixes.pop())]


# -- collection of exec's shells ------------------------------------------------------------


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_gc_removes_exec_shells_no_process_holds_once_unused_for_an_hour(
    site: Path, tmp_path: Path
) -> None:
    from vsite.tools.shell_gc import GRACE, collect_shells

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    envs = state / "envs"
    made = exec_(site, "python", "-c", "import sys; print(sys.prefix)", VSITE_DIR=os.fspath(state))
    assert made.returncode == 0, made.stderr
    shell = Path(made.stdout.strip())
    lock = shell / ".vsite-lock"
    _age(lock, 2 * GRACE)
    # A Python started from the shell holds it for life, however long ago it was used.
    code = "import sys; print('started', flush=True); sys.stdin.read()"
    running = subprocess.Popen(
        [*VSITE, "exec", os.fspath(site), "--", "python", "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(VSITE_DIR=os.fspath(state)),
    )
    try:
        assert running.stdout is not None
        # Its program runs: the start (the .pth) holds the shell by now.
        assert running.stdout.readline() == "started\n"
        _age(lock, 2 * GRACE)
        assert collect_shells(os.fspath(envs)) == []
        assert shell.is_dir()
    finally:
        running.communicate(timeout=60)
    # Unheld, but used within the grace: kept (a command may start its Python later).
    lock.touch()
    assert collect_shells(os.fspath(envs)) == []
    _age(lock, GRACE / 2)
    assert collect_shells(os.fspath(envs), older_than=GRACE / 4) == []
    # Unheld and unused for longer: removed, with its creation lock; exec makes it anew.
    _age(lock, 2 * GRACE)
    assert collect_shells(os.fspath(envs)) == [os.fspath(shell)]
    assert sorted(p.name for p in envs.iterdir()) == []
    again = exec_(site, "python", "-c", "import probe, sys; print(sys.prefix)",
                  VSITE_DIR=os.fspath(state))  # fmt: skip
    assert (again.returncode, again.stdout.strip()) == (0, os.fspath(shell)), again.stderr


def test_gc_leaves_an_older_vsites_shell_for_a_week(tmp_path: Path) -> None:
    from vsite.tools.shell_gc import LOCKLESS_AGE, collect_shells

    envs = tmp_path / "envs"
    old, recent = envs / ("a" * 16), envs / ("b" * 16)
    for shell in (old, recent):
        write_tree(shell, {"pyvenv.cfg": "home = /usr/bin\n", "bin": {"python": ""}})
    _age(old, LOCKLESS_AGE + 60)
    _age(recent, LOCKLESS_AGE - 3600)
    (envs / "not-a-shell").mkdir()
    assert collect_shells(os.fspath(envs)) == [os.fspath(old)]
    assert sorted(p.name for p in envs.iterdir() if p.is_dir()) == ["b" * 16, "not-a-shell"]
