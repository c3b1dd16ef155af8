"""pip run inside a site never modifies the store (issue 14's idna scenario).

Two environments made by ``vsite install`` share one store entry of idna; pip runs in
the first, as root (whom no file mode stops) and as a non-root user. Whatever pip does
there (``uninstall``, ``install --upgrade``, ``--force-reinstall``), the store entry stays
byte-identical and the second environment imports idna FROM THE STORE. Through the
environment (its ``python``, also what ``vsite exec`` puts on PATH) pip's own venv rule
refuses ("outside environment") and what it installs lands in the environment's own
site-packages, which ranks first; in a Python that is no venv vsite's guard gives the
store's distributions the same treatment. Real pip and idna wheels (py3, every Python).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import vsite as vsite_package
from tests.children import child_env
from tests.real_roots import CACHE, pip_download
from tests.reliability._support import NOBODY, require_root
from vsite.tools.scripts import interpreter

VSITE = [sys.executable, "-m", "vsite"]
PINS = ("idna==3.10", "idna==3.11", "pip==25.3")
WHEELS = CACHE / "pip-in-site"
SHOW = "import idna, importlib.metadata as m, sys; print(idna.__file__); print(m.version('idna'))"


def wheel(name: str, version: str) -> Path:
    found = sorted(WHEELS.glob(f"{name}-{version}-*.whl"))
    assert found, f"no {name} {version} wheel in {WHEELS}"
    return found[0]


@pytest.fixture(scope="module")
def wheels() -> Path:
    for pin in PINS:  # one at a time: two versions of idna never resolve together
        if not list(WHEELS.glob(f"{pin.replace('==', '-')}-*.whl")):
            pip_download(WHEELS, "--no-deps", "--only-binary=:all:", pin)
    return WHEELS


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory everyone may traverse (pytest's own tmp dirs are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="vsite-pip-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


def vsite(*args: str | os.PathLike[str], python: str = sys.executable, **env: str) -> str:
    result = subprocess.run(
        [python, "-m", "vsite", *(os.fspath(arg) for arg in args)],
        capture_output=True,
        text=True,
        env=child_env(**env),
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out: str = result.stdout
    return out


def make_sites(base: Path, wheels: Path) -> tuple[Path, Path, Path]:
    """Store, environment A (idna + pip) and environment B (idna), sharing idna's entry."""
    store = base / "store"
    idna, pip = wheel("idna", "3.10"), wheel("pip", "25.3")
    vsite("install", idna, pip, "--store", store, "-o", base / "a" / "manifest.json")
    vsite("install", idna, "--store", store, "-o", base / "b" / "manifest.json")
    return store, base / "a", base / "b"


