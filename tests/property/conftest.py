"""Hypothesis profiles and the shared, expensive fixtures of the property tests.

Profiles (pick one with ``VSITE_HYPOTHESIS_PROFILE``; ``ci`` is the default, so every
run of ``scripts/test`` is bounded and deterministic):

- ``ci``: 200 examples per property, derandomized, no example database, no deadline
  (the equivalence properties talk to subprocesses).
- ``explore``: 1000 random examples, failures kept in ``.hypothesis/`` for replay.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.property import strategies
from tests.property.workers import LayoutWorkers

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
    # The explain phase re-runs a failure hundreds of times at ~0.1 s each.
    phases=[p for p in Phase if p is not Phase.explain],
)
settings.register_profile(
    "explore",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("VSITE_HYPOTHESIS_PROFILE", "ci"))


class Extensions(dict[str, bytes]):
    """Module name -> compiled extension module bytes; a short repr for hypothesis."""

    def __repr__(self) -> str:
        return f"<{len(self)} compiled extension modules>"


@pytest.fixture(scope="session")
def extensions(tmp_path_factory: pytest.TempPathFactory) -> Extensions:
    """A compiled extension module per pool name.

    The scenarios draw extension suffixes, so a property that writes them is skipped
    (with the reason) where no C compiler or Python headers are, and fails with the
    compiler's message where a build fails: never is an extension written as source.
    """
    from tests.builders import compile_extension

    build = tmp_path_factory.mktemp("extensions")
    found = Extensions()
    for name in (*strategies.TOP_NAMES, *strategies.SUB_NAMES):
        found[name] = compile_extension(build / name, name).read_bytes()
    return found


@pytest.fixture(scope="session")
def layout_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LayoutWorkers]:
    """Probe processes for the flat, vsite and naive layouts, shared by the session."""
    with LayoutWorkers(("flat", "vsite", "naive"), _state_dir(tmp_path_factory)) as workers:
        yield workers


@pytest.fixture(scope="session")
def case_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``next(case_dirs)``: a fresh, never reused directory path for one example."""

    def fresh() -> Iterator[Path]:
        base = tmp_path_factory.mktemp("cases")
        number = 0
        while True:
            number += 1
            yield base / f"c{number}"

    return fresh()


def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property-state") / "vsite"
