"""SPEC section 1, the equivalence rule, over random sets of roots:

    For a manifest listing roots R1..Rn, a Python process with vsite active must behave
    as if the union of R1..Rn had been installed into ONE site-packages directory S
    placed where site-packages normally sits on `sys.path` [...], with one difference
    that is a rule, not a bug: when two roots hold the same relative file, the earlier
    root in manifest order wins.

with its consequences: flat precedence over the union (package > module > namespace;
suffix order), every portion of a split package in ``__path__``, the ``__init__`` of
the first root that has one, every distribution visible to importlib.metadata and the
backport, and a root repeating an earlier root's distribution dropped whole.

The fingerprint of a case (tests/property/_layout_worker.py): for every module name of
the union, the root-relative file it came from, its marker (which root wrote it), its
standard loader class, ``__cached__``, and for packages the set of ``__path__``
directories, ``pkgutil.iter_modules`` over them and one level of resources; or the
exception its import raised. Then ``pkgutil.iter_modules()`` over the site's entry,
and for both metadata APIs the case's distributions (name, version, entry points,
files), its entry points by group and ``version()`` of several spellings of each name.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import event, given, note

from tests.property import strategies
from tests.property.workers import LayoutWorkers, fingerprint_case, run_scenario


@given(scenario=strategies.scenarios())
def test_vsite_fingerprint_equals_the_flat_one(
    scenario: strategies.Scenario,
    layout_workers: LayoutWorkers,
    case_dirs: Iterator[Path],
    extensions: dict[str, bytes],
) -> None:
    request, answers = run_scenario(scenario, layout_workers, next(case_dirs), extensions)
    flat, vsite, naive = (
        fingerprint_case(answers[layout], request) for layout in ("flat", "vsite", "naive")
    )
    _classify(scenario, flat)
    # The naive layout is no reference: only counted (--hypothesis-show-statistics).
    event("naive layout differs from flat" if naive != flat else "naive layout equals flat")
    note(f"flat fingerprint: {json.dumps(flat, indent=1, sort_keys=True)}")
    assert vsite == flat, _diff(flat, vsite)


def _classify(scenario: strategies.Scenario, flat: dict[str, Any]) -> None:
    """Label the example, so the statistics show the generator covers what it should."""
    event(f"{len(scenario)} roots")
    bases = [strategies.canonical(root.dist.name) for root in scenario if root.dist]
    if len(bases) != len(set(bases)):
        event("a distribution repeated in a later root")
    kinds: dict[str, set[str]] = {}
    for root in scenario:
        for name, node in root.tree:
            kinds.setdefault(name, set()).add(strategies.node_kind(node))
    if any(len(found) > 1 for found in kinds.values()):
        event("one top-level name of several kinds across roots")
    modules = flat["modules"].values()
    if any(len(m.get("path", ())) and "Namespace" in m["loader"] for m in modules):
        event("a namespace package")
    if any("error" in m for m in modules):
        event("an import that fails")


def _diff(flat: Any, vsite: Any) -> str:
    lines = difflib.unified_diff(
        json.dumps(flat, indent=1, sort_keys=True).splitlines(),
        json.dumps(vsite, indent=1, sort_keys=True).splitlines(),
        "flat",
        "vsite",
        lineterm="",
    )
    return "vsite differs from the flat layout:\n" + "\n".join(lines)
