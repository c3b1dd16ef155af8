"""Eight ``vsite install`` processes installing the same wheels into one store at once
(issue 14, point 3): all succeed, each wheel is one entry, whole, read-only, with a
wheel.json that agrees with what it holds, and every environment imports from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability._install_support import (
    TAG,
    alpha_wheel,
    in_env,
    install_env,
    keys,
    manifest_keys,
    many_modules_wheel,
    staged_wheel,
    store_problems,
    succeeded,
    temporaries,
    wheel_key,
)

pytest.importorskip("installer")

PROCESSES = 8

# Everything imported before the start line: the eight then race on the store itself.
INSTALL = """
import sys
import venv
import vsite.index_cache, vsite.tools.cli, vsite.tools.install, vsite.tools.shell
sys.stdin.read()  # the start line: every process waits until the test closes stdin
sys.exit(vsite.tools.cli.main(sys.argv[1:]))
"""

IMPORT_ALL = (
    "import alpha, natty, many0, many1, many1.m39\n"
    "print(alpha.VERSION, natty.KIND, many0.NAME, many1.NAME, many1.m39.N)"
)


@pytest.mark.parametrize("mode", ["compile", "half-no-compile"])
def test_eight_processes_installing_the_same_wheels_into_one_store(
    tmp_path: Path, mode: str
) -> None:
    wheels = tmp_path / "wheels"
    built = [
        alpha_wheel(wheels, 2),
        staged_wheel(wheels),
        many_modules_wheel(wheels, "many0"),
        many_modules_wheel(wheels, "many1"),
    ]
    store = tmp_path / "store"
    env = install_env(tmp_path)
    children = []
    for number in range(PROCESSES):
        extra = ["--no-compile"] if mode == "half-no-compile" and number % 2 else []
        output = tmp_path / f"env{number}" / "manifest.json"
        args = ["install", *map(os.fspath, built), "--store", os.fspath(store), "-o"]
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", INSTALL, *args, os.fspath(output), *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for child in children:  # all are started before any may go
        assert child.stdin is not None
        child.stdin.close()
        child.stdin = None  # communicate() then leaves it alone
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)  # a guard against hangs
        results.append((child.returncode, out, err))
    assert [(code, err) for code, _, err in results] == [(0, "")] * PROCESSES

    wanted = sorted(wheel_key(wheel) for wheel in built)
    assert keys(store) == wanted  # one entry per wheel
    assert sorted(os.listdir(store / "wheels")) == wanted  # and nothing else
    assert store_problems(store, strict=True) == []  # whole, read-only, recorded
    assert temporaries(store, tmp_path / "state", tmp_path / "tmpdir") == []
    for key in wanted:  # at least one process compiled: every entry holds its bytecode
        info = json.loads((store / "wheels" / key / "wheel.json").read_text("utf-8"))
        assert info["bytecode"] == [TAG], info
    for number in range(PROCESSES):
        env_dir = tmp_path / f"env{number}"
        assert manifest_keys(env_dir / "manifest.json") == [wheel_key(w) for w in built]
        assert succeeded(in_env(env_dir, IMPORT_ALL, env)) == "2 staged many0 many1 39\n"
