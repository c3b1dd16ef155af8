"""SPEC section 2, the Python API:

    `vsite.deactivate()` (or `handle.deactivate()`) — restores sys.path,
    sys.meta_path, sys.path_hooks and sys.path_importer_cache as they were; modules
    already imported stay unless asked to purge them.

For random sets of roots (tests/property/strategies.py), after activating, importing
every module of the union and ``deactivate(purge=True)``: sys.path, sys.meta_path and
sys.path_hooks equal their state before activation, sys.path_importer_cache holds no
entry for a root, a directory inside one or the site's entry, and no module of the
roots is left in sys.modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hypothesis import given, settings

from tests.property import strategies
from tests.property.workers import LayoutWorkers, run_scenario

# A quarter of the profile's examples: the same generator as the equivalence property,
# which already spends the full budget on it.
QUARTER = settings(max_examples=max(10, settings().max_examples // 4))


@QUARTER
@given(scenario=strategies.scenarios())
def test_deactivate_with_purge_leaves_no_trace(
    scenario: strategies.Scenario,
    layout_workers: LayoutWorkers,
    case_dirs: Iterator[Path],
    extensions: dict[str, bytes],
) -> None:
    _, answers = run_scenario(scenario, layout_workers, next(case_dirs), extensions, ("vsite",))
    answer = answers["vsite"]
    assert answer["residue"] == {
        "modules": [],
        "path": False,
        "meta_path": False,
        "path_hooks": False,
        "path_importer_cache": [],
    }
