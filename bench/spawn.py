"""Spawning the benchmark children: one measured child, or a probe's plain output.

A measured child is started with ``posix_spawn`` from a neutral working directory; the
parent takes the whole process wall time (spawn to reap). The child (a probe under
``probes/``, see ``probes/measured.py``) prints its own CPU time when it started running
and when its work was done, its peak RSS (``VmHWM``: Linux carries the spawning
parent's ``ru_maxrss`` over ``exec``, so ``wait4`` would report the bench process's
own), and a check value the parent compares across layouts, so a layout that imports
the wrong thing fails the run instead of looking fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PROBES", "Child", "Runner", "Sample", "clean_env", "output", "probe"]

#: the programs the children run, by path
PROBES = Path(__file__).resolve().parent / "probes"


def probe(python: str | Path, name: str, *args: str) -> list[str]:
    """The argv running ``probes/<name>.py`` with ``args`` on ``python``."""
    return [str(python), str(PROBES / f"{name}.py"), *args]


class Sample:
    """One measured child."""

    __slots__ = ("check", "cpu", "rss_kib", "start_cpu", "wall")

    def __init__(self, wall: float, start_cpu: float, cpu: float, rss_kib: int, check: str):
        self.wall = wall  # seconds, spawn to reap, seen by the parent
        self.start_cpu = start_cpu  # child CPU seconds when the probe began (startup + site)
        self.cpu = cpu  # child CPU seconds when the workload was done
        self.rss_kib = rss_kib  # peak resident set of the child
        self.check = check

    def value(self, metric: str) -> float:
        if metric == "rss":
            return float(self.rss_kib)
        return float(getattr(self, metric))


class Child:
    """An argv + environment ready to spawn."""

    __slots__ = ("argv", "env", "fresh_state")

    def __init__(self, argv: list[str], env: dict[str, str], *, fresh_state: bool = False):
        self.argv = argv
        self.env = env
        self.fresh_state = fresh_state  # give it an empty VSITE_DIR (cold index)


def clean_env(state_dir: Path) -> dict[str, str]:
    """The parent's environment minus PYTHON*/VSITE_* (bytecode is written), own state dir."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VSITE_", "__PYVENV"))
    }
    env["VSITE_DIR"] = str(state_dir)
    return env


def output(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """What an untimed helper child prints (stdout); its stderr too when it fails."""
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {argv[:3]}...\n{proc.stdout}{proc.stderr}")
    return proc.stdout


class Runner:
    """Spawns children one at a time (``posix_spawn`` + ``wait4``) from a neutral cwd."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        # Open for the runner's life (every child's stderr, kept for error reports).
        self.stderr = tempfile.TemporaryFile(dir=workdir)  # noqa: SIM115

    def close(self) -> None:
        self.stderr.close()

    def run(self, child: Child) -> Sample:
        env = child.env
        cold_dir = None
        if child.fresh_state:
            cold_dir = tempfile.mkdtemp(prefix="cold-", dir=self.workdir)
            env = {**env, "VSITE_DIR": cold_dir}
        try:
            return self._spawn(child.argv, env)
        finally:
            if cold_dir is not None:
                shutil.rmtree(cold_dir)

    def _spawn(self, argv: list[str], env: dict[str, str]) -> Sample:
        self.stderr.seek(0)
        self.stderr.truncate()
        read_end, write_end = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, write_end, 1),
            (os.POSIX_SPAWN_DUP2, self.stderr.fileno(), 2),
            (os.POSIX_SPAWN_CLOSE, read_end),
        ]
        cwd = os.getcwd()
        os.chdir(self.workdir)  # relative paths of the child resolve in an empty directory
        try:
            started = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        finally:
            os.chdir(cwd)
        os.close(write_end)
        chunks = []
        with os.fdopen(read_end, "rb") as stream:
            while True:
                chunk = stream.read()
                if not chunk:
                    break
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        wall = time.perf_counter() - started
        out = b"".join(chunks).decode("utf-8", "replace")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            self.stderr.seek(0)
            err = self.stderr.read().decode("utf-8", "replace")
            raise RuntimeError(f"child failed ({code}): {argv[:3]}...\n{out}\n{err}")
        last = out.strip().splitlines()[-1] if out.strip() else ""
        fields = last.split(" ", 3)
        if len(fields) != 4:
            raise RuntimeError(f"unexpected child output: {out!r}")
        start_cpu, cpu, rss, check = fields
        return Sample(wall, float(start_cpu), float(cpu), int(rss), check)
