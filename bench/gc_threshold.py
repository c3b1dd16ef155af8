"""``import torch``: how much of the layouts' difference is one more full garbage collection.

    python bench/gc_threshold.py [--rounds N] [--cache DIR] [--output FILE]

CPython (3.11) runs a full, generation-2 collection when the objects that survived
younger collections since the last one pass a quarter of the long-lived ones. An import
of torch ends up near that threshold: in a bare ``python -c "import torch"`` the flat
venv runs 2 full collections and crosses into a third with ~2,000 more live objects
first; vsite's layouts ran 3 until cefb2a3 (their start left ~2,400 more GC-tracked
objects than a flat one; ~1,900 since), and that third pass over ~170k objects is
40-70 ms, 2-3% of the import. A program that has ~3,000 more live objects before it
imports torch (as a real one may) runs 3 in every layout. This bench times the import
in each layout with ``K`` objects allocated first, for K = 0 and K = 3,000, so the
layouts' own cost can be read where their collections are the same.

Uses the trees ``bench/real_packages.py --torch`` built (``--cache``, default
``bench/trees/real``): the flat venv, the store and foreign manifests, the vsite under
test. Children run as this user, bytecode writing on, with a private ``VSITE_DIR`` and
``VSITE_BYTECODE_DIR`` (warmed by one run each first). Ratios only mean something side
by side in one run; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAYOUTS = ("flat", "store", "foreign")
ALLOCATED = (0, 3000)
CODE = """\
keep = [[] for _ in range({k})]
import torch
import gc
print(gc.get_stats()[2]["collections"])
"""


def boot_dir(tool: Path) -> str:
    code = "import vsite, os; print(os.path.join(os.path.dirname(vsite.__file__), '_boot'))"
    return subprocess.run(
        [str(tool / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def children(cache: Path, state: Path, k: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    site = cache / "torch"
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VSITE_", "VIRTUAL_ENV"))
    }
    vsite = {
        **base,
        "VSITE_DIR": str(state / "state"),
        "VSITE_BYTECODE_DIR": str(state / "bytecode"),
        "PYTHONPATH": boot_dir(cache / "tool"),
    }
    python = str(cache / "empty" / "bin" / "python")
    code = CODE.format(k=k)
    return {
        "flat": ([str(site / "flat" / "bin" / "python"), "-c", code], base),
        "store": ([python, "-c", code], {**vsite, "VSITE_MANIFEST": str(site / "store.json")}),
        "foreign": ([python, "-c", code], {**vsite, "VSITE_MANIFEST": str(site / "foreign.json")}),
    }


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{argv[0]} failed:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout.split()[-1]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--cache", type=Path, default=HERE / "trees" / "real")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if not (args.cache / "torch" / "store.json").is_file():
        raise SystemExit(f"no torch trees in {args.cache}: run bench/real_packages.py --torch")
    rows = []
    with tempfile.TemporaryDirectory() as private:
        state = Path(private)
        for sub in ("state", "bytecode"):
            (state / sub).mkdir(mode=0o700)
        for k in ALLOCATED:
            kids = children(args.cache, state, k)
            for argv_, env in kids.values():  # warm-up: the farm, the bytecode cache
                run(argv_, env)
            walls: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            collections: dict[str, set[str]] = {name: set() for name in LAYOUTS}
            for number in range(args.rounds):
                order = LAYOUTS[number % 3 :] + LAYOUTS[: number % 3]
                for name in order:
                    wall, full = run(*kids[name])
                    walls[name].append(wall)
                    collections[name].add(full)
            for name in LAYOUTS:
                ratios = [a / b for a, b in zip(walls[name], walls["flat"])]
                rows.append(
                    [
                        str(k),
                        name,
                        "/".join(sorted(collections[name])),
                        f"{statistics.median(walls[name]) * 1000:.0f}",
                        spread(ratios),
                    ]
                )
            print(f"K={k} done", file=sys.stderr)
    headers = ["K objects first", "layout", "full GCs", "wall ms", "wall / flat"]
    lines = [
        "# `import torch`: layouts with the same number of full collections",
        "",
        f"`python bench/gc_threshold.py --rounds {args.rounds}`: {time.strftime('%Y-%m-%d')}, "
        f"{args.rounds} rounds (order rotating), median (min-max) of per-round ratios. "
        "The child is `keep = [[] for _ in range(K)]; import torch`.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    print("\n".join(lines))
    if args.output:
        args.output.write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