def digest(store: Path) -> dict[str, str]:
    """Every file and link of the store with its content (or target) hash."""
    seen: dict[str, str] = {}
    for path in sorted(store.rglob("*")):
        key = os.fspath(path.relative_to(store))
        if path.is_symlink():
            seen[key] = "-> " + os.readlink(path)
        elif path.is_file():
            seen[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[key] = "dir"
    return seen


def run(*argv: str | os.PathLike[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.fspath(a) for a in argv],
        capture_output=True,
        text=True,
        env=child_env(PIP_DISABLE_PIP_VERSION_CHECK="1", **env),
        check=False,
        timeout=300,
    )


def idna_in(environment: Path) -> tuple[str, str]:
    result = run(environment / "bin" / "python", "-c", SHOW)
    assert result.returncode == 0, result.stderr
    where, version = result.stdout.split()
    return where, version


def assert_refused(result: subprocess.CompletedProcess[str], why: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "Not uninstalling idna at" in output, output
    assert why in output, output


# -- as root ------------------------------------------------------------------------------


def test_pip_uninstall_through_the_environment_leaves_the_store_alone(
    base: Path, wheels: Path
) -> None:
    store, a, b = make_sites(base, wheels)
    before = digest(store)
    result = run(a / "bin" / "python", "-m", "pip", "uninstall", "-y", "idna")
    assert_refused(result, f"outside environment {a}")
    assert digest(store) == before
    where, version = idna_in(b)
    assert (where.startswith(os.fspath(store)), version) == (True, "3.10")


def test_pip_upgrade_and_reinstall_land_in_the_environment_and_win(
    base: Path, wheels: Path
) -> None:
    store, a, b = make_sites(base, wheels)
    before = digest(store)
    python = a / "bin" / "python"
    own = os.fspath(a / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
    pip: list[str | os.PathLike[str]] = [python, "-m", "pip", "install", "--no-index"]
    pip += ["--find-links", wheels, "--no-deps"]
    assert run(*pip, "--upgrade", "idna==3.11").returncode == 0
    where, version = idna_in(a)
    assert (where.startswith(own), version) == (True, "3.11")
    assert run(*pip, "--force-reinstall", "idna==3.10").returncode == 0
    where, version = idna_in(a)
    assert (where.startswith(own), version) == (True, "3.10")
    # Uninstalling removes the environment's own copy; the site's shows again.
    assert run(python, "-m", "pip", "uninstall", "-y", "idna").returncode == 0
    where, version = idna_in(a)
    assert (where.startswith(os.fspath(store)), version) == (True, "3.10")
    assert digest(store) == before
    assert idna_in(b)[0].startswith(os.fspath(store))


def test_pip_under_exec_is_the_environments(base: Path, wheels: Path) -> None:
    store, a, _b = make_sites(base, wheels)
    before = digest(store)
    command = ["python", "-m", "pip", "uninstall", "-y", "idna"]
    result = run(*VSITE, "exec", a / "manifest.json", "--", *command)
    assert_refused(result, "outside environment")
    assert digest(store) == before


@pytest.mark.parametrize("how", ["exec", "run"])
def test_pip_in_a_python_that_is_no_venv_leaves_the_store_alone(
    base: Path, wheels: Path, how: str
) -> None:
    store, a, b = make_sites(base, wheels)
    before = digest(store)
    manifest = a / "manifest.json"
    uninstall = ["-m", "pip", "uninstall", "-y", "idna"]
    why = f"it is a root of the vsite site {manifest}"
    if how == "exec":  # the base interpreter named by path: it boots the site itself
        result = run(*VSITE, "exec", manifest, "--", interpreter(), *uninstall)
    else:  # in-process in vsite's own interpreter: in a venv, pip's own rule speaks
        result = run(*VSITE, "run", manifest, *uninstall)
        if sys.prefix != sys.base_prefix:
            why = f"outside environment {sys.prefix}"
    assert_refused(result, why)
    assert digest(store) == before
    assert idna_in(b)[0].startswith(os.fspath(store))


# -- as another user -------------------------------------------------------------------------


def test_pip_uninstall_as_a_non_root_user_leaves_the_store_alone(base: Path, wheels: Path) -> None:
    require_root()
    system = "/usr/bin/python3.11"  # pyenv's interpreters are under root's private home
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not os.access(system, os.X_OK) or here != "3.11":
        pytest.skip(f"needs {system} (another user cannot run root's pyenv Pythons)")
    store, a, _b = make_sites(base, wheels)
    src = os.path.dirname(os.path.dirname(os.path.abspath(vsite_package.__file__ or "")))
    vsite("env", a / "manifest.json", "-o", base / "a2", python=system, PYTHONPATH=src)
    home = base / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    before = digest(store)
    result = subprocess.run(
        [
            "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            os.fspath(base / "a2" / "bin" / "python"), "-m", "pip", "uninstall", "-y", "idna",
        ],
        capture_output=True,
        text=True,
        env=child_env(HOME=os.fspath(home), XDG_CACHE_HOME=os.fspath(home / ".cache"),
                      VSITE_DIR=os.fspath(home / "state"), PIP_DISABLE_PIP_VERSION_CHECK="1"),
        check=False,
        timeout=300,
    )  # fmt: skip
    assert_refused(result, f"outside environment {base / 'a2'}")
    assert digest(store) == before


def test_pip_reads_the_site_as_before(base: Path, wheels: Path) -> None:
    store, a, _ = make_sites(base, wheels)
    before = digest(store)
    pip: list[str | os.PathLike[str]] = [a / "bin" / "python", "-m", "pip"]
    commands: list[list[str | os.PathLike[str]]] = [
        ["list"],
        ["freeze"],
        ["show", "idna"],
        ["check"],
        ["inspect"],
        ["install", "--dry-run", "--no-index", "--find-links", wheels, "idna==3.11"],
    ]
    for command in commands:
        result = run(*pip, *command)
        assert result.returncode == 0, (command, result.stderr)
        if command != ["check"]:
            assert "idna" in result.stdout.lower(), (command, result.stdout)
    assert "idna==3.10" in run(*pip, "freeze").stdout.splitlines()
    assert digest(store) == before


def test_pip_install_of_a_new_distribution_goes_into_the_environment(
    base: Path, wheels: Path
) -> None:
    from tests.test_install import make_wheel

    store, a, b = make_sites(base, wheels)
    before = digest(store)
    new = make_wheel(base / "new", "brandnew", {"brandnew.py": "VALUE = 7\n"})
    result = run(a / "bin" / "python", "-m", "pip", "install", "--no-index", new)
    assert result.returncode == 0, result.stderr
    code = "import brandnew, idna; print(brandnew.VALUE, brandnew.__file__)"
    seen = run(a / "bin" / "python", "-c", code)
    assert seen.stdout.split()[0] == "7", seen.stderr
    assert seen.stdout.split()[1].startswith(os.fspath(a / "lib"))
    assert run(b / "bin" / "python", "-c", "import brandnew").returncode == 1
    assert digest(store) == before


def test_uv_pip_uninstall_leaves_the_store_alone(base: Path, wheels: Path) -> None:
    import zipfile

    uv_wheels = CACHE / "uv"
    if not list(uv_wheels.glob("uv-*.whl")):
        pip_download(uv_wheels, "--no-deps", "--only-binary=:all:", "uv==0.13.9")
    archive = sorted(uv_wheels.glob("uv-*.whl"))[0]
    uv = base / "uv"
    with zipfile.ZipFile(archive) as opened:
        member = next(n for n in opened.namelist() if n.endswith(".data/scripts/uv"))
        uv.write_bytes(opened.read(member))
    uv.chmod(0o755)
    store, a, _b = make_sites(base, wheels)
    before = digest(store)
    result = run(uv, "pip", "uninstall", "--python", a / "bin" / "python", "idna",
                 UV_NO_CACHE="1", UV_OFFLINE="1")  # fmt: skip
    assert "Traceback" not in result.stdout + result.stderr
    assert digest(store) == before
    assert idna_in(a)[0].startswith(os.fspath(store))
