"""Fixtures of the environment suite: the reference venv, the site, and how each is entered.

Heavy ones are session-scoped and cached on disk (tests/environment/envs.py); a test
session makes its own site directory and home. ``reference`` memoises the venv's
outcome of each case, so parametrized tests run the venv once per worker.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
from tests.environment.envs import (
    ENV_CACHE,
    MODES,
    PYTHON,
    Env,
    Runner,
    fresh_home,
    pip_venv,
    site_env,
    venv_env,
    vsite_site,
    wheels,
)

T = TypeVar("T")


@pytest.fixture(scope="session")
def pinned_wheels() -> list[Path]:
    if sys.version_info[:2] != PYTHON:
        pytest.skip("the environment suite's pins are cp311 wheels: it runs on Python 3.11")
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("the environment suite's pins are manylinux x86_64 wheels")
    return wheels()


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def venv(pinned_wheels: list[Path], home: Path) -> Env:
    return venv_env(pip_venv(pinned_wheels), home)


@pytest.fixture(scope="session")
def manifest(pinned_wheels: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``DIR/manifest.json`` of ``vsite install -r requirements.txt --no-deps``; DIR is
    its environment shell."""
    return vsite_site(ENV_CACHE / "store", tmp_path_factory.mktemp("site") / "env")


@pytest.fixture(scope="session", params=MODES)
def site(
    request: pytest.FixtureRequest,
    manifest: Path,
    home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Env:
    env = site_env(request.param, manifest, home)
    env.learn_prefix(tmp_path_factory.mktemp("prefix"))
    return env


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    return {}


@pytest.fixture
def in_venv(
    reference: dict[str, Any], venv: Env, tmp_path: Path, request: pytest.FixtureRequest
) -> Runner:
    """``in_venv(case)``: ``case(venv, cwd)``, once per test function and worker."""
    key = request.node.originalname

    def once(case: Callable[[Env, Path], T]) -> T:
        if key not in reference:
            cwd = tmp_path / "venv"
            cwd.mkdir()
            reference[key] = case(venv, cwd)
        value: T = reference[key]
        return value

    return once


@pytest.fixture
def in_site(site: Env, tmp_path: Path) -> Runner:
    """``in_site(case)``: ``case(site, cwd)`` in a fresh working directory."""

    def run(case: Callable[[Env, Path], T]) -> T:
        cwd = tmp_path / site.mode
        cwd.mkdir()
        return case(site, cwd)

    return run
