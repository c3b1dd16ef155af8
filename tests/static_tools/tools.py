"""What the static-tools suite compares, how it is made, and how a tool runs against it.

- The FLAT side is an ordinary venv: ``python -m venv --without-pip`` on the interpreter
  behind this test run, then ``pip install --no-deps -r requirements.txt`` with pip run
  from the pinned pip wheel (so it holds exactly the pins). Built once and cached.
- The SITE side is ``vsite install -r requirements.txt --no-deps -f WHEELS --offline -o
  DIR/manifest.json`` (DIR is the environment shell, DIR/bin/python its front door), made
  once per test run from the code under test; the store is cached.
- The TOOL VENV holds the tools that look at an environment from outside it (mypy with
  ``--python-executable``, jedi's ``create_environment``, ``pipdeptree --python``): the
  pinned mypy, jedi and pipdeptree and their dependencies, nothing of the environments'
  libraries (no requests, stubs, attrs or numpy), so what they find comes from the
  environment they are pointed at.
- PYRIGHT is the pinned npm package, installed with npm into
  ``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}/pyright/VERSION`` and reused.

Everything cached lives under ``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}/static-tools``
(apart from pyright), keyed by the requirements' text (and the interpreter), built under
file locks so pytest-xdist workers share it. Wheels come from the configured indexes
with ``pip download`` (tests/real_roots.py), pyright from the npm registry: when either
cannot be had the suite skips with the tool's reason, or fails with it in required mode
(``require_or_skip``, tests/conftest.py).

A command runs the way a user runs it: inside an environment after ``source
ENV/bin/activate`` (``python`` is then ENV/bin/python), or from outside it, by path, with
the environment's interpreter named on the command line. Output is normalised as in the
environment suite (tests/environment/envs.py: ``<env>``, ``<cwd>``, ``<home>``), and
further: every directory the environment imports packages from (its site-packages, the
site's roots and its ``sys.path`` entry) reads ``<site-packages>``, the tool venv
``<tools>``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.children import child_env
from tests.conftest import require_or_skip
from tests.environment.envs import Env, base_python, cache_key, locked
from tests.real_roots import CACHE, pip_download

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "CACHE_DIR",
    "PYRIGHT_VERSION",
    "PYTHON",
    "REQUIREMENTS",
    "TOOLS",
    "Case",
    "Probe",
    "Side",
    "ToolEnv",
    "flat_venv",
    "locked",
    "pinned",
    "pyright",
    "site_dirs",
    "tool_venv",
    "vsite_site",
    "wheels",
]

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
#: The pins are cp311 wheels: the suite runs on Python 3.11 only.
PYTHON = (3, 11)
CACHE_DIR = CACHE / "static-tools"
#: The npm package ``pyright``, pinned (``npm view pyright version`` when it was written).
PYRIGHT_VERSION = "1.1.414"
PYRIGHT_DIR = CACHE / "pyright"
#: The distributions run from outside an environment; the tool venv holds them and their
#: dependencies (as the wheels' metadata declares them for this interpreter).
TOOLS = ("mypy", "jedi", "pipdeptree")
#: Variables that would make a tool colour its output; dropped (NO_COLOR=1 is set).
_COLOUR = ("FORCE_COLOR", "MYPY_FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE")
_NOISE = "is ignored: it is neither a file nor a directory"


_key = cache_key


def _requirements_key() -> str:
    return _key(REQUIREMENTS.read_text(encoding="utf-8"))


def pinned() -> dict[str, str]:
    """Canonical name -> version of every pin in requirements.txt."""
    found: dict[str, str] = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version.strip()
    return found


# -- making the environments ----------------------------------------------------------------


def wheels() -> list[Path]:
    """The pinned wheels, downloaded once per requirements text."""
    listing = CACHE_DIR / f"wheels-{_requirements_key()}.json"
    directory = CACHE_DIR / "wheels"
    with locked(CACHE_DIR / "wheels.lock"):
        if not listing.is_file():
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
                pip_download(Path(tmp), "--no-deps", "--only-binary=:all:", "-r", str(REQUIREMENTS))
                names = sorted(os.listdir(tmp))
                directory.mkdir(parents=True, exist_ok=True)
                for name in names:
                    os.replace(os.path.join(tmp, name), directory / name)
            listing.write_text(json.dumps(names, indent=1), encoding="utf-8")
    found = [directory / name for name in json.loads(listing.read_text(encoding="utf-8"))]
    missing = [str(path) for path in found if not path.is_file()]
    if missing:
        require_or_skip(f"wheels listed in {listing} are gone: {missing}; delete the listing")
    return found


def _pip_wheel(wheel_files: Sequence[Path]) -> Path:
    pip = next((w for w in wheel_files if w.name.startswith("pip-")), None)
    if pip is None:
        require_or_skip(f"{REQUIREMENTS} pins no pip wheel")
    return pip


def _venv(venv: Path, wheel_files: Sequence[Path], what: str, *requirements: str) -> Path:
    """``venv``, made once: ``python -m venv --without-pip`` + ``pip install --no-deps``."""
    stamp = venv / ".complete"
    with locked(venv.parent / f"{venv.name}.lock"):
        if not stamp.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            _checked([base_python(), "-m", "venv", "--without-pip", str(venv)], "python -m venv")
            pip = _pip_wheel(wheel_files)
            install = [str(venv / "bin" / "python"), f"{pip}/pip", "install", "--quiet",
                       "--disable-pip-version-check", "--no-deps", "--no-index",
                       "--find-links", str(pip.parent), *requirements]  # fmt: skip
            _checked(install, f"pip install into {what}")
            stamp.write_text("", encoding="utf-8")
    return venv


def flat_venv(wheel_files: Sequence[Path]) -> Path:
    """The flat side: a venv holding exactly the pins."""
    venv = CACHE_DIR / f"venv-{_key(_requirements_key(), base_python())}"
    return _venv(venv, wheel_files, "the flat venv", "-r", str(REQUIREMENTS))


def tool_venv(wheel_files: Sequence[Path]) -> Path:
    """A venv of the tools run from outside (:data:`TOOLS` and their dependencies)."""
    wanted = _closure(wheel_files, TOOLS)
    venv = CACHE_DIR / f"tools-{_key(_requirements_key(), base_python())}"
    pins = pinned()
    return _venv(venv, wheel_files, "the tool venv", *(f"{name}=={pins[name]}" for name in wanted))


def _closure(wheel_files: Sequence[Path], roots: Iterable[str]) -> list[str]:
    """``roots`` and everything they require here (Requires-Dist, markers evaluated)."""
    requires: dict[str, list[Requirement]] = {}
    for wheel in wheel_files:
        with zipfile.ZipFile(wheel) as archive:
            member = next(
                m
                for m in archive.namelist()
                if m.count("/") == 1 and m.endswith(".dist-info/METADATA")
            )
            metadata = HeaderParser().parsestr(archive.read(member).decode("utf-8"))
        name = canonicalize_name(metadata["Name"])
        requires[name] = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    wanted: set[str] = set()
    todo = [canonicalize_name(root) for root in roots]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        for requirement in requires[name]:
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return sorted(wanted)


def vsite_site(wheel_files: Sequence[Path], directory: Path) -> Path:
    """``vsite install -r requirements.txt --no-deps`` from the downloaded wheels:
    ``directory/manifest.json``, ``directory`` being the environment shell. Made once per
    ``directory`` (the test run's); the store is cached (one install at a time)."""
    manifest = directory / "manifest.json"
    stamp = directory.parent / f"{directory.name}.complete"
    with locked(directory.parent / f"{directory.name}.lock"):
        if not stamp.is_file():
            shutil.rmtree(directory, ignore_errors=True)
            command = [sys.executable, "-m", "vsite", "install", "-r", str(REQUIREMENTS),
                       "--no-deps", "--offline", "-f", str(wheel_files[0].parent),
                       "--store", str(CACHE_DIR / "store"), "-o", str(manifest)]  # fmt: skip
            with locked(CACHE_DIR / "store.lock"):
                result = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=900,
                    env=child_env(),
                )
            if result.returncode != 0:
                told = f"{result.stdout}{result.stderr}"
                raise AssertionError(f"vsite install failed (exit {result.returncode}):\n{told}")
            stamp.write_text("", encoding="utf-8")
    return manifest


