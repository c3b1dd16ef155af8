"""The environment around imports: a vsite site behaves like a venv to the tools people run.

Each test runs everyday commands in two environments holding the same pinned
distributions (requirements.txt: jupyter, coverage, pip, pygments and their
dependencies) and asserts the same outcome (SPEC section 5, issue 13):

- the reference, a venv made by ``python -m venv`` + ``pip install --no-deps -r``,
  without system site packages, entered with ``source venv/bin/activate``;
- the site, made by ``vsite install -r requirements.txt --no-deps -o DIR/manifest.json``,
  entered through ``vsite exec DIR/manifest.json --`` (mode ``exec``) and through its
  front door, ``source DIR/bin/activate`` (mode ``activate``).

Both environments are made on the same interpreter, the one behind this test run: a
pyenv Python with about a hundred packages in its own site-packages (ipython,
traitlets, jinja2, pytest... in other versions than the pins), so a site that leaves
them visible differs from the venv. The children's home has a user site that exists.
Outputs are compared after normalising the paths that differ by construction (the
environment's directory reads ``<env>``, the working directory ``<cwd>``, the home
``<home>``: tests/environment/envs.py). Where an outcome differs by design (the virtual
site's own ``sys.path`` entry), the test asserts that difference and no other.

Why these commands: each one finds its environment by something other than an import
(``PATH``, ``sys.prefix``, ``sysconfig``/``site`` locations, pip's view of
``sys.path``, an inherited environment), which is where a site that only serves imports
falls short (issue 13 measured about half of 45 such commands differing). The shell must
still hold no package files: the first test checks that the site stays virtual.

``VSITE_ENV_NAIVE=1`` adds the naive layout (roots on ``PYTHONPATH``, the store's
``bin/`` scripts on ``PATH``) as a third mode; every comparison should fail there.
The suite runs on Python 3.11 (the pins are cp311 wheels) and skips elsewhere.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.environment.envs import (
    VERSION,
    Env,
    Runner,
    base_python,
    data_files,
    script_names,
)

pytestmark = [pytest.mark.realwheels, pytest.mark.slow]

SITE_PACKAGES = f"<env>/lib/python{VERSION}/site-packages"
#: Imported by the programs below: distributions of the site (and, in other versions,
#: of the interpreter's own site-packages).
CELL = """\
import sys, traitlets
print(sys.prefix)
print(sys.executable)
print(traitlets.__version__)
print(type(get_ipython()).__name__)
"""


def _notebook(path: Path, source: str = CELL) -> None:
    """A one-cell nbformat 4.5 notebook."""
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "only-cell",
        "metadata": {},
        "outputs": [],
        "source": source.splitlines(keepends=True),
    }
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {
        "cells": [cell],
        "metadata": {"kernelspec": kernelspec},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def _python(env: Env, cwd: Path, code: str, *args: str) -> Any:
    """The JSON a ``python -c CODE`` child of ``env`` prints."""
    return json.loads(env.run(["python", "-c", code, *args], cwd).ok())


def _first_difference(expected: str, got: str, limit: int = 40) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(), got.splitlines(), "venv", "site", lineterm="", n=1
    )
    return "\n".join(line for _, line in zip(range(limit), diff))


# -- the shell stays small --------------------------------------------------------------


def test_the_shell_holds_no_package_files(manifest: Path) -> None:
    # A venv-shaped directory, but site-packages stays virtual: only vsite's boot .pth
    # in it, and nothing of the packages copied (their data files are links).
    shell = manifest.parent
    config: dict[str, str] = {}
    for line in (shell / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()
    assert config["include-system-site-packages"] == "false"
    site_packages = shell / "lib" / f"python{VERSION}" / "site-packages"
    held = sorted(p.name for p in site_packages.iterdir())
    assert len(held) == 1, held
    assert held[0].endswith(".pth"), held
    python = shell / "bin" / "python"
    assert python.is_symlink()
    assert os.path.realpath(python) == base_python()  # the venv's interpreter too
    files, size = [], 0
    for directory, _, names in os.walk(shell):  # links to directories are not entered
        for name in names:
            path = Path(directory, name)
            if not path.is_symlink():
                files.append(str(path.relative_to(shell)))
                size += path.stat().st_size
    package_like = [f for f in files if f.endswith((".py", ".pyc", ".so")) or ".dist-info/" in f]
    assert not package_like, package_like
    assert size < 1024 * 1024, f"{size} bytes of regular files in the shell: {files}"


# -- jupyter ------------------------------------------------------------------------------

KERNEL_COMMAND = """\
import json
from jupyter_client.manager import KernelManager
print(json.dumps(KernelManager(kernel_name="python3").format_kernel_cmd()[:3]))
"""


def _kernelspecs(env: Env, cwd: Path) -> dict[str, Any]:
    return {
        "list": env.run(["jupyter", "kernelspec", "list"], cwd).ok(),
        "json": json.loads(env.run(["jupyter", "kernelspec", "list", "--json"], cwd).ok()),
        "kernel command": _python(env, cwd, KERNEL_COMMAND),
    }


def test_jupyter_kernelspec_list(in_venv: Runner, in_site: Runner) -> None:
    # `jupyter SUB` runs `jupyter-SUB` found on PATH; the python3 kernel is ipykernel's
    # data file (share/jupyter/kernels), found from sys.prefix; the kernel's "python"
    # becomes sys.executable, which must be the environment's.
    expected = in_venv(_kernelspecs)
    spec = expected["json"]["kernelspecs"]["python3"]
    assert spec["resource_dir"] == "<env>/share/jupyter/kernels/python3"
    assert expected["kernel command"] == ["<env>/bin/python", "-m", "ipykernel_launcher"]
    assert in_site(_kernelspecs) == expected


def _to_html(env: Env, cwd: Path) -> str:
    _notebook(cwd / "nb.ipynb")
    env.run(["jupyter", "nbconvert", "--to", "html", "nb.ipynb"], cwd).ok()
    return (cwd / "nb.html").read_text(encoding="utf-8")


def test_jupyter_nbconvert_to_html(in_venv: Runner, in_site: Runner) -> None:
    # nbconvert's templates are wheel data files (share/jupyter/nbconvert/templates),
    # looked up relative to sys.prefix: missing, it fails ("No template sub-directory").
    expected = in_venv(_to_html)
    assert "jp-Cell jp-CodeCell" in expected  # the lab template's markup, and the cell
    assert "traitlets" in expected
    got = in_site(_to_html)
    assert got == expected, _first_difference(expected, got)


def _executed(env: Env, cwd: Path) -> list[Any]:
    _notebook(cwd / "nb.ipynb")
    argv = ["jupyter", "nbconvert", "--to", "notebook", "--execute", "nb.ipynb"]
    env.run([*argv, "--output", "out.ipynb"], cwd).ok()
    text = env.normal((cwd / "out.ipynb").read_text(encoding="utf-8"), cwd)
    outputs: list[Any] = json.loads(text)["cells"][0]["outputs"]
    return outputs


def test_jupyter_nbconvert_execute(in_venv: Runner, in_site: Runner) -> None:
    # A kernel started by jupyter_client from the kernelspec: it runs on the
    # environment's python and imports the environment's traitlets.
    expected = in_venv(_executed)
    assert expected, "the executed cell has no output"
    assert "".join(expected[0]["text"]).splitlines()[:2] == ["<env>", "<env>/bin/python"]
    assert in_site(_executed) == expected


def _jupyter_paths(env: Env, cwd: Path) -> Any:
    return json.loads(env.run(["jupyter", "--paths", "--json"], cwd).ok())


# -- console scripts ----------------------------------------------------------------------

WHICH = "import json, shutil, sys; print(json.dumps({n: shutil.which(n) for n in sys.argv[1:]}))"


def test_shutil_which_finds_every_console_script(
    in_venv: Runner, in_site: Runner, pinned_wheels: list[Path]
) -> None:
    # In a child python, as tools look for `jupyter-SUB`, `pytest`, `black`: each
    # console_scripts/gui_scripts name of the site is on PATH, in the environment's bin.
    names = [*script_names(pinned_wheels), "python", "python3"]
    assert {"jupyter", "pygmentize", "coverage", "pip"} <= set(names)

    def which(env: Env, cwd: Path) -> Any:
        return _python(env, cwd, WHICH, *names)

    expected = in_venv(which)
    assert expected == {name: f"<env>/bin/{name}" for name in names} | {
        "python": "<env>/bin/python",
        "python3": "<env>/bin/python",
    }
    assert in_site(which) == expected


BY_NAME = """\
import json, subprocess
found = {}
for argv in (["pygmentize", "-V"], ["coverage", "--version"], ["jupyter", "--version"],
             ["ipython", "--quick", "-c", "import sys; print(sys.prefix, sys.executable)"]):
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        found[argv[0]] = [type(exc).__name__, str(exc)]
    else:
        found[argv[0]] = [done.returncode, done.stdout, done.stderr[-2000:]]
