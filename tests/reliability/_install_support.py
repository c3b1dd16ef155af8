"""Helpers of the ``vsite install`` crash, full-disk and concurrency tests (issue 14, 3).

* wheels built with ``make_wheel`` (tests/test_install.py);
* ``vsite install`` in a real subprocess, plain or through :data:`DRIVER`, a ``python -c``
  program that wraps one function (of vsite, ``installer``, ``py_compile`` or ``os``) to
  SIGKILL itself, or to fill a file system, at one exact call, then runs
  ``vsite.tools.cli.main``;
* what a store should hold: :func:`store_problems` checks every entry against its
  ``wheel.json`` record, its RECORD hashes, its bytecode tags and its modes;
* a tmpfs mounted for one test (:func:`tmpfs`), and :func:`fill` to fill one up.
"""

from __future__ import annotations

import base64
import csv
import errno
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.children import child_env
from tests.test_install import make_wheel

TAG = sys.implementation.cache_tag
VSITE = [sys.executable, "-m", "vsite"]

# A python -c program: DRIVER STAGE PATCH [vsite arguments...]. PATCH is Python run
# first with ``around``, ``kill``, ``fill`` and ``STAGE`` at hand; it wraps the function
# to stop at. ``kill`` says where it stops on stdout, then sends itself SIGKILL.
DRIVER = r"""
import errno, os, signal, sys

STAGE = sys.argv[1]


def kill(stage):
    sys.stdout.write("vsite-test: killed at " + stage + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def fill(stage):
    '''Fill the file system of $VSITE_TEST_FILL (another writer took the space).'''
    path = os.path.join(os.environ["VSITE_TEST_FILL"], "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    sys.stdout.write("vsite-test: filled at " + stage + "\n")
    sys.stdout.flush()


def around(owner, name, stage, when=None, after=False, nth=1, action=kill):
    '''Wrap owner.name: its nth call that ``when`` accepts runs ``action`` before
    (or after) the real call.'''
    real = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        if when is not None and not when(*args, **kwargs):
            return real(*args, **kwargs)
        calls[0] += 1
        if calls[0] != nth:
            return real(*args, **kwargs)
        if not after:
            action(stage)
        result = real(*args, **kwargs)
        if after:
            action(stage)
        return result

    setattr(owner, name, wrapper)


exec(sys.argv[2])
from vsite.tools.cli import main

sys.exit(main(sys.argv[3:]))
"""


# -- wheels -----------------------------------------------------------------------------


def alpha_wheel(directory: Path, version: int) -> Path:
    """``alpha`` VERSION 1 (two modules) or 2 (three modules, a console script, a data
    file): the wheel a crashed install replaces an environment's alpha 1 with."""
    if version == 1:
        return make_wheel(
            directory,
            "alpha",
            {"alpha": {"__init__.py": "VERSION = 1\n", "util.py": "X = 1\n"}},
            version="1.0",
        )
    return make_wheel(
        directory,
        "alpha",
        {
            "alpha": {
                "__init__.py": ("VERSION = 2\n\n\ndef main():\n    print('alpha-cli', VERSION)\n"),
                "util.py": "X = 2\n",
                "more.py": "Y = 2\n",
            }
        },
        version="2.0",
        entry_points="[console_scripts]\nalpha-cli = alpha:main\n",
        data={"data": {"share": {"alpha": {"readme.txt": "alpha 2\n"}}}},
    )


def many_modules_wheel(directory: Path, name: str, modules: int = 40) -> Path:
    """A pure wheel of ``modules`` modules (a longer unpack and compile)."""
    tree = {f"m{n}.py": f"N = {n}\n" for n in range(modules)}
    tree["__init__.py"] = f"NAME = {name!r}\n"
    return make_wheel(directory, name, {name: tree})


def staged_wheel(directory: Path) -> Path:
    """``natty``: a package holding a ``.so`` file (no real code in it), so the runtime
    stages it in the farm (detection is by name); importing it needs the farm."""
    return make_wheel(
        directory,
        "natty",
        {"natty": {"__init__.py": "KIND = 'staged'\n", "_fake.so": b"\x7fELF not loaded"}},
    )


def big_wheel(directory: Path, size: int) -> Path:
    """``big`` with a data file of ``size`` incompressible (seeded) bytes."""
    blob = random.Random(14).getrandbits(size * 8).to_bytes(size, "little")
    return make_wheel(directory, "big", {"big": {"__init__.py": "N = 1\n", "blob.bin": blob}})