def pyright() -> Path:
    """The pinned pyright's command (npm's ``node_modules/.bin/pyright``), installed once
    with ``npm install`` into the cache. Without npm or node, or when npm fails: a skip with
    the reason, or a failure in required mode."""
    final = PYRIGHT_DIR / PYRIGHT_VERSION
    command = final / "node_modules" / ".bin" / "pyright"
    with locked(PYRIGHT_DIR / f"{PYRIGHT_VERSION}.lock"):
        if not command.is_file():
            missing = [tool for tool in ("npm", "node") if shutil.which(tool) is None]
            if missing:
                require_or_skip(
                    f"{' and '.join(missing)} not found on PATH: pyright (npm) cannot run"
                )
            npm = shutil.which("npm") or "npm"
            temp = PYRIGHT_DIR / f".tmp-{PYRIGHT_VERSION}-{os.getpid()}"
            shutil.rmtree(temp, ignore_errors=True)
            temp.mkdir(parents=True)
            install = [npm, "install", "--prefix", str(temp), "--no-save", "--no-package-lock",
                       "--no-audit", "--no-fund", "--loglevel=error",
                       f"pyright@{PYRIGHT_VERSION}"]  # fmt: skip
            try:
                result = subprocess.run(
                    install, capture_output=True, text=True, check=False, timeout=600
                )
            except subprocess.TimeoutExpired:
                shutil.rmtree(temp, ignore_errors=True)
                require_or_skip(f"npm install pyright@{PYRIGHT_VERSION}: no answer in 600 s")
            if result.returncode != 0 or not (temp / "node_modules" / ".bin" / "pyright").exists():
                shutil.rmtree(temp, ignore_errors=True)
                require_or_skip(
                    f"npm install pyright@{PYRIGHT_VERSION} failed (exit {result.returncode}):\n"
                    f"{(result.stderr or result.stdout)[-3000:]}"
                )
            shutil.rmtree(final, ignore_errors=True)
            os.rename(temp, final)
    return command


