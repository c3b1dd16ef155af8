"""Helpers shared by the reliability tests: CLI runs, import-system snapshots, listings."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.children import child_env

VSITE = [sys.executable, "-m", "vsite"]


def run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=child_env() if env is None else env,
        cwd=cwd,
        check=False,
        timeout=120,  # a guard against hangs, not a timing assertion
    )


def cli_commands(manifest: Path | str) -> dict[str, list[str]]:
    """The three ways a user hands vsite a manifest on the command line."""
    path = os.fspath(manifest)
    return {
        "run": [*VSITE, "run", path, "-c", "pass"],
        "exec": [*VSITE, "exec", path, "--", sys.executable, "-c", "pass"],
        "check": [*VSITE, "check", path],
    }


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The CLI failed with ``code``, one ``vsite: error:`` line on stderr, no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("vsite: error: "), lines[0][:2000]
    assert "Traceback" not in result.stderr
    return lines[0]


def warm_imports() -> None:
    """Import what a failing activation imports lazily (vsite's own modules, json...),
    so that a snapshot taken afterwards sees only what activation itself changed."""
    import json  # noqa: F401

    import vsite._paths
    import vsite.activation
    import vsite.index
    import vsite.index_cache
    import vsite.native.detect
    import vsite.native.farm
    import vsite.pth
    import vsite.scan  # noqa: F401

    importlib.util.find_spec("vsite_reliability_no_such_module")


def listing(*roots: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every path under ``roots`` (roots included): kind, size, mtime_ns and mode."""
    found: dict[str, tuple[str, int, int, int]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [".", *dirnames, *filenames]:
                path = os.path.normpath(os.path.join(dirpath, name))
                st = os.lstat(path)
                kind = "l" if os.path.islink(path) else "d" if os.path.isdir(path) else "f"
                found[path] = (kind, st.st_size, st.st_mtime_ns, st.st_mode)
    return found


NOBODY = 65534


def require_root() -> None:
    """Skip unless this process is root on POSIX: only root can hand files to another
    user and drop to it, and root itself is never denied by permissions. Call it before
    any ``chown``, which fails (an error, not a skip) for everyone else."""
    if not hasattr(os, "fork") or os.geteuid() != 0:
        pytest.skip("needs root to drop to another user (permissions never deny root)")


def as_other_user(func: Callable[[], object]) -> object:
    """Run ``func`` in a forked child that dropped to uid/gid 65534 (nobody); return its
    result, or re-raise its exception here. Skips unless running as root on POSIX."""
    require_root()
    import pickle
    import traceback

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                outcome: tuple[str, object] = ("ok", func())
            except BaseException as exc:
                outcome = ("raised", (exc, traceback.format_exc()))
            with os.fdopen(write, "wb") as stream:
                pickle.dump(outcome, stream)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), status
    assert os.WEXITSTATUS(status) == 0, status
    assert data, "the child reported nothing"
    kind, value = pickle.loads(data)
    if kind == "raised":
        error, text = value
        raise AssertionError(f"in the child running as nobody:\n{text}") from error
    return value


def owned_by_nobody(path: Path, mode: int = 0o700) -> Path:
    """Create the directory ``path`` owned by nobody with ``mode``; return it (skips
    unless root)."""
    require_root()
    path.mkdir(mode=mode)
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return path


def warm_for_other_user() -> None:
    """Import what a child running as nobody needs: it cannot read this interpreter's
    standard library (installed under root's private home) to import it lazily."""
    import argparse  # noqa: F401  (vsite.tools.cli)
    import contextlib  # noqa: F401
    import email.message  # importlib.metadata reads METADATA with these
    import email.parser  # noqa: F401
    import encodings.utf_8_sig  # noqa: F401  (.pth files)
    import filecmp  # noqa: F401  (vsite check)
    import importlib.metadata
    import inspect  # noqa: F401
    import io  # noqa: F401
    import site  # noqa: F401
    import zlib  # noqa: F401

    import packaging.tags  # vsite check
    import packaging.version

    import vsite.native.gc
    import vsite.tools.check
    import vsite.tools.cli
    import vsite.tools.run  # noqa: F401

    # importlib.metadata loads some of its own submodules on first use (3.13:
    # ``_adapters`` only when METADATA is first read): use it once here.
    importlib.metadata.version("pytest")
    # packaging.tags (vsite check, install) reads sysconfig's build data module lazily.
    list(packaging.tags.sys_tags())
    importlib.metadata.entry_points()
    list(importlib.metadata.files("pytest") or ())
    warm_imports()
