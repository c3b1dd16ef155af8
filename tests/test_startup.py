"""Interpreter start-up: the boot ``sitecustomize`` and ``activate_from_environment``.

The boot path stays lean (no ``argparse``, ``packaging``, ``pytest``, ``setuptools`` or
``pkg_resources`` after start-up), and it fails closed: a process asked to run with a
site that cannot be activated stops with one line and exit status 2 before the
program's first line runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import compile_extension, make_root, write_manifest, write_tree
from tests.children import child_env
from vsite._startup import BOOT_DIR, ENV_MANIFEST, activate_from_environment
from vsite.activation import active

VSITE = [sys.executable, "-m", "vsite"]

HEAVY = ("argparse", "packaging", "pytest", "_pytest", "setuptools", "pkg_resources")


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv without pip of the base interpreter: nothing in its own site-packages."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    base = os.path.join(sys.base_prefix, "bin", f"python{version}")
    where = tmp_path_factory.mktemp("clean") / "venv"
    python = base if os.access(base, os.X_OK) else sys.executable
    subprocess.run([python, "-m", "venv", "--without-pip", os.fspath(where)], check=True)
    return os.fspath(where / "bin" / "python")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    roots = tmp_path / "roots"
    make_root(roots, "alpha", {"alpha": {"__init__.py": ""}, "ns": {"a.py": ""}})
    make_root(roots, "beta", {"ns": {"b.py": ""}})
    return write_manifest(tmp_path / "manifest.json", [roots / "alpha", roots / "beta"])


# -- lean start-up -------------------------------------------------------------------


def modules_after_startup(manifest: Path, python: str) -> list[str]:
    # `-c` code runs after start-up; json is imported by the probe itself, after it.
    code = "import sys; names = sorted(sys.modules); import json; print(json.dumps(names))"
    result = run([*VSITE, "exec", os.fspath(manifest), "--", python, "-c", code], child_env())
    assert result.returncode == 0, result.stderr
    names: list[str] = json.loads(result.stdout)
    return names


@pytest.mark.parametrize("child", ["clean", "vsite's own"])
def test_boot_imports_no_heavy_module(manifest: Path, clean_python: str, child: str) -> None:
    python = clean_python if child == "clean" else sys.executable
    names = modules_after_startup(manifest, python)
    assert "vsite.activation" in names  # the site did boot in this process
    assert [name for name in names if name.partition(".")[0] in HEAVY] == []
    assert "vsite.tools.cli" not in names


def test_boot_adds_nothing_but_vsite_to_what_python_imports_at_start(
    manifest: Path, clean_python: str
) -> None:
    """Lean start-up, measured against the same interpreter without vsite: the boot
    path adds its own modules and nothing of the stdlib (no importlib, warnings, zlib,
    json, not even ``__future__``: the boot modules quote their annotations instead),
    beyond the boot ``sitecustomize`` and ``fcntl`` (the farm's lock)."""
    code = "import sys; names = sorted(sys.modules); import json; print(json.dumps(names))"
    plain = run([clean_python, "-c", code], child_env())
    assert plain.returncode == 0, plain.stderr
    added = set(modules_after_startup(manifest, clean_python)) - set(json.loads(plain.stdout))
    assert "vsite.activation" in added
    # fcntl: the shared flock that holds the site's farm for the process's life.
    assert sorted(n for n in added if n.partition(".")[0] != "vsite") in (
        ["fcntl", "sitecustomize"],
        ["fcntl"],  # the interpreter had a sitecustomize of its own
    )


def test_boot_imports_no_heavy_module_with_native_code_to_stage(
    tmp_path: Path, clean_python: str
) -> None:
    root = make_root(tmp_path / "roots", "native", {"native": {"__init__.py": ""}})
    compile_extension(root / "native", "native._ext")
    manifest = write_manifest(tmp_path / "manifest.json", [root])
    code = "import native._ext as e, sys; print(e.__file__)"
    check = run([*VSITE, "exec", os.fspath(manifest), "--", clean_python, "-c", code], child_env())
    assert check.returncode == 0, check.stderr
    names = modules_after_startup(manifest, clean_python)
    assert [name for name in names if name.partition(".")[0] in HEAVY] == []


def test_the_vsite_command_itself_does_import_argparse(manifest: Path) -> None:
    # The contrast: the probe above can see argparse when something imports it.
    code = "import sys; print('argparse' in sys.modules)"
    result = run([*VSITE, "run", os.fspath(manifest), "-c", code], child_env())
    assert result.stdout.strip() == "True"


# -- the boot hook on its own ---------------------------------------------------------


def test_boot_without_a_manifest_activates_nothing_and_still_chains(
    clean_python: str, tmp_path: Path
) -> None:
    user = write_tree(tmp_path / "user", {"sitecustomize.py": "import sys; sys.CHAINED = True\n"})
    code = (
        "import json, sys; print(json.dumps([getattr(sys, 'CHAINED', False), "
        "'vsite.activation' in sys.modules and "
        "sys.modules['vsite.activation'].active() is not None, sys.path]))"
    )
    env = child_env(PYTHONPATH=os.pathsep.join([BOOT_DIR, os.fspath(user)]))
    result = run([clean_python, "-c", code], env)
    assert result.returncode == 0, result.stderr
    chained, activated, path = json.loads(result.stdout)
    assert chained is True
    assert activated is False
    assert BOOT_DIR not in path
    assert os.fspath(user) in path


def test_boot_activates_the_manifest_in_the_environment(manifest: Path, clean_python: str) -> None:
    env = child_env(PYTHONPATH=BOOT_DIR, **{ENV_MANIFEST: os.fspath(manifest)})
    code = "import alpha, ns.a, ns.b, sys; print(sys.modules['sitecustomize'].__file__)"
    result = run([clean_python, "-c", code], env)
    assert result.returncode == 0, result.stderr
    # With nothing to chain to, the boot module stays as sitecustomize.
    assert result.stdout.strip() == os.path.join(BOOT_DIR, "sitecustomize.py")


def test_site_that_cannot_be_activated_stops_a_child_with_one_line(
    manifest: Path, clean_python: str, tmp_path: Path
) -> None:
    # `vsite exec` checked the manifest; a root then disappears before a child starts.
    root = manifest.parent / "roots" / "beta"
    program = (
        "import shutil, subprocess, sys\n"
        f"shutil.rmtree({os.fspath(root)!r})\n"
        "child = subprocess.run([sys.executable, '-c', 'print(\"program ran\")'],\n"
        "                       capture_output=True, text=True)\n"
        "print(child.returncode); sys.stdout.write(child.stdout); print(child.stderr, end='')\n"
    )
    result = run(
        [*VSITE, "exec", os.fspath(manifest), "--", clean_python, "-c", program], child_env()
    )
    assert result.returncode == 0, result.stderr
    code, *stderr = result.stdout.splitlines()
    assert code == "2"
    assert "program ran" not in result.stdout
    assert len(stderr) == 1, result.stdout
    assert stderr[0].startswith("vsite: error: cannot activate the virtual site: ")
    assert "root does not exist" in stderr[0]
    assert os.fspath(root) in stderr[0]
    assert "Traceback" not in result.stdout


def broken_installation(tmp_path: Path) -> Path:
    """A copy of the boot hook next to a ``vsite`` package that fails to import."""
    package = write_tree(tmp_path / "broken" / "vsite", {"__init__.py": "1 / 0\n"})
    shutil.copytree(BOOT_DIR, package / "_boot")
    return package / "_boot"


def test_vsite_that_cannot_be_loaded_stops_the_process_when_a_site_is_asked_for(
    manifest: Path, clean_python: str, tmp_path: Path
) -> None:
    boot = broken_installation(tmp_path)
    env = child_env(PYTHONPATH=os.fspath(boot), **{ENV_MANIFEST: os.fspath(manifest)})
    result = run([clean_python, "-c", "print('program ran')"], env)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"vsite: error: cannot load vsite from {boot.parent}: ")
    assert "ZeroDivisionError" in line


