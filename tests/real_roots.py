"""Install roots of real wheels from the local wheel store, cached outside the repository.

``real_root("name==version")`` downloads the wheel pip picks for THIS interpreter (pip is
configured to find the local store) and installs it with ``pip install --no-deps
--no-compile --target`` into its own root, byte-compiled, built in a temporary sibling
and renamed into place. Both are cached under ``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}``;
the test is skipped, with pip's reason, when the wheel cannot be had.

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
from pathlib import Path

import pytest

__all__ = ["CACHE", "install_target", "real_root"]

CACHE = Path(
    os.environ.get("VSITE_TESTS_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsite-tests"
)
# One download directory per interpreter and platform: the wheel picked depends on both.
_TAG = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
WHEELS = CACHE / "wheels-by-tag" / _TAG
ROOTS = CACHE / "roots-by-tag" / _TAG


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
    leaves half a directory, and concurrent test processes race harmlessly.
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
        pytest.fail(f"pip install into {final} failed:\n{result.stderr[-2000:]}")
    if compile_bytecode:
        compileall.compile_dir(str(temp), quiet=2, workers=1)
    try:
        os.rename(temp, final)
    except OSError:  # another test process finished first
        shutil.rmtree(temp, ignore_errors=True)
        if not final.is_dir():
            raise
    return final


def _download(requirement: str, name: str, version: str) -> Path:
    WHEELS.mkdir(parents=True, exist_ok=True)
    result = _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(WHEELS), requirement)
    wheel = _find_wheel(name, version)
    if result.returncode != 0 or wheel is None:
        reason = (result.stderr.strip() or result.stdout.strip())[-300:]
        pytest.skip(f"no wheel of {requirement} for this interpreter: {reason}")
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
