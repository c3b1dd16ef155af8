"""Start-up of one revision of vsite against another, side by side in one run.

    python bench/before_after.py REV [--sizes 1000 3000] [--rounds 21]

Checks REV out into a temporary worktree (``git worktree``), then starts the same
children under both revisions' boot paths, alternating, every round: ``python -c pass``
and ``python -c "import importlib.metadata as m; m.version(...)"`` of the synthetic
trees' manifests (immutable and verified roots), with a warm index and farm (one
warm-up start each). Prints per-case ``this / REV`` wall-time ratios (median, min-max):
what a change costs at start, which the flat-vs-vsite ratios of bench/run.py cannot
show when both sides move. Each revision gets its own state directory, so neither
reads the other's index or farm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from trees import DEFAULT_DIR, base_venv, ensure_tree, venv_python  # noqa: E402

CODES = {
    "start": "pass",
    "start + metadata": "import importlib.metadata as m; m.version('bench_dist_0000')",
    # 50 packages spread over the roots, three submodules each (bench/run.py's imports)
    "start + 50 imports": (
        "[__import__(f'benchpkg_{k:04d}.{s}') for k in range(0, 1000, 20) for s in 'abc']"
    ),
}


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def child_env(src: Path, state: Path, manifest: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VSITE_"))}
    env.update(
        PYTHONPATH=f"{src / 'vsite' / '_boot'}{os.pathsep}{src}",
        VSITE_MANIFEST=str(manifest),
        VSITE_DIR=str(state),
    )
    return env


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the revision to compare the working tree with")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="vsite-before-after-"))
    worktree = scratch / "rev"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.rev],
        check=True,
        capture_output=True,
    )
    try:
        empty = venv_python(base_venv(DEFAULT_DIR, args.python))
        sides = {"this": REPO / "src", "rev": worktree / "src"}
        print(f"this working tree vs {args.rev}: wall time ratio this/rev, {args.rounds} rounds")
        for n in args.sizes:
            tree, _ = ensure_tree(DEFAULT_DIR, n, args.python)
            for kind, manifest in (
                ("immutable", tree.immutable_manifest),
                ("verified", tree.manifest),
            ):
                for case, code in CODES.items():
                    envs = {
                        side: child_env(src, scratch / f"state-{side}-{n}", manifest)
                        for side, src in sides.items()
                    }
                    argv = [str(empty), "-c", code]
                    for env in envs.values():
                        run(argv, env)  # warm: index and farm built
                    times: dict[str, list[float]] = {side: [] for side in sides}
                    for r in range(args.rounds):
                        order = list(sides) if r % 2 == 0 else list(reversed(sides))
                        for side in order:
                            times[side].append(run(argv, envs[side]))
                    ratios = [a / b for a, b in zip(times["this"], times["rev"])]
                    ms = {side: 1000 * statistics.median(t) for side, t in times.items()}
                    print(
                        f"N={n:5d} {kind:9s} {case:18s} {spread(ratios)}"
                        f"   this {ms['this']:.1f} ms, rev {ms['rev']:.1f} ms"
                    )
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