def test_vsite_that_cannot_be_loaded_is_a_sitecustomize_error_without_a_manifest(
    clean_python: str, tmp_path: Path
) -> None:
    boot = broken_installation(tmp_path)
    result = run([clean_python, "-c", "print('program ran')"], child_env(PYTHONPATH=str(boot)))
    assert result.returncode == 0
    assert result.stdout == "program ran\n"
    assert "Error in sitecustomize" in result.stderr


# -- activate_from_environment in-process ----------------------------------------------


def test_no_manifest_in_the_environment_activates_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_MANIFEST, raising=False)
    activate_from_environment()
    assert active() is None


def test_empty_manifest_variable_activates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MANIFEST, "")
    activate_from_environment()
    assert active() is None


def test_manifest_in_the_environment_is_activated(
    manifest: Path, monkeypatch: pytest.MonkeyPatch, sys_state: object
) -> None:
    monkeypatch.setenv(ENV_MANIFEST, os.fspath(manifest))
    activate_from_environment()
    handle = active()
    assert handle is not None
    assert handle.manifest.source == os.fspath(manifest)


VSITE_ATTRS = """\
import json, vsite
spec = vsite.__spec__
print(json.dumps({
    "file": vsite.__file__, "path": list(vsite.__path__), "package": vsite.__package__,
    "cached": vsite.__cached__, "loader": type(vsite.__loader__).__name__,
    "spec": [spec.name, spec.origin, spec.has_location, spec.parent,
             list(spec.submodule_search_locations)],
}))
"""


def test_boot_loads_vsite_as_a_normal_import_would(manifest: Path, clean_python: str) -> None:
    booted = run(
        [*VSITE, "exec", str(manifest), "--", clean_python, "-c", VSITE_ATTRS], child_env()
    )
    normal = run([sys.executable, "-c", VSITE_ATTRS], child_env())
    assert booted.returncode == 0, booted.stderr
    assert json.loads(booted.stdout) == json.loads(normal.stdout)
