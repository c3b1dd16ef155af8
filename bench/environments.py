"""New environments from already-downloaded wheels, three ways: vsite, pip, uv.

- ``vsite``: ``vsite install --store STORE -o M WHEELS`` into a store that already holds
  every wheel (it must reuse every root and unpack none), then the first activation in
  a fresh process (``probes/environment.py --activate M``) with an empty ``VSITE_DIR``
  (cold index, no farm yet);
- ``pip``: ``python -m venv DIR`` + ``DIR/bin/pip install --no-index --no-deps
  --find-links WHEELDIR WHEELS`` (pip's defaults otherwise: it compiles bytecode);
- ``uv``: ``uv venv DIR`` + ``uv pip install --offline --no-deps --python DIR/bin/python
  WHEELS``, uv installed from the registry into a bench-private venv, its cache
  bench-private too (same file system, so uv hard-links from it) and warm: uv's best case.

Each measured step is a child process timed by the parent (spawn to reap) with its
CPU time from ``getrusage(RUSAGE_CHILDREN)``; every environment is checked (versions of
its distributions, one top-level package found) untimed, then removed. The section
(``sections/envsetup.py``) turns the runs into tables.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import resource
import shutil
import stat
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from context import Context
from measure import rotation
from spawn import probe
from trees import venv_python
from wheelsets import WheelSet

__all__ = ["LAYOUTS", "EnvSetup", "Run", "per_round", "runs_per_round", "step_median"]

LAYOUTS = ("vsite", "pip", "uv")
_INSTALL_LINE = re.compile(r"vsite: (\d+) roots \((\d+) unpacked, (\d+) reused\)")


# -- running steps -----------------------------------------------------------------------


class Step:
    """One timed child: wall seconds (parent side), CPU seconds (child and its children)."""

    __slots__ = ("cpu", "out", "wall")

    def __init__(self, wall: float, cpu: float, out: str) -> None:
        self.wall = wall
        self.cpu = cpu
        self.out = out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> Step:
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(argv[:4])}...\n{out[-4000:]}")
    return Step(wall, cpu, out)


def remove_tree(path: Path) -> None:
    """rmtree that also removes read-only trees (store entries are chmod a-w)."""

    def retry(func: Callable[..., object], name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        os.chmod(parent, stat.S_IMODE(os.stat(parent).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
        func(name)

    if path.exists():
        shutil.rmtree(path, onerror=retry)  # onexc is 3.12+


class Run:
    """One new environment under one layout: its timed steps, then its check value."""

    def __init__(self, steps: dict[str, Step], check: str) -> None:
        self.steps = steps
        self.check = check

    @property
    def wall(self) -> float:
        return sum(step.wall for step in self.steps.values())

    @property
    def cpu(self) -> float:
        return sum(step.cpu for step in self.steps.values())


# -- new environments ------------------------------------------------------------------


class EnvSetup:
    """Builds the new environments, one layout at a time, in rounds."""

    def __init__(self, ctx: Context) -> None:
        base = ctx.base
        self.base = base
        self.python = ctx.python
        self.empty_python = ctx.empty_python
        self.vsite_cli = ctx.vsite_cli
        self.log = ctx.log
        self.work = base / "envsetup" / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        # No PIP_*/UV_* from the caller; pip reads no config file (its defaults only).
        env = ctx.env
        self.env = {k: v for k, v in env.items() if not k.startswith(("PIP_", "UV_", "VSITE_"))}
        self.cli_env = {**self.env, **ctx.vsite_cli_env}
        self.src_env = {**self.env, "PYTHONPATH": str(ctx.src)}
        self.uv_cache = base / "envsetup" / "uv-cache"
        if ctx.args.fresh:
            remove_tree(self.uv_cache)
        self.uv_cache_new = not self.uv_cache.is_dir()  # every set's uv warm-up is cold
        self.uv = ""
        self.uv_version = ""
        self.pip_version = ""

    # tools -------------------------------------------------------------------------

    def ensure_uv(self) -> None:
        """uv from the registry (``pip install uv``) in a bench-private venv."""
        venv = self.base / "envsetup" / "uv-venv"
        uv = venv / "bin" / "uv"
        if not uv.exists():
            self.log("installing uv from the registry into a bench-private venv")
            remove_tree(venv)
            subprocess.run([self.python, "-m", "venv", str(venv)], check=True)
            pip = [str(venv_python(venv)), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, "--disable-pip-version-check", "uv"], check=True)
        self.uv = str(uv)
        self.uv_version = subprocess.run(
            [self.uv, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.pip_version = subprocess.run(
            [self.python, "-c", "import ensurepip; print(ensurepip.version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    @property
    def pip_env(self) -> dict[str, str]:
        return {**self.env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    @property
    def uv_env(self) -> dict[str, str]:
        return {
            **self.env,
            "UV_CACHE_DIR": str(self.uv_cache),
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
        }

    # one environment per layout ----------------------------------------------------

    def new_env(self, layout: str, wheels: WheelSet, *, expect_reuse: bool = True) -> Run:
        where = Path(tempfile.mkdtemp(prefix=f"{wheels.name}-{layout}-", dir=self.work))
        try:
            build: Callable[[WheelSet, Path, bool], Run] = getattr(self, f"_{layout}")
            return build(wheels, where, expect_reuse)
        finally:
            remove_tree(where)

    def _vsite(self, wheels: WheelSet, where: Path, expect_reuse: bool) -> Run:
        manifest = where / "manifest.json"
        state = where / "state"
        state.mkdir(mode=0o700)
        files = [str(path) for path in wheels.wheels]
        install = timed(
            [*self.vsite_cli, "install", "--store", str(wheels.store), "-o", str(manifest), *files],
            self.cli_env,
            where,
        )
        counts = _INSTALL_LINE.search(install.out)
        if counts is None:
            raise RuntimeError(f"vsite install printed no summary:\n{install.out[-2000:]}")
        roots, unpacked, reused = map(int, counts.groups())
        if roots != len(files):
            raise RuntimeError(f"vsite install: {roots} roots for {len(files)} wheels")
        if expect_reuse and (unpacked, reused) != (0, roots):
            raise RuntimeError(f"vsite install into a warm store unpacked {unpacked} wheels")
        activate = probe(self.empty_python, "environment", "--activate", str(manifest))
        env = {**self.src_env, "VSITE_DIR": str(state)}  # empty: cold index, no farm yet
        activated = timed(activate, env, where)
        check = self._check([*activate, *wheels.check()[0]], env, where)
        return Run({"install": install, "activate": activated}, check)

    def _pip(self, wheels: WheelSet, where: Path, expect_reuse: bool) -> Run:
        venv = where / "venv"
        make = timed([self.python, "-m", "venv", str(venv)], self.pip_env, where)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--no-deps"]
        pip += ["--find-links", str(wheels.wheel_dir), *map(str, wheels.wheels)]
        install = timed(pip, self.pip_env, where)
        check = self._check(
            probe(venv_python(venv), "environment", *wheels.check()[0]), self.env, where
        )
        return Run({"venv": make, "install": install}, check)

    def _uv(self, wheels: WheelSet, where: Path, expect_reuse: bool) -> Run:
        venv = where / "venv"
        make = timed(
            [self.uv, "venv", "-q", "--python", self.python, str(venv)], self.uv_env, where
        )
        uv = [self.uv, "pip", "install", "-q", "--offline", "--no-deps"]
        uv += ["--python", str(venv_python(venv)), *map(str, wheels.wheels)]
        install = timed(uv, self.uv_env, where)
        if "falling back" in install.out.lower():  # e.g. no hard links: uv copies
            self.log(f"uv: {install.out.strip()}")
        check = self._check(
            probe(venv_python(venv), "environment", *wheels.check()[0]), self.env, where
        )
        return Run({"venv": make, "install": install}, check)

    def _check(self, argv: list[str], env: dict[str, str], where: Path) -> str:
        return timed(argv, env, where).out.strip().splitlines()[-1]

    # warm-up -----------------------------------------------------------------------

    def warm(self, wheels: WheelSet, *, fresh: bool, pip: bool) -> dict[str, str]:
        """Fill the store and uv's cache (timed: the first environment), warm the OS cache.

        Returns layout -> a description of its first environment for the report.
        """
        first: dict[str, str] = {}
        record = wheels.home / "first.json"
        wheels.home.mkdir(parents=True, exist_ok=True)
        rebuild = fresh or not wheels.persistent or not (wheels.store / "wheels").is_dir()
        if rebuild:
            remove_tree(wheels.store)
            self.log(f"{wheels.name}: first install into an empty store")
            run = self.new_env("vsite", wheels, expect_reuse=False)
            stored = _stored(run, "empty store")
            record.write_text(json.dumps(stored))
        recorded = json.loads(record.read_text()) if record.exists() else None
        if recorded:
            first["vsite"] = _first_text(recorded, measured_now=rebuild)
        marker = wheels.home / "uv-warmed"
        cold = self.uv_cache_new or not marker.exists()
        self.log(f"{wheels.name}: uv warm-up ({'cold' if cold else 'warm'} cache)")
        run = self.new_env("uv", wheels)
        if cold:
            marker.write_text(json.dumps(_stored(run, "cold cache")))
        first["uv"] = _first_text(json.loads(marker.read_text()), measured_now=cold)
        self.log(f"{wheels.name}: vsite warm-up")
        self.new_env("vsite", wheels)
        if pip:
            self.log(f"{wheels.name}: pip warm-up")
            self.new_env("pip", wheels)
        return first

    # rounds ------------------------------------------------------------------------

    def rounds(self, wheels: WheelSet, rounds: int, vsite_runs: int) -> dict[str, list[list[Run]]]:
        """Per layout, per round, its runs: the layouts' order rotates every round."""
        _, expected = wheels.check()
        results: dict[str, list[list[Run]]] = {layout: [] for layout in LAYOUTS}
        for r, layout in rotation(list(LAYOUTS), rounds):
            runs = []
            for _ in range(vsite_runs if layout == "vsite" else 1):
                run = self.new_env(layout, wheels)
                if run.check != expected:
                    raise RuntimeError(
                        f"{wheels.name} {layout}: check {run.check} != expected {expected}"
                    )
                runs.append(run)
            results[layout].append(runs)
            self.log(
                f"{wheels.name} round {r + 1}/{rounds} {layout}: "
                + ", ".join(f"{run.wall:.2f} s" for run in runs)
            )
        return results


def _stored(run: Run, state: str) -> dict[str, object]:
    return {
        "wall": run.wall,
        "cpu": run.cpu,
        "steps": {name: step.wall for name, step in run.steps.items()},
        "state": state,
        "date": datetime.date.today().isoformat(),
    }


def _first_text(stored: dict[str, object], *, measured_now: bool) -> str:
    steps = stored["steps"]
    assert isinstance(steps, dict)
    parts = " + ".join(f"{name} {seconds:.2f}" for name, seconds in steps.items())
    when = "this run" if measured_now else f"an earlier run, {stored['date']}"
    return f"{stored['wall']:.2f} s ({parts}; {stored['state']}; measured in {when})"


def per_round(runs: list[list[Run]], metric: str = "wall") -> list[float]:
    """A layout's value per round (the median of its runs in that round)."""
    return [statistics.median(getattr(run, metric) for run in batch) for batch in runs]


def step_median(runs: list[list[Run]], step: str) -> float:
    return statistics.median(run.steps[step].wall for batch in runs for run in batch)


def runs_per_round(total: int, rounds: int) -> int:
    return max(1, math.ceil(total / max(rounds, 1)))
