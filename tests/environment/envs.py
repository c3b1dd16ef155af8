"""The two environments this suite compares, how they are made, and how a command runs in each.

- The REFERENCE is an ordinary venv: ``python -m venv`` on the interpreter behind this
  test run (without system site packages), then ``pip install --no-deps -r
  requirements.txt`` (pip run from the pinned pip wheel, so the venv holds exactly the
  pins, pip included, and nothing ensurepip would add). Built once and cached.
- The SITE is ``vsite install -r requirements.txt --no-deps -o DIR/manifest.json``, which
  also writes the environment shell in DIR (``pyvenv.cfg``, ``bin/``, an empty
  site-packages holding vsite's boot ``.pth``, links for the wheels' data). The store is
  cached; DIR is made fresh by every test session, so it always comes from the code
  under test.

Both are cached under ``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}/environment``, keyed by
the requirements' text (and, for the venv, the interpreter). Wheels come from the
configured indexes with ``pip download`` (tests/real_roots.py): when they cannot be had
the suite skips with pip's reason, or fails in required mode (CI).

A command runs the way a user runs it (:data:`MODES`): in the venv after ``source
venv/bin/activate``; in the site through ``vsite exec DIR/manifest.json -- COMMAND``, or
after ``source DIR/bin/activate`` (the front door, no ``vsite`` process in between).
``pythonpath`` is the naive layout (roots on ``PYTHONPATH``, the store's own ``bin/``
scripts on ``PATH``), only run when ``VSITE_ENV_NAIVE=1`` asks for it: every test should
fail there, which shows that it can fail.

Every child gets the same environment: this one's without ``PYTHONPATH``, an active
manifest, an active venv or the test venv's ``bin/`` on ``PATH``; ``HOME`` is a fresh
directory of the session whose user site exists and holds a module, so a user site left
on ``sys.path`` shows. Output is normalised so the two environments compare: the
environment's directory reads ``<env>`` (and any of its ``bin/python*`` links
``<env>/bin/python``: one interpreter, whichever name a launcher used), the working
directory ``<cwd>``, the home directory ``<home>``.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple, Protocol, TypeVar

from tests.children import child_env
from tests.conftest import require_or_skip
from tests.real_roots import CACHE, pip_download

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "ENV_CACHE",
    "MODES",
    "PYTHON",
    "REQUIREMENTS",
    "VERSION",
    "Env",
    "Outcome",
    "Runner",
    "base_python",
    "cache_key",
    "data_files",
    "fresh_home",
    "locked",
    "naive_env",
    "pip_venv",
    "script_names",
    "site_env",
    "venv_env",
    "vsite_site",
    "wheels",
]

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
#: The pins are cp311 wheels: the suite runs on Python 3.11 only.
PYTHON = (3, 11)
VERSION = "{}.{}".format(*PYTHON)
ENV_CACHE = CACHE / "environment"
#: How a command is run under the site; "pythonpath" (naive) only with VSITE_ENV_NAIVE=1.
MODES = ("exec", "activate", *(("pythonpath",) if os.environ.get("VSITE_ENV_NAIVE") == "1" else ()))
#: Variables of this environment that would change what a child sees; dropped.
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONNOUSERSITE",
            "PYTHONSAFEPATH", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "CONDA_PREFIX", "VSITE_MANIFEST",
            "VSITE_SINCE", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_DATA_DIRS",
            "XDG_CONFIG_DIRS")  # fmt: skip
_DROPPED_PREFIXES = ("JUPYTER", "IPYTHON", "COVERAGE_", "PYDEVD", "DEBUGPY")
_TIMEOUT = 300.0


def cache_key(*parts: str) -> str:
    """A short digest of ``parts``: names a cached build of exactly these inputs."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


_key = cache_key


def _requirements_key() -> str:
    return _key(REQUIREMENTS.read_text(encoding="utf-8"))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One test process at a time holds ``path`` (a lock file; xdist workers share it)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _locked(name: str) -> contextlib.AbstractContextManager[None]:
    """One test process at a time (xdist workers share the cache)."""
    return locked(ENV_CACHE / f"{name}.lock")


# -- making the two environments ----------------------------------------------------------


