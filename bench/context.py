"""What every section is handed: the options, the trees, how to start children, and the
report the sections add to."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from measure import Spread
from spawn import Runner, clean_env
from trees import Tree, venv_python

__all__ = ["Context"]


class Context:
    """One bench run: built by the runner, read by the sections, written to by them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python: str = args.python  # the children's base interpreter
        self.base: Path = args.trees_dir
        self.sizes: tuple[int, ...] = tuple(args.sizes)
        self.rounds: int = args.rounds
        self.src: Path = args.src  # the vsite source tree the children measure
        self.boot_dir = self.src / "vsite" / "_boot"
        #: argv of the vsite command, and what its environment needs on top of ``env``
        self.vsite_cli: list[str] = args.vsite_cli
        self.vsite_cli_env: dict[str, str] = args.vsite_cli_env
        state = self.base / "state"
        state.mkdir(parents=True, exist_ok=True)
        os.chmod(state, 0o700)
        self.env = clean_env(state)
        self.work = self.base / "work"
        self.runner = Runner(self.work)
        self.trees: dict[int, Tree] = {}
        self.empty = Path()  # the empty venv of the vsite layouts (the runner builds it)
        # What the sections produce: RESULTS.md's sections, the lines printed at the end,
        # the targets checked (rows of the Targets table) and those missed.
        self.report: list[str] = []
        self.console: list[str] = []
        self.targets: list[list[str]] = []
        self.misses: list[str] = []

    @property
    def empty_python(self) -> str:
        return str(venv_python(self.empty))

    @property
    def src_env(self) -> dict[str, str]:
        """The children's environment with the measured vsite importable."""
        return {**self.env, "PYTHONPATH": str(self.src)}

    @property
    def cli_env(self) -> dict[str, str]:
        return {**self.env, **self.vsite_cli_env}

    def target(
        self, measure: str, n: int, spread: Spread, limit: float, shown: str, digits: int = 2
    ) -> bool:
        """A row of the Targets table: ok when the median is at most ``limit`` (written
        ``shown``), else a miss too."""
        ok = spread.median <= limit
        self.targets.append([measure, str(n), shown, spread.fmt(digits), "ok" if ok else "MISS"])
        if not ok:
            self.misses.append(f"N={n} {measure} {spread.fmt(digits)} (target {shown})")
        return ok

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)
