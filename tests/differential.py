"""Differential runs: one probe under the layouts of tests/layouts.py, outputs compared.

``flat`` (the roots' union in one directory, first root wins: SPEC section 1's
reference), ``vsite``, and the two controls that plain ``sys.path`` entries give:
``naive`` (no ``.pth`` file runs) and ``addsitedir`` (pex's ``site.addsitedir`` per
root, so each root's ``.pth`` files run, root after root).

A probe is Python source that prints ONE JSON document on stdout. It runs in a fresh
interpreter (this one's ``sys.executable``; no PYTHONPATH, no VSITE_*, no bytecode
written) whose ``sys.path[0]`` is not the probe's directory. Its globals hold
``LAYOUT``, ``SITE_ENTRIES`` (the sys.path entries the layout added) and ``ROOT_DIRS``
(where each root's files are: the roots, or the flat directory for every root; a probe
adds files there to see them appear).

Every absolute path of the flat directory, of any root and of vsite's site entry is
rewritten to ``<site>`` in the output, so ``<site>/pkg/mod.py`` compares across layouts;
a path to a root's copy of a file that the flat site takes from another root keeps
that fact (tests/layouts.py ``normalise``), so taking the wrong copy is a difference.
Bytecode in vsite's per-user cache (``<cache>/<real dir>/mod.<tag>.pyc``, the
``sys.pycache_prefix`` layout) is first rewritten to where the flat directory keeps it
(``<real dir>/__pycache__/mod.<tag>.pyc``): ``__cached__`` compares too.
An object ``{"__set__": [...]}`` in the output becomes the sorted list of its distinct
items AFTER that rewriting (three portions of ``ns`` in three roots are one
``<site>/ns``).

Use: ``from tests.differential import assert_equivalent, run_layouts``.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from tests.layouts import (
    FILE,
    LAYOUTS,
    SITE,
    build_flat,
    bytecode_dir,
    child_env,
    kept_roots,
    normalise,
    shadowed,
    uncache,
)

__all__ = [
    "DEFAULT_LAYOUTS",
    "LAYOUTS",
    "SITE",
    "Run",
    "assert_equivalent",
    "build_flat",
    "controls",
    "kept_roots",
    "normalise",
    "run_layouts",
    "run_probe",
    "uncache",
]

#: What run_layouts runs unless told: the reference, vsite and the naive control.
DEFAULT_LAYOUTS = ("flat", "vsite", "naive")

# Runs the probe under one layout. argv: layout, config file, probe file.
_RUNNER = """\
import json, sys
del sys.path[0]  # this runner's own directory
before = list(sys.path)
layout, config_file, probe_file = sys.argv[1:4]
del sys.argv[1:]
with open(config_file, encoding="utf-8") as stream:
    config = json.load(stream)
layouts = type(sys)("_layouts")  # tests/layouts.py, without a `tests` package here
layouts.__file__ = config["layouts"]
with open(config["layouts"], encoding="utf-8") as stream:
    exec(compile(stream.read(), config["layouts"], "exec"), layouts.__dict__)
_, handle = layouts.enter(
    layout, roots=config["roots"], flat=config["flat"], manifest=config["manifest"]
)
with open(config["meta"], "w", encoding="utf-8") as stream:
    json.dump({"site_paths": [handle.site_path] if handle is not None else []}, stream)
with open(probe_file, encoding="utf-8") as _stream:
    _code = compile(_stream.read(), probe_file, "exec")
