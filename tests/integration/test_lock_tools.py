"""Lock files the real tools write install and run: ``pip lock`` (from the configured
package index) and ``uv export --format pylock.toml`` (uv from its wheel, resolving
from a directory of real wheels), each then ``vsite install``ed into an empty store and
run through ``vsite exec``, with the locked versions in ``importlib.metadata``.

The tools and wheels come as the other real-wheel suites get theirs (cached under
``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}``): when they cannot be had the test skips
with the reason, or fails in required mode (``require_or_skip``, tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.children import child_env
from tests.conftest import require_or_skip
from tests.real_roots import CACHE, pip_download

pytestmark = [pytest.mark.realwheels, pytest.mark.slow]

#: A pure distribution with one dependency (six): two roots, two versions to check.
REQUIREMENT = "python-dateutil==2.9.0.post0"
UV_PIN = "uv==0.13.9"
WHEELS = CACHE / "locks"
VSITE = [sys.executable, "-m", "vsite"]
PROBE = (
    "import dateutil.parser, six, importlib.metadata as m; "
    "print(m.version('python-dateutil'), m.version('six'))"
)


def _run(command: list[str | os.PathLike[str]], cwd: Path | None = None, **env: str) -> str:
    result = subprocess.run(
        [os.fspath(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(**env),
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(f"{command[:3]} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def _locked_versions(lock: Path) -> dict[str, str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    data = tomllib.loads(lock.read_text(encoding="utf-8"))
    return {package["name"]: package["version"] for package in data["packages"]}


def _install_and_run(lock: Path, tmp_path: Path, *, tomli: bool = False) -> None:
    """``vsite install LOCK`` into an empty store, then the probe through ``vsite exec``.

    ``tomli``: the lock holds tomli for Pythons before 3.11 only.
    """
    manifest = tmp_path / "env" / "manifest.json"
    out = _run([*VSITE, "install", lock, "--store", tmp_path / "store", "-o", manifest])
    marked = tomli and sys.version_info < (3, 11)
    roots = 3 if marked else 2
    assert f"{roots} roots ({roots} unpacked, 0 reused)" in out, out
    assert ("tomli" in manifest.read_text(encoding="utf-8")) is marked
    versions = _locked_versions(lock)
    printed = _run([*VSITE, "exec", manifest, "--", "python", "-c", PROBE])
    assert printed.split() == [versions["python-dateutil"], versions["six"]]


def test_a_lock_made_by_pip_lock_installs_and_runs(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    command = [sys.executable, "-m", "pip", "lock", "--quiet", "--disable-pip-version-check"]
    command += ["--only-binary=:all:", "-o", os.fspath(lock), REQUIREMENT]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        require_or_skip(f"pip lock {REQUIREMENT} failed ({result.returncode}):\n{result.stderr}")
    assert 'created-by = "pip"' in lock.read_text(encoding="utf-8")
    _install_and_run(lock, tmp_path)


def _uv(directory: Path) -> Path:
    """The uv binary, out of its cached wheel."""
    cached = CACHE / "uv"
    if not list(cached.glob("uv-*.whl")):
        pip_download(cached, "--no-deps", "--only-binary=:all:", UV_PIN)
    archive = sorted(cached.glob("uv-*.whl"))[-1]
    uv = directory / "uv"
    with zipfile.ZipFile(archive) as opened:
        member = next(n for n in opened.namelist() if n.endswith(".data/scripts/uv"))
        uv.write_bytes(opened.read(member))
    uv.chmod(0o755)
    return uv


def test_a_lock_made_by_uv_export_installs_and_runs(tmp_path: Path) -> None:
    # uv locks for every Python the project allows: tomli comes with a marker that is
    # false on Python 3.11+, where it must simply not be installed.
    # Every run: the cached directory may hold only another Python's wheels (tomli ships
    # compiled ones per version); pip fetches what this interpreter needs, once.
    pip_download(WHEELS, "--only-binary=:all:", REQUIREMENT, "tomli")
    uv = _uv(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\nrequires-python = ">=3.9"\n'
        f'dependencies = ["{REQUIREMENT}", "tomli; python_version < \'3.11\'"]\n',
        encoding="utf-8",
    )
    settings = {"UV_CACHE_DIR": os.fspath(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    where = ["--no-index", "--find-links", os.fspath(WHEELS)]
    _run([uv, "lock", "--quiet", *where], cwd=project, **settings)
    lock = tmp_path / "pylock.toml"
    export: list[str | os.PathLike[str]] = [
        uv,
        "export",
        "--quiet",
        "--format",
        "pylock.toml",
        "--no-emit-project",
    ]
    _run([*export, "-o", lock, *where], cwd=project, **settings)
    text = lock.read_text(encoding="utf-8")
    assert 'created-by = "uv"' in text
    assert 'name = "tomli"' in text
    _install_and_run(lock, tmp_path, tomli=True)  # left out where its marker is false
