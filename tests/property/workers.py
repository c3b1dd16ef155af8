"""Long-lived probe processes, one per layout, that evaluate a batch of generated cases.

A fresh interpreter per example and layout would cost more than the example itself;
instead each layout has ONE interpreter for the whole test run, driven over a pipe by
``_layout_worker.py``. Per case it installs the layout, imports everything, records the
fingerprint and undoes the layout (``deactivate(purge=True)`` for vsite), with fresh
directories per case so no cache can answer from an earlier one. The layouts' workers
run a case concurrently.

Use: ``with LayoutWorkers(("flat", "vsite"), state_dir) as workers: workers.run(case)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from tests.layouts import build_flat, child_env, normalise, shadowed, uncache
from tests.property import strategies

__all__ = ["LayoutWorkers", "case_request", "fingerprint_case", "run_scenario"]

WORKER = Path(__file__).with_name("_layout_worker.py")


class LayoutWorkers:
    """One worker process per layout, started lazily and kept until :meth:`close`."""

    def __init__(self, layouts: tuple[str, ...], state_dir: Path) -> None:
        self.layouts = layouts
        self.state_dir = state_dir
        self._procs: dict[str, tuple[subprocess.Popen[str], IO[str]]] = {}

    def __enter__(self) -> LayoutWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for proc, stderr in self._procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            stderr.close()
        self._procs.clear()

    def _proc(self, layout: str) -> tuple[subprocess.Popen[str], IO[str]]:
        found = self._procs.get(layout)
        if found is not None and found[0].poll() is None:
            return found
        env = child_env(os.fspath(self.state_dir))  # farms, index caches, bytecode
        stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in close()
        proc = subprocess.Popen(
            [sys.executable, os.fspath(WORKER), layout],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=os.fspath(self.state_dir.parent),
        )
        self._procs[layout] = (proc, stderr)
        return proc, stderr

    def run(
        self, request: dict[str, Any], layouts: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Send ``request`` to every layout's worker; return layout -> raw answer."""
        layouts = layouts or self.layouts
        line = json.dumps(request) + "\n"
        for layout in layouts:
            proc, _ = self._proc(layout)
            assert proc.stdin is not None
            proc.stdin.write(line)
            proc.stdin.flush()
        answers = {}
        for layout in layouts:
            proc, stderr = self._procs[layout]
            assert proc.stdout is not None
            reply = proc.stdout.readline()
            if not reply:
                stderr.seek(0)
                raise AssertionError(
                    f"the {layout} worker died (exit {proc.wait()}):\n{stderr.read()[-5000:]}"
                )
            answer = json.loads(reply)
            if "error" in answer:
                raise AssertionError(f"the {layout} worker failed a case:\n{answer['error']}")
            answers[layout] = answer["ok"]
        return answers


def case_request(roots: list[Path], base: Path) -> dict[str, Any]:
    """The request for the case whose roots are written under ``base``."""
    manifest = base / "manifest.json"
    manifest.write_text(
        json.dumps({"vsite": 1, "roots": [os.fspath(r) for r in roots]}), encoding="utf-8"
    )
    flat = build_flat(roots, base / "flat" / "site-packages")
    spellings = sorted(
        {spelling for b in strategies.DIST_BASES for spelling in (b, b.upper().replace("-", "_"))}
    )
    return {
        "base": os.fspath(base),
        "manifest": os.fspath(manifest),
        "roots": [os.fspath(r) for r in roots],
        "flat": os.fspath(flat),
        "shadowed": shadowed(roots),
        "names": strategies.module_names(roots),
        "top": list(strategies.TOP_NAMES),
        "spellings": spellings,
        "groups": list(strategies.EP_GROUPS),
    }


def run_scenario(
    scenario: strategies.Scenario,
    workers: LayoutWorkers,
    base: Path,
    extensions: dict[str, bytes],
    layouts: tuple[str, ...] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write ``scenario`` under ``base``, run it in ``layouts`` (default: every worker's),
    remove ``base``; return the request and each layout's answer."""
    try:
        roots = strategies.write_scenario(scenario, base, extensions)
        request = case_request(roots, base)
        answers = workers.run(request, layouts)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return request, answers


def fingerprint_case(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """A layout's answer with paths normalised to ``<site>/...`` (a root's copy of a file
    the flat site takes from another root stays marked as such: tests/layouts.py).

    A package's ``__path__`` becomes the SET of its normalised directories: vsite lists
    one directory per root holding the package, the flat layout one in all.
    """
    prefixes = [*request["roots"], request["flat"], *answer["site_paths"]]
    kept = {k: v for k, v in answer.items() if k not in ("residue", "bytecode_dir")}
    found: dict[str, Any] = normalise(
        uncache(kept, answer["bytecode_dir"]), prefixes, request["shadowed"]
    )
    found.pop("site_paths")
    for module in found["modules"].values():
        if "path" in module:
            module["path"] = sorted(set(module["path"]))
    return found