def wheels() -> list[Path]:
    """The pinned wheels (downloaded once per requirements text)."""
    key = _requirements_key()
    listing = ENV_CACHE / f"wheels-{key}.json"
    directory = ENV_CACHE / "wheels"
    with _locked("wheels"):
        if not listing.is_file():
            with tempfile.TemporaryDirectory(dir=_mkdir(ENV_CACHE)) as tmp:
                pip_download(Path(tmp), "--no-deps", "--only-binary=:all:", "-r", str(REQUIREMENTS))
                names = sorted(os.listdir(tmp))
                _mkdir(directory)
                for name in names:
                    os.replace(os.path.join(tmp, name), directory / name)
            listing.write_text(json.dumps(names, indent=1), encoding="utf-8")
    found = [directory / name for name in json.loads(listing.read_text(encoding="utf-8"))]
    missing = [str(path) for path in found if not path.is_file()]
    if missing:
        require_or_skip(f"wheels listed in {listing} are gone: {missing}; delete the listing")
    return found


def base_python() -> str:
    """The interpreter behind this test run's venv (both environments are made on it)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def pip_venv(wheel_files: Sequence[Path]) -> Path:
    """The reference venv: ``python -m venv`` + ``pip install --no-deps -r requirements.txt``."""
    python = base_python()
    venv = ENV_CACHE / f"venv-{_key(_requirements_key(), python)}"
    stamp = venv / ".complete"
    with _locked(venv.name):
        if not stamp.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            _checked([python, "-m", "venv", "--without-pip", str(venv)], "python -m venv")
            pip = next((w for w in wheel_files if w.name.startswith("pip-")), None)
            if pip is None:
                require_or_skip(f"{REQUIREMENTS} pins no pip wheel")
            install = [str(venv / "bin" / "python"), f"{pip}/pip", "install", "--quiet",
                       "--disable-pip-version-check", "--no-deps", "--no-index",
                       "--find-links", str(pip.parent), "-r", str(REQUIREMENTS)]  # fmt: skip
            _checked(install, "pip install into the reference venv")
            stamp.write_text("", encoding="utf-8")
    return venv


def vsite_site(store: Path, directory: Path) -> Path:
    """``vsite install -r requirements.txt --no-deps -o DIRECTORY/manifest.json``: the
    manifest, and the environment shell in ``directory``. The store is shared by every
    session (one install at a time: the first unpacks, the rest reuse)."""
    manifest = directory / "manifest.json"
    command = [sys.executable, "-m", "vsite", "install", "-r", str(REQUIREMENTS), "--no-deps",
               "--store", str(store), "-o", str(manifest)]  # fmt: skip
    with _locked("store"):
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=900, env=child_env()
        )
    if result.returncode != 0:
        raise AssertionError(
            f"vsite install failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return manifest


def _checked(command: list[str], what: str) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=900, env=child_env()
    )
    if result.returncode != 0:
        noise = "is ignored: it is neither a file nor a directory"
        err = "\n".join(line for line in result.stderr.splitlines() if noise not in line)
        require_or_skip(f"{what} failed (exit {result.returncode}):\n{err[-3000:]}")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def fresh_home(directory: Path) -> Path:
    """A home for the children: its user site exists and holds ``user_site_marker``."""
    user_site = directory / ".local" / "lib" / f"python{VERSION}" / "site-packages"
    _mkdir(user_site)
    (user_site / "user_site_marker.py").write_text("", encoding="utf-8")
    return directory


# -- what the wheels declare --------------------------------------------------------------


def script_names(wheel_files: Sequence[Path]) -> list[str]:
    """Every console_scripts and gui_scripts name the wheels declare."""
    names: set[str] = set()
    for wheel in wheel_files:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.count("/") == 1 and member.endswith(".dist-info/entry_points.txt"):
                    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
                    parser.optionxform = str  # type: ignore[assignment,method-assign]
                    parser.read_string(archive.read(member).decode("utf-8"))
                    for group in ("console_scripts", "gui_scripts"):
                        if parser.has_section(group):
                            names.update(parser.options(group))
    return sorted(names)


def data_files(wheel_files: Sequence[Path]) -> dict[str, str]:
    """Each file of the wheels' ``.data/data`` scheme, as a path relative to the prefix
    where a venv installs it -> the sha256 of its contents."""
    found: dict[str, str] = {}
    for wheel in wheel_files:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                top, _, rest = member.partition("/")
                scheme, _, relative = rest.partition("/")
                if top.endswith(".data") and scheme == "data" and relative:
                    found[relative] = hashlib.sha256(archive.read(member)).hexdigest()
    return dict(sorted(found.items()))


# -- running a command in an environment --------------------------------------------------


class Outcome(NamedTuple):
    """A finished command: exit status and its output, normalised."""

    code: int
    out: str
    err: str

    def ok(self) -> str:
        """The output of a command that must have succeeded."""
        assert self.code == 0, f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"
        return self.out


T = TypeVar("T")


class Runner(Protocol):
    """Runs a case, ``case(env, cwd) -> outcome``, in one environment (the fixtures
    ``in_venv`` and ``in_site``)."""

    def __call__(self, case: Callable[[Env, Path], T]) -> T: ...


class Env:
    """One environment and the way a command is run in it (``mode``)."""

    def __init__(
        self,
        mode: str,
        root: Path,
        home: Path,
        *,
        manifest: Path | None = None,
        extra: dict[str, str] | None = None,
        path: Sequence[Path] = (),
    ) -> None:
        self.mode = mode
        self.root = root
        self.home = home
        self.manifest = manifest
        self.extra = dict(extra or {})
        self.path = list(path)
        self.prefixes = [str(root)]

    def __repr__(self) -> str:
        return f"Env({self.mode}, {self.root})"

    def command(self, argv: Sequence[str]) -> list[str]:
        if self.mode == "exec":
            assert self.manifest is not None
            return [sys.executable, "-m", "vsite", "exec", str(self.manifest), "--", *argv]
        if self.mode in ("venv", "activate"):
            # As a user's shell: `source ENV/bin/activate`, then the command.
            return ["bash", "-c", '. "$0/bin/activate" && exec "$@"', str(self.root), *argv]
        return list(argv)

    def environ(self) -> dict[str, str]:
        env = child_env()
        for key in list(env):
            if key in _DROPPED or key.startswith(_DROPPED_PREFIXES):
                del env[key]
        test_bin = os.path.realpath(os.path.join(sys.prefix, "bin"))
        kept = [p for p in env.get("PATH", "").split(os.pathsep) if p]
        kept = [p for p in kept if os.path.realpath(p) != test_bin]
        env["PATH"] = os.pathsep.join([*map(str, self.path), *kept])
        env["HOME"] = str(self.home)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(self.extra)
        return env

    def run(self, argv: Sequence[str], cwd: Path, *, timeout: float = _TIMEOUT) -> Outcome:
        """``argv`` in this environment, from ``cwd``; its outcome, normalised."""
        result = subprocess.run(
            self.command(argv),
            cwd=cwd,
            env=self.environ(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        return Outcome(
            result.returncode, self.normal(result.stdout, cwd), self.normal(result.stderr, cwd)
        )

    def learn_prefix(self, cwd: Path) -> str:
        """``sys.prefix`` of this environment's ``python``; read ``<env>`` too when it is
        an environment of its own (``vsite exec`` may run its shell from elsewhere)."""
        prefix = self.run(["python", "-c", "import sys; print(sys.prefix)"], cwd).ok().strip()
        if prefix.startswith("/") and Path(prefix, "pyvenv.cfg").is_file():
            self.prefixes.append(prefix)
        return prefix

    def normal(self, text: str, cwd: Path) -> str:
        """``text`` with the environment, the working and the home directory as tokens."""
        tokens: dict[str, str] = {}
        for prefix in self.prefixes:
            tokens[prefix] = tokens[os.path.realpath(prefix)] = "<env>"
        for path, token in ((cwd, "<cwd>"), (self.home, "<home>")):
            tokens[str(path)] = tokens[os.path.realpath(path)] = token
        for value in sorted(tokens, key=len, reverse=True):
            text = re.sub(re.escape(value) + r"(?![\w.-])", tokens[value], text)
        return re.sub(r"<env>/bin/python(?:3(?:\.\d+)?)?(?![\w.-])", "<env>/bin/python", text)


def venv_env(venv: Path, home: Path) -> Env:
    return Env("venv", venv, home)


def site_env(mode: str, manifest: Path, home: Path) -> Env:
    if mode == "pythonpath":
        return naive_env(manifest, home)
    return Env(mode, manifest.parent, home, manifest=manifest)


def naive_env(manifest: Path, home: Path) -> Env:
    """The roots on ``PYTHONPATH``, the store's ``bin/`` scripts on ``PATH``, the base
    interpreter as ``python``: what a site looks like without vsite."""
    from vsite.manifest import Manifest

    roots = [root.path for root in Manifest.load(manifest).roots]
    directory = manifest.parent.parent / "naive"
    bin_dir = _mkdir(directory / "bin")
    python = bin_dir / "python"
    if not python.exists():
        python.symlink_to(base_python())
    scripts = [Path(root).parent / "bin" for root in roots]
    return Env(
        "pythonpath",
        directory,
        home,
        extra={"PYTHONPATH": os.pathsep.join(roots)},
        path=[bin_dir, *(s for s in scripts if s.is_dir())],
    )