def _checked(command: list[str], what: str) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=900, env=child_env()
    )
    if result.returncode != 0:
        err = "\n".join(line for line in result.stderr.splitlines() if _NOISE not in line)
        require_or_skip(f"{what} failed (exit {result.returncode}):\n{err[-3000:]}")


# -- running a tool -----------------------------------------------------------------------

#: Run by an environment's python: where it imports packages from (not the stdlib).
_SITE_DIRS = """\
import json, os, site, sys
stdlib = os.path.realpath(os.path.join(sys.base_prefix, "lib"))
seen = [p for p in [*sys.path, *site.getsitepackages()] if p]
print(json.dumps([p for p in seen if not os.path.realpath(p).startswith(stdlib + os.sep)]))
"""


def site_dirs(python: Path) -> list[str]:
    """The directories ``python`` (an environment's) imports packages from, as it names
    them and as real paths: its site-packages, a site's roots and ``sys.path`` entry."""
    result = subprocess.run(
        [str(python), "-c", _SITE_DIRS],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=child_env(),
    )
    assert result.returncode == 0, f"{python}: {result.stderr}"
    found: list[str] = json.loads(result.stdout)
    return sorted({*found, *map(os.path.realpath, found)})


class ToolEnv(Env):
    """An environment to run a tool against: ``inside`` runs a command after ``source
    ENV/bin/activate``; otherwise it runs as given, from outside (the tool is told the
    environment's python). Output reads each directory of ``tokens`` as its token too."""

    def __init__(
        self, root: Path, home: Path, *, inside: bool, tokens: dict[str, str] | None = None
    ) -> None:
        super().__init__("activate" if inside else "outside", root, home, extra={"NO_COLOR": "1"})
        self.tokens = dict(tokens or {})

    @property
    def python(self) -> Path:
        """The environment's interpreter: ``ENV/bin/python``."""
        return self.root / "bin" / "python"

    def command(self, argv: Sequence[str]) -> list[str]:
        if self.mode == "outside":
            return list(argv)
        return super().command(argv)

    def environ(self) -> dict[str, str]:
        env = super().environ()
        for name in _COLOUR:
            env.pop(name, None)
        return env

    def normal(self, text: str, cwd: Path) -> str:
        for value in sorted(self.tokens, key=len, reverse=True):
            text = re.sub(re.escape(value) + r"(?![\w.-])", self.tokens[value], text)
        return super().normal(text, cwd)


class Side(NamedTuple):
    """One of the two environments compared: ``flat`` (a pip-installed venv) or ``site``
    (vsite's), entered (``inside``) or pointed at (``outside``); ``tools`` is the tool venv."""

    name: str
    inside: ToolEnv
    outside: ToolEnv
    tools: Path


#: ``case(side, cwd) -> JSON-able value``: one tool run against one side.
Case = Callable[[Side, Path], Any]


class Probe(Protocol):
    """``probe(case, side)``: ``case``'s value for ``side``, computed once per test run."""

    def __call__(self, case: Case, side: Side) -> Any: ...