print(json.dumps(found))
"""


def test_console_scripts_run_by_name_from_a_subprocess(in_venv: Runner, in_site: Runner) -> None:
    # subprocess.run(["pygmentize", ...]) from a program: found on PATH and run on the
    # environment's python, which has the site (coverage's C tracer is a native import;
    # `jupyter --version` imports each jupyter package in a child of its own; ipython
    # says which interpreter runs the script).
    def by_name(env: Env, cwd: Path) -> Any:
        return _python(env, cwd, BY_NAME)

    expected = in_venv(by_name)
    assert all(result[0] == 0 for result in expected.values()), expected
    assert "with C extension" in expected["coverage"][1]
    assert expected["ipython"][1] == "<env> <env>/bin/python\n"
    assert in_site(by_name) == expected


# -- isolation ----------------------------------------------------------------------------

NESTED = """\
import json, subprocess, sys
def run(*argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return [done.returncode, done.stdout, (done.stderr.strip().splitlines() or [""])[-1]]
made = run(sys.executable, "-m", "venv", "nv")
probe = ("import sys, importlib.metadata as m; "
         "print(sys.prefix, sorted(d.metadata['Name'] for d in m.distributions()))")
print(json.dumps({
    "venv": made[0],
    "import": run("nv/bin/python", "-c", "import traitlets"),
    "prefix and distributions": run("nv/bin/python", "-c", probe),
    "pip list": run("nv/bin/python", "-m", "pip", "list", "--format=freeze"),
}))
"""


def test_a_venv_made_inside_sees_nothing_of_the_site(in_venv: Runner, in_site: Runner) -> None:
    # `python -m venv nv` inside the environment, then nv's python (inheriting the
    # environment's variables): a venv made inside a venv sees nothing of the outer one,
    # and ensurepip still installs nv's own pip.
    def nested(env: Env, cwd: Path) -> Any:
        return _python(env, cwd, NESTED)

    expected = in_venv(nested)
    assert expected["venv"] == 0
    assert expected["import"][0] == 1
    assert expected["import"][2] == "ModuleNotFoundError: No module named 'traitlets'"
    assert expected["prefix and distributions"][1].startswith("<cwd>/nv ")
    assert in_site(nested) == expected


PROGRAM = """\
import jinja2
import traitlets
print(jinja2.__version__, traitlets.__version__)
"""


def _coverage(env: Env, cwd: Path) -> dict[str, str]:
    (cwd / "prog.py").write_text(PROGRAM, encoding="utf-8")
    return {
        "run": env.run(["coverage", "run", "prog.py"], cwd).ok(),
        "report": env.run(["coverage", "report"], cwd).ok(),
    }


def test_coverage_default_report_lists_only_the_program(in_venv: Runner, in_site: Runner) -> None:
    # Without --source, coverage measures what is not library code, which it tells by
    # location (sysconfig paths, site.getsitepackages()): the site's files are library
    # code as a venv's site-packages is, staged in the native farm or not.
    expected = in_venv(_coverage)
    assert [line.split()[0] for line in expected["report"].splitlines()[2:3]] == ["prog.py"]
    got = in_site(_coverage)
    assert got == expected, _first_difference(expected["report"], got["report"])


def _pip(env: Env, cwd: Path) -> dict[str, Any]:
    check = env.run(["python", "-m", "pip", "check"], cwd)
    return {
        "list": json.loads(env.run(["python", "-m", "pip", "list", "--format=json"], cwd).ok()),
        "check": [check.code, check.out],
    }


def _own_distributions() -> set[str]:
    """name==version of each distribution in the base interpreter's own site-packages."""
    import sysconfig

    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    found = set()
    for directory in {paths["purelib"], paths["platlib"]}:
        for entry in Path(directory).glob("*.dist-info"):
            name, _, version = entry.name[: -len(".dist-info")].partition("-")
            found.add(f"{name.lower().replace('_', '-')}=={version}")
    return found


def test_pip_sees_the_sites_distributions_only(in_venv: Runner, in_site: Runner) -> None:
    # pip list / pip check on an interpreter that holds packages of its own: the site,
    # like a venv without system site packages, shows its own set and nothing else.
    expected = in_venv(_pip)
    pinned = {f"{d['name'].lower().replace('_', '-')}=={d['version']}" for d in expected["list"]}
    if not _own_distributions() - pinned:
        pytest.skip(f"{sys.base_prefix} holds no distribution of its own: nothing to hide")
    assert expected["check"] == [0, "No broken requirements found.\n"]
    got = in_site(_pip)
    assert got == expected, sorted(
        {json.dumps(d) for d in got["list"]} ^ {json.dumps(d) for d in expected["list"]}
    )


# -- sys.prefix ---------------------------------------------------------------------------

DATA = """\
import hashlib, json, os, sys
found = {}
for relative in json.load(open("data.json")):
    try:
        with open(os.path.join(sys.prefix, relative), "rb") as stream:
            found[relative] = hashlib.sha256(stream.read()).hexdigest()
    except OSError as exc:
        found[relative] = type(exc).__name__
print(json.dumps({"prefix": sys.prefix, "is a venv": sys.prefix != sys.base_prefix,
                  "pyvenv.cfg": os.path.isfile(os.path.join(sys.prefix, "pyvenv.cfg")),
                  "files": found}))
"""


def test_data_files_are_found_relative_to_sys_prefix(
    in_venv: Runner, in_site: Runner, pinned_wheels: list[Path]
) -> None:
    # A wheel's .data/data files lie under sys.prefix (share/jupyter/...), with the
    # wheel's contents; jupyter's data dirs name the environment's share/jupyter first,
    # as they do for any venv (sys.prefix != sys.base_prefix).
    wanted = data_files(pinned_wheels)
    assert any(name.startswith("share/jupyter/nbconvert/templates/") for name in wanted)

    def lookups(env: Env, cwd: Path) -> Any:
        (cwd / "data.json").write_text(json.dumps(sorted(wanted)), encoding="utf-8")
        return {"python": _python(env, cwd, DATA), "jupyter --paths": _jupyter_paths(env, cwd)}

    expected = in_venv(lookups)
    assert expected["python"] == {
        "prefix": "<env>",
        "is a venv": True,
        "pyvenv.cfg": True,
        "files": wanted,
    }
    assert expected["jupyter --paths"]["data"][0] == "<env>/share/jupyter"
    assert in_site(lookups) == expected


def _site_report(env: Env, cwd: Path) -> dict[str, Any]:
    """``python -m site``: its sys.path section, and whether the user site is on."""
    lines = env.run(["python", "-m", "site"], cwd).ok().splitlines()
    start, end = lines.index("sys.path = ["), lines.index("]")
    entries = [ast.literal_eval(line.strip().rstrip(",")) for line in lines[start + 1 : end]]
    enabled = [line for line in lines if line.startswith("ENABLE_USER_SITE:")]
    return {"sys.path": entries, "user site": enabled}


def test_python_m_site_sys_path(in_venv: Runner, in_site: Runner) -> None:
    # The working directory, the standard library, the environment's site-packages; no
    # base site-packages, no user site (which exists in the children's home). The one
    # difference by design (README, "Known differences"): one entry more, the site's
    # own, just after the environment's site-packages (which ranks first: what pip
    # installs there replaces the site's, as in a venv); with native code in the site
    # (pyzmq, psutil...) it is the native farm, in vsite's state directory (SPEC 1, 4).
    expected = in_venv(_site_report)
    assert expected["sys.path"][0] == "<cwd>"
    assert expected["sys.path"][-1] == SITE_PACKAGES
    assert expected["user site"] == ["ENABLE_USER_SITE: False"]
    got = in_site(_site_report)
    entries = got["sys.path"]
    extra = [entry for entry in entries if entry not in expected["sys.path"]]
    assert [entry for entry in entries if entry not in extra] == expected["sys.path"], entries
    assert len(extra) == 1, f"{len(extra)} entries more than the venv's: {entries}"
    assert entries[entries.index(SITE_PACKAGES) + 1] == extra[0], entries
    state = os.environ["VSITE_DIR"]  # tests/conftest.py: this session's state directory
    assert extra[0].startswith((state, os.path.realpath(state))), entries
    assert got["user site"] == expected["user site"]


# -- children without the environment ------------------------------------------------------

CHILDREN = """\
import json, subprocess, sys
probe = "import sys, traitlets; print(sys.prefix, traitlets.__version__)"
found = {}
for name, argv, env in (("env={}", [sys.executable, "-c", probe], {}),
                        ("-I", [sys.executable, "-I", "-c", probe], None),
                        ("-E", [sys.executable, "-E", "-c", probe], None)):
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    found[name] = [done.returncode, done.stdout, (done.stderr.strip().splitlines() or [""])[-1]]
print(json.dumps(found))
"""


def test_children_of_sys_executable_keep_the_environment(in_venv: Runner, in_site: Runner) -> None:
    # A venv's bin/python keeps its site-packages with env={}, -I or -E: so must the
    # environment's python, which is what sys.executable names in a child of the site.
    def children(env: Env, cwd: Path) -> Any:
        return _python(env, cwd, CHILDREN)

    expected = in_venv(children)
    assert all(result[0] == 0 for result in expected.values()), expected
    assert in_site(children) == expected
