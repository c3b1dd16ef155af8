"""What the benchmark children run, under which layout, and how one run is measured.

A child is ``python -c CODE`` started with ``posix_spawn``: the parent takes the whole
process wall time (spawn to reap); the child prints its own CPU time
(``time.process_time``) when it starts running ``CODE`` (interpreter start, ``site``
and, for the boot layout, vsite's activation) and when the workload is done, its peak
RSS (``VmHWM``: Linux carries the spawning parent's ``ru_maxrss`` over ``exec``, so
``wait4`` would report the bench process's own), and a check value the parent compares
across layouts, so a layout that imports the wrong thing fails the run instead of
looking fast.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from trees import EP_GROUP, NAMESPACE, Tree, has_entry_point, package_name, venv_python

__all__ = [
    "BOOT_DIR",
    "LAYOUTS",
    "SRC",
    "WORKLOADS",
    "Child",
    "Runner",
    "Sample",
    "child_code",
    "clean_env",
    "layout_child",
]

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
BOOT_DIR = SRC / "vsite" / "_boot"

#: flat: the union in one site-packages; naive: every root on sys.path (a .pth);
#: boot: vsite's boot path (what ``vsite exec`` sets up); api: ``vsite.activate()``.
LAYOUTS = ("flat", "naive", "boot", "api")


class Sample:
    """One measured child."""

    __slots__ = ("check", "cpu", "rss_kib", "start_cpu", "wall")

    def __init__(self, wall: float, start_cpu: float, cpu: float, rss_kib: int, check: str):
        self.wall = wall  # seconds, spawn to reap, seen by the parent
        self.start_cpu = start_cpu  # child CPU seconds when CODE began (startup + site)
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


def child_code(prelude: str, body: str) -> str:
    return "\n".join(
        [
            "import time as _t",
            "_c0 = _t.process_time()",
            prelude,
            body,
            "_c1 = _t.process_time()",
            # Peak RSS of this image: ru_maxrss would carry the spawning parent's over exec.
            "with open('/proc/self/status', 'rb') as _st:",
            "    _hwm = [_l.split()[1] for _l in _st if _l.startswith(b'VmHWM:')]",
            "print(_c0, _c1, int(_hwm[0]) if _hwm else 0, repr(_check))",
        ]
    )


def _api_prelude(manifest: Path) -> str:
    # vsite loaded from the working tree (as an installed vsite would be), then activated.
    return (
        f"import sys as _s\n_s.path.insert(0, {str(SRC)!r})\nimport vsite as _v\n"
        f"del _s.path[0]\n_v.activate({str(manifest)!r})"
    )


def layout_child(
    layout: str,
    tree: Tree,
    empty_venv: Path,
    env: dict[str, str],
    body: str,
    manifest: Path | None = None,
) -> Child:
    """The child running ``body`` under ``layout`` for ``tree`` (or another manifest)."""
    env = dict(env)
    manifest = manifest or tree.manifest
    prelude = ""
    if layout == "flat":
        python = venv_python(tree.flat_venv)
    elif layout == "naive":
        python = venv_python(tree.naive_venv)
    elif layout in ("boot", "boot-cold"):
        python = venv_python(empty_venv)
        env["VSITE_MANIFEST"] = str(manifest)
        env["PYTHONPATH"] = str(BOOT_DIR)
    elif layout == "api":
        python = venv_python(empty_venv)
        prelude = _api_prelude(manifest)
    else:
        raise ValueError(layout)
    return Child(
        [str(python), "-c", child_code(prelude, body)], env, fresh_state=layout == "boot-cold"
    )


# -- workloads -------------------------------------------------------------------------


def spread(n: int, k: int) -> list[int]:
    """``min(n, k)`` indexes spread evenly over ``range(n)``."""
    k = min(n, k)
    return [i * n // k for i in range(k)]


def _start(tree: Tree) -> tuple[str, str]:
    return "_check = 0", "0"


def _imports(tree: Tree) -> tuple[str, str]:
    chosen = [package_name(i) for i in spread(tree.n, 50)]
    lines = [f"import {p}.a, {p}.b, {p}.c" for p in chosen]
    lines.append("import sys as _sy")
    lines.append(f"_check = sum(_sy.modules[p].NUMBER for p in {chosen!r})")
    return "\n".join(lines), repr(sum(spread(tree.n, 50)))


def _failed(tree: Tree) -> tuple[str, str]:
    body = (
        "_check = 0\n"
        "for _k in range(200):\n"
        "    try:\n"
        "        __import__('nosuchmod_%03d' % _k)\n"
        "    except ImportError:\n"
        "        _check += 1"
    )
    return body, "200"


def _metadata(tree: Tree) -> tuple[str, str]:
    pairs = [(f"bench-dist-{i:04d}", f"1.0.{i}") for i in spread(tree.n, 50)]
    body = (
        "import sys as _sy\n"
        "import importlib.metadata as _m\n"
        f"_ok = sum(_m.version(d) == v for d, v in {pairs!r})\n"
        "if _sy.version_info >= (3, 10):\n"
        f"    _eps = _m.entry_points(group={EP_GROUP!r})\n"
        "else:\n"
        f"    _eps = _m.entry_points().get({EP_GROUP!r}, ())\n"
        "_check = (_ok, len(_eps))"
    )
    expected = (len(pairs), sum(1 for i in range(tree.n) if has_entry_point(i)))
    return body, repr(expected)


def _namespace(tree: Tree) -> tuple[str, str]:
    portions = tree.namespace_portions
    lines = [f"import {NAMESPACE}.{p}" for p in portions]
    lines.append("import sys as _sy")
    lines.append(f"_check = sum(_sy.modules['{NAMESPACE}.' + p].PORTION for p in {portions!r})")
    return "\n".join(lines), repr(sum(int(p.rsplit("_", 1)[1]) for p in portions))


#: name -> (description, maker(tree) -> (body, expected check repr))
WORKLOADS = {
    "imports": ("start + import 50 packages (200 modules)", _imports),
    "failed": ("start + 200 failed imports", _failed),
    "metadata": ("start + 50 metadata.version() + entry_points(group=)", _metadata),
    "start": ("start only", _start),
    "namespace": ("start + import every portion of a namespace package", _namespace),
}


# -- running one child -----------------------------------------------------------------


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
                import shutil

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
        os.chdir(self.workdir)  # the child's sys.path[0] ('') is an empty directory
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
