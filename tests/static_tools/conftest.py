"""Fixtures of the static-tools suite: the flat venv, the site, the tool venv, and a
``probe`` that runs each tool once per side and test run.

The heavy parts are cached on disk (tests/static_tools/tools.py). The site, the children's
home and the probes' results live in a directory of the test run that its pytest-xdist
workers share (the parent of each worker's base temporary directory), each made under a
file lock by whichever worker needs it first: with ``-n 2`` the site is installed once and
each tool runs once per side, whichever worker runs the test that asks.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.environment.envs import fresh_home
from tests.static_tools.tools import (
    PYTHON,
    Case,
    Probe,
    Side,
    ToolEnv,
    flat_venv,
    locked,
    pyright,
    site_dirs,
    tool_venv,
    vsite_site,
    wheels,
)


@pytest.fixture(scope="session")
def pinned_wheels() -> list[Path]:
    if sys.version_info[:2] != PYTHON:
        pytest.skip("the static-tools suite's pins are cp311 wheels: it runs on Python 3.11")
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("the static-tools suite's pins are manylinux x86_64 wheels")
    return wheels()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of this test run, shared by its xdist workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    directory = shared / "static-tools"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def home(run_dir: Path) -> Path:
    with locked(run_dir / "home.lock"):
        return fresh_home(run_dir / "home")


@pytest.fixture(scope="session")
def tools(pinned_wheels: list[Path]) -> Path:
    """The tool venv: mypy, jedi and pipdeptree, run from outside an environment."""
    return tool_venv(pinned_wheels)


@pytest.fixture(scope="session")
def pyright_command() -> Path:
    return pyright()


def _side(name: str, root: Path, home: Path, tools: Path) -> Side:
    tokens = dict.fromkeys(site_dirs(root / "bin" / "python"), "<site-packages>")
    tokens[str(tools)] = tokens[os.path.realpath(tools)] = "<tools>"
    return Side(
        name,
        ToolEnv(root, home, inside=True, tokens=tokens),
        ToolEnv(root, home, inside=False, tokens=tokens),
        tools,
    )


@pytest.fixture(scope="session")
def flat(pinned_wheels: list[Path], home: Path, tools: Path) -> Side:
    """The pip-installed venv holding the pins."""
    return _side("flat", flat_venv(pinned_wheels), home, tools)


@pytest.fixture(scope="session")
def site(pinned_wheels: list[Path], home: Path, tools: Path, run_dir: Path) -> Side:
    """vsite's site of the same pins; its environment shell is the side's root."""
    manifest = vsite_site(pinned_wheels, run_dir / "site")
    return _side("site", manifest.parent, home, tools)


@pytest.fixture(scope="session")
def probe(run_dir: Path) -> Probe:
    """Runs a case against a side in a fresh working directory, once per test run: the
    first worker to ask computes it (under a lock), the others read its JSON."""

    def run(case: Case, side: Side) -> Any:
        key = f"{case.__name__.strip('_')}-{side.name}"
        results = run_dir / "results"
        path = results / f"{key}.json"
        with locked(results / f"{key}.lock"):
            if not path.is_file():
                cwd = run_dir / "work" / key
                shutil.rmtree(cwd, ignore_errors=True)  # a failed try's
                cwd.mkdir(parents=True)
                path.write_text(json.dumps(case(side, cwd), indent=1), encoding="utf-8")
        return json.loads(path.read_text(encoding="utf-8"))

    return run