exec(_code, {
    "__name__": "__main__",
    "__file__": probe_file,
    "__builtins__": __builtins__,
    "LAYOUT": layout,
    "SITE_ENTRIES": [e for e in sys.path if e not in before],
    "ROOT_DIRS": [config["flat"]] * len(config["roots"]) if layout == "flat" else config["roots"],
})
"""


class Run:
    """One layout's result: the probe's JSON output and stderr, paths normalised."""

    __slots__ = ("layout", "output", "stderr")

    def __init__(self, layout: str, output: Any, stderr: str) -> None:
        self.layout = layout
        self.output = output
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"Run({self.layout!r}, {self.output!r})"


def run_probe(
    layout: str,
    roots: list[Path],
    probe: str,
    work: Path,
    *,
    env: dict[str, str] | None = None,
    flat: Path | None = None,
) -> Run:
    """Run ``probe`` under one layout; ``work`` is a fresh directory for its files."""
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.json"
    manifest.write_text(
        json.dumps({"vsite": 1, "roots": [os.fspath(r) for r in roots]}), encoding="utf-8"
    )
    config: dict[str, Any] = {
        "manifest": os.fspath(manifest),
        "roots": [os.fspath(r) for r in roots],
        "flat": os.fspath(flat) if flat is not None else "",
        "meta": os.fspath(work / f"{layout}.meta.json"),
        "layouts": FILE,
    }
    (work / "config.json").write_text(json.dumps(config), encoding="utf-8")
    runner_dir = work / "runner"
    runner_dir.mkdir(exist_ok=True)
    (runner_dir / "run.py").write_text(_RUNNER, encoding="utf-8")
    probe_file = work / "probe.py"
    probe_file.write_text(textwrap.dedent(probe), encoding="utf-8")
    command = [sys.executable, os.fspath(runner_dir / "run.py"), layout]
    command += [os.fspath(work / "config.json"), os.fspath(probe_file)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=child_env(os.fspath(work / "state"), env),
        cwd=os.fspath(runner_dir),
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"probe failed under the {layout} layout (exit {result.returncode}):\n"
            f"{result.stderr}\n--- stdout ---\n{result.stdout}"
        )
    try:
        output = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(
            f"probe under the {layout} layout did not print one JSON document:\n"
            f"{result.stdout}\n--- stderr ---\n{result.stderr}"
        ) from None
    meta = json.loads(Path(config["meta"]).read_text(encoding="utf-8"))
    prefixes = [*roots, *([flat] if flat is not None else []), *meta["site_paths"]]
    cache = bytecode_dir(os.fspath(work / "state"))
    output, stderr = uncache(output, cache), uncache(result.stderr, cache)
    marks = shadowed(roots)
    return Run(layout, normalise(output, prefixes, marks), normalise(stderr, prefixes, marks))


def run_layouts(
    roots: list[Path],
    probe: str,
    tmp_path: Path,
    *,
    layouts: tuple[str, ...] = DEFAULT_LAYOUTS,
    env: dict[str, str] | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Run ``probe`` under each of ``layouts`` (of tests/layouts.py ``LAYOUTS``);
    return layout -> normalised JSON output.

    With ``full``, the values are :class:`Run` objects (output and stderr).
    """
    roots = [Path(r).absolute() for r in roots]
    work = Path(tempfile.mkdtemp(prefix="layouts-", dir=tmp_path))
    flat = build_flat(roots, work / "flat" / "site-packages") if "flat" in layouts else None
    runs = {
        layout: run_probe(layout, roots, probe, work / layout, env=env, flat=flat)
        for layout in layouts
    }
    return runs if full else {layout: run.output for layout, run in runs.items()}


def controls(roots: list[Path]) -> tuple[str, ...]:
    """The layouts of plain ``sys.path`` entries that could give ``roots``' flat answer:
    ``naive``, and ``addsitedir`` too when a root holds a ``.pth`` file (without one it
    is the naive layout exactly)."""
    has_pth = any(name.endswith(".pth") for root in roots for name in os.listdir(root))
    return ("naive", "addsitedir") if has_pth else ("naive",)


def assert_equivalent(
    roots: list[Path],
    probe: str,
    tmp_path: Path,
    *,
    naive_differs: bool = False,
    differs: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Any:
    """Assert vsite's output equals the flat layout's; return that output.

    With ``naive_differs``, also assert that plain sys.path entries get this wrong: the
    output of every layout of :func:`controls` is NOT the flat one's. For roots with
    ``.pth`` files that includes running them root by root (``addsitedir``, as pex
    does), so the check holds only if vsite does more than run ``.pth`` files at all.
    ``differs`` names the controls that must differ instead, for a claim that holds
    against some of them only (say in the test which one gets it right, and why).
    """
    checked = differs or (controls(roots) if naive_differs else ())
    results = run_layouts(roots, probe, tmp_path, layouts=("flat", "vsite", *checked), env=env)
    assert results["vsite"] == results["flat"], _diff(results)
    for layout in checked:
        assert results[layout] != results["flat"], (
            f"the {layout} layout gives the flat answer too, so this check proves nothing:\n"
            + json.dumps(results["flat"], indent=1, sort_keys=True)
        )
    return results["flat"]


def _diff(results: dict[str, Any]) -> str:
    flat = json.dumps(results["flat"], indent=1, sort_keys=True).splitlines()
    vsite = json.dumps(results["vsite"], indent=1, sort_keys=True).splitlines()
    return "vsite differs from the flat layout:\n" + "\n".join(
        difflib.unified_diff(flat, vsite, "flat", "vsite", lineterm="")
    )
