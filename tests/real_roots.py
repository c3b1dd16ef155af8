"""Install roots of real wheels from the local wheel store, cached outside the repository.

``real_root("name==version")`` downloads the wheel pip picks for THIS interpreter (pip is
configured to find the local store) and installs it with ``pip install --no-deps
--no-compile --target`` into its own root, byte-compiled, built in a temporary sibling
and renamed into place. Both are cached under ``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}``.
When the wheel cannot be had the test is skipped with pip's reason, or fails with it in
required mode (``require_or_skip``, tests/conftest.py); a wheel that exists for Python
3.11 but not for this interpreter is a skip in either mode. ``pip_download`` does the
same for the suites that download their own wheel sets.

Use: ``from tests.real_roots import real_root``.
"""

from __future__ import annotations

import compileall
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require_or_skip, required_mode

__all__ = ["CACHE", "install_target", "pip_download", "real_root"]

CACHE = Path(
    os.environ.get("VSITE_TESTS_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsite-tests"
)
# One download directory per interpreter and platform: the wheel picked depends on both.
_TAG = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
WHEELS = CACHE / "wheels-by-tag" / _TAG
ROOTS = CACHE / "roots-by-tag" / _TAG
# Every pinned real wheel is known to exist for this Python: a download that fails here
# but works for it is about the interpreter, not about the store being out of reach.
REFERENCE_PYTHON = "3.11"
_HERE = "{}.{}".format(*sys.version_info[:2])
# pip warns about each configured index directory that lacks the project: noise.
_NOISE = "is ignored: it is neither a file nor a directory"


def real_root(requirement: str) -> Path:
    """The cached install root of the wheel for ``requirement`` (``name==version``)."""
    name, _, version = requirement.partition("==")
    wheel = _find_wheel(name, version) or _download(requirement, name, version)
    # Probes run with PYTHONDONTWRITEBYTECODE: without bytecode in the cached root, each
    # would compile it all again (pkg_resources and its vendored packages: ~1 s).
    return install_target(ROOTS / wheel.name[: -len(".whl")], [wheel], compile_bytecode=True)


def install_target(
    final: Path, wheels: list[Path], *, compile_bytecode: bool = False, timeout: float = 600
) -> Path:
    """``pip install --no-deps --no-compile --target`` of ``wheels`` into ``final``, once.

    Built in a temporary sibling and renamed into place, so an interrupted run never
    leaves half a directory, and concurrent test processes race harmlessly. A failed
    install skips, or fails in required mode, with pip's message.
    """
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    result = _pip(
        "install", "--no-deps", "--no-compile", "--no-index", "--target", str(temp),
        *map(str, wheels), timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(temp, ignore_errors=True)
        require_or_skip(
            f"pip install into {final} failed (exit {result.returncode}):\n{_reason(result)}"
        )
    if compile_bytecode:
        compileall.compile_dir(str(temp), quiet=2, workers=1)
    try:
        os.rename(temp, final)
    except OSError:  # another test process finished first
        shutil.rmtree(temp, ignore_errors=True)
        if not final.is_dir():
            raise
    return final


def pip_download(dest: Path, *args: str, timeout: float = 900) -> None:
    """``pip download -d DEST ARGS``. When it fails: a skip with pip's reason, or in required
    mode a failure with it; a skip in either mode when only this interpreter lacks wheels
    (the same download works for Python 3.11)."""
    dest.mkdir(parents=True, exist_ok=True)
    result = _pip("download", "-d", str(dest), *args, timeout=timeout)
    if result.returncode == 0:
        return
    wanted = " ".join(arg for arg in args if not arg.startswith("-"))
    reason = _reason(result)
    if required_mode() is not None and _only_reference_has_wheels(args, timeout):
        last = reason.splitlines()[-1] if reason else ""
        pytest.skip(f"no wheel of {wanted} for Python {_HERE} (one for {REFERENCE_PYTHON}): {last}")
    require_or_skip(f"cannot download {wanted} (pip exit {result.returncode}):\n{reason}")


def _only_reference_has_wheels(args: tuple[str, ...], timeout: float) -> bool:
    if _HERE == REFERENCE_PYTHON:
        return False
    rest = [arg for arg in args if not arg.startswith("--only-binary")]
    with tempfile.TemporaryDirectory() as tmp:
        result = _pip(
            "download", "--only-binary=:all:", "--python-version", REFERENCE_PYTHON,
            "-d", tmp, *rest, timeout=timeout,
        )  # fmt: skip
    return result.returncode == 0


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    """pip's ERROR lines (else its last lines), each cut to a readable length."""
    lines = [line for line in (result.stderr or result.stdout).splitlines() if _NOISE not in line]
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-20:]
    return "\n".join(line if len(line) <= 300 else line[:297] + "..." for line in errors)


def _download(requirement: str, name: str, version: str) -> Path:
    pip_download(WHEELS, "--no-deps", "--only-binary=:all:", requirement)
    wheel = _find_wheel(name, version)
    if wheel is None:
        require_or_skip(
            f"pip downloaded {requirement}, but no {name}-{version}-*.whl is in {WHEELS}"
        )
    return wheel


def _find_wheel(name: str, version: str) -> Path | None:
    want = _canonical(name)
    if not WHEELS.is_dir():
        return None
    for wheel in sorted(WHEELS.glob("*.whl")):
        parts = wheel.name.split("-")
        if len(parts) >= 5 and _canonical(parts[0]) == want and parts[1] == version:
            return wheel
    return None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