def wheel_key(wheel: Path) -> str:
    """The store key of ``wheel``: the sha256 of the file."""
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


# -- running ----------------------------------------------------------------------------


def install_env(base: Path, **extra: str) -> dict[str, str]:
    """A child environment of its own: vsite's state dir and TMPDIR under ``base``
    (a killed install leaves its ``vsite-download-*`` there, not in /tmp), pip offline."""
    tmp = base / "tmpdir"
    tmp.mkdir(exist_ok=True)
    settings = {
        "VSITE_DIR": str(base / "state"),
        "TMPDIR": str(tmp),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    settings.update(extra)
    return child_env(**settings)


def run(
    args: Sequence[str | os.PathLike[str]], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.fspath(arg) for arg in args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=120,  # a guard against hangs, not a timing assertion
    )


def install(
    items: Sequence[str | os.PathLike[str]],
    store: Path,
    manifest: Path,
    env: dict[str, str],
    *extra: str,
) -> subprocess.CompletedProcess[str]:
    """``vsite install ITEMS --store STORE -o MANIFEST EXTRA`` (it writes the environment
    beside the manifest)."""
    return run([*VSITE, "install", *items, "--store", store, "-o", manifest, *extra], env)


def driven(
    stage: str, patch: str, args: Sequence[str | os.PathLike[str]], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``vsite ARGS`` through :data:`DRIVER` with ``patch`` applied first."""
    return run([sys.executable, "-c", DRIVER, stage, patch, *args], env)


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a clean exit 0 without a traceback; return stdout."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout


def in_env(env_dir: Path, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``ENV/bin/python -c CODE``: the front door of the environment."""
    return run([env_dir / "bin" / "python", "-c", code], env)


# -- the store --------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def entry_problems(entry: Path, *, strict: bool) -> list[str]:
    """What is wrong with the store entry ``entry`` (a directory under a final key).

    Always: wheel.json readable and naming this key; every file its record (``files``)
    lists there with its size; every file RECORD lists with its hash; every module
    compiled for each tag of ``bytecode``. ``strict`` (a store no install is killed in):
    also nothing but wheel.json outside the record, and nothing writable. Without it (a
    killed install's entry in the window before the next one), pycs outside the record
    and write bits are allowed: a killed compile leaves them, and the next install of
    the wheel puts them right.
    """
    name = entry.name
    try:
        info = json.loads((entry / "wheel.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{name}: wheel.json cannot be read: {exc}"]
    problems: list[str] = []
    if not isinstance(info, dict) or info.get("sha256") != name:
        return [f"{name}: wheel.json names another key or is not an object: {info!r:.200}"]
    on_disk: dict[str, int] = {}
    writable: list[str] = []
    for dirpath, dirnames, filenames in os.walk(entry):
        for item in [".", *dirnames, *filenames]:
            path = os.path.normpath(os.path.join(dirpath, item))
            st = os.lstat(path)
            rel = os.path.relpath(path, entry)
            if not os.path.islink(path) and st.st_mode & 0o222:
                writable.append(rel)
            if item in filenames:
                on_disk[rel.replace(os.sep, "/")] = st.st_size
    recorded = info.get("files")
    if isinstance(recorded, dict):
        for rel, size in sorted(recorded.items()):
            if rel not in on_disk:
                problems.append(f"{name}: {rel} is recorded but missing")
            elif on_disk[rel] != size:
                problems.append(f"{name}: {rel} is {on_disk[rel]} bytes, recorded {size}")
        for rel in sorted(set(on_disk) - set(recorded) - {"wheel.json"}):
            if strict or "/__pycache__/" not in rel:
                problems.append(f"{name}: {rel} is not in the entry's record")
    root = entry / "site-packages"
    for dist_info in sorted(root.glob("*.dist-info")):
        text = (dist_info / "RECORD").read_text("utf-8")
        for row in csv.reader(io.StringIO(text)):
            if len(row) < 2 or not row[1]:
                continue
            listed = root / row[0]
            if not listed.is_file():
                problems.append(f"{name}: {row[0]} (in RECORD) is missing")
            elif _sha256(listed) != row[1]:
                problems.append(f"{name}: {row[0]} does not match its RECORD hash")
    tags = info.get("bytecode") or []
    for source in sorted(root.rglob("*.py")):
        for tag in tags:
            pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            if not pyc.is_file():
                problems.append(f"{name}: {tag} recorded, {pyc.relative_to(entry)} missing")
    if strict and writable:
        problems.append(f"{name}: writable in a read-only store entry: {sorted(writable)}")
    return problems


def store_problems(store: Path, *, strict: bool) -> list[str]:
    """:func:`entry_problems` of every entry under ``store/wheels``; with ``strict``, a
    ``.tmp-*`` (or any other dot) directory left there is a problem too."""
    wheels = store / "wheels"
    if not wheels.exists():
        return []
    problems: list[str] = []
    for name in sorted(os.listdir(wheels)):
        if name.startswith("."):
            if strict:
                problems.append(f"{name}: temporary directory left in {wheels}")
            continue
        if len(name) != 64:
            problems.append(f"{name}: not a store key")
            continue
        problems += entry_problems(wheels / name, strict=strict)
    return problems


def keys(store: Path) -> list[str]:
    """The final keys under ``store/wheels`` (no temporaries)."""
    wheels = store / "wheels"
    return sorted(n for n in os.listdir(wheels) if not n.startswith(".")) if wheels.exists() else []


def temporaries(*directories: Path) -> list[str]:
    """Temporary files and directories anywhere under ``directories``: ``.tmp-*``,
    ``*.tmp`` (write_atomic's), ``vsite-download-*``."""
    found: list[str] = []
    for top in directories:
        for dirpath, dirnames, filenames in os.walk(top):
            for item in dirnames + filenames:
                if item.startswith((".tmp-", "vsite-download-")) or item.endswith(".tmp"):
                    found.append(os.path.relpath(os.path.join(dirpath, item), top))
            dirnames[:] = [d for d in dirnames if not d.startswith(".tmp-")]
    return sorted(found)


def manifest_keys(manifest: Path) -> list[str]:
    """The store keys a manifest written by ``vsite install`` lists, in order."""
    roots = json.loads(manifest.read_text("utf-8"))["roots"]
    paths = [root if isinstance(root, str) else root["path"] for root in roots]
    return [Path(path).parent.name for path in paths]


# -- file systems -----------------------------------------------------------------------


@contextmanager
def tmpfs(path: Path, size: str, *, inodes: int | None = None, mode: int = 0o755) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount`` syntax: ``2m``) mounted at the new directory
    ``path`` for the block, unmounted after (lazily when still busy). Skips where this
    process may not mount one (not Linux, not root, no CAP_SYS_ADMIN in a container)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a small file system is made with a Linux tmpfs mount")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount command to make a small file system with")
    path.mkdir()
    options = f"size={size},mode={mode:o}" + ("" if inodes is None else f",nr_inodes={inodes}")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "vsite-test", os.fspath(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = mounted.stderr.strip() or f"exit {mounted.returncode}"
        pytest.skip(f"cannot mount a tmpfs here ({reason}): needs CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        unmounted = subprocess.run(["umount", os.fspath(path)], capture_output=True, check=False)
        if unmounted.returncode != 0:
            subprocess.run(["umount", "-l", os.fspath(path)], capture_output=True, check=False)


def grow(mount: Path, size: str) -> None:
    """Give the tmpfs at ``mount`` the new ``size`` (its files are kept)."""
    subprocess.run(
        ["mount", "-o", f"remount,size={size}", os.fspath(mount)], check=True, capture_output=True
    )


def fill(directory: Path, *, leave_blocks: int = 0) -> Path:
    """Fill the file system holding ``directory`` with the file ``directory/filler``,
    leaving ``leave_blocks`` blocks free; return the filler."""
    filler = directory / "filler"
    block = os.statvfs(directory).f_bsize
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            os.write(fd, bytes(block))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - size % block - leave_blocks * block))
    assert os.statvfs(directory).f_bavail == leave_blocks
    return filler


def free_blocks(directory: Path) -> int:
    return os.statvfs(directory).f_bavail


def listing(top: Path) -> list[str]:
    """Every path under ``top``, relative, directories with a trailing ``/``."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for name in dirnames:
            found.append(os.path.normpath(os.path.join(rel, name)) + "/")
        for name in filenames:
            found.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(found)
