"""vsite benchmarks: ratios measured side by side in one run, never absolute pass/fail.

    python bench/run.py [--quick] [--sections SECTION...]

Builds (or reuses) synthetic trees under bench/trees/, runs every workload under every
layout in interleaved rounds (the layouts' order rotates from round to round, so drift
and background load hit them alike), prints the headline table and writes
bench/RESULTS.md. One module per section under sections/; the children run the
programs under probes/. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from context import Context
from report import console_table, header, table
from sections import cold, envsetup, findspec, frontdoor, index, launcher, layouts
from spawn import Child, probe
from trees import DEFAULT_DIR, base_venv, ensure_tree
from wheelsets import TORCH_WHEELS
from workloads import LAYOUTS, WORKLOADS, exec_child, layout_child

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FULL_SIZES = (10, 100, 1000, 3000)
QUICK_SIZES = (10, 100, 1000)
#: section name -> its run(ctx), in the order they run
SECTIONS: dict[str, Callable[[Context], None]] = {
    "layouts": layouts.run,
    "cold": cold.run,
    "exec": launcher.run,
    "frontdoor": frontdoor.run,
    "findspec": findspec.run,
    "index": index.run,
    "envsetup": envsetup.run,
}
#: envsetup installs GBs (torch) and takes minutes: only when asked for
DEFAULT_SECTIONS = [s for s in SECTIONS if s != "envsetup"]


def build_trees(ctx: Context) -> None:
    started = time.perf_counter()
    ctx.empty = base_venv(ctx.base, ctx.python)
    if not needs_trees(ctx):
        return  # envsetup builds its own wheels
    wanted = set(ctx.sizes)
    if "index" in ctx.args.sections:
        wanted.add(index.reader_size(ctx))
    for n in sorted(wanted):
        tree, rebuilt = ensure_tree(ctx.base, n, ctx.python, fresh=ctx.args.fresh)
        ctx.trees[n] = tree
        if rebuilt:
            ctx.log(f"built tree N={n}")
    ctx.log(f"trees ready in {time.perf_counter() - started:.1f} s")


def needs_trees(ctx: Context) -> bool:
    return any(section != "envsetup" for section in ctx.args.sections)


def warm(ctx: Context) -> None:
    """One run of each child: bytecode caches written, indexes persisted, checks ok."""
    if not needs_trees(ctx):
        return
    started = time.perf_counter()
    for n in ctx.sizes:
        tree = ctx.trees[n]
        for workload, (_, make) in WORKLOADS.items():
            if workload not in ctx.args.workloads:
                continue
            args, expected = make(tree)
            for layout in LAYOUTS:
                sample = ctx.runner.run(layout_child(layout, tree, ctx, args))
                if sample.check != expected:
                    raise RuntimeError(
                        f"N={n} {workload} {layout}: check {sample.check} != {expected}"
                    )
        ctx.runner.run(exec_child(tree, ctx))
    # The probes' own bytecode too: the first lookup child would otherwise write it.
    ctx.runner.run(Child(probe(ctx.empty_python, "workload", "start"), ctx.env))
    ctx.log(f"warm-up done in {time.perf_counter() - started:.1f} s")


TARGET_HEADERS = ["measure", "N", "target", "measured", ""]


def targets(ctx: Context) -> list[str]:
    """The Targets table: every row the sections checked, in the order they ran."""
    if not ctx.targets:
        return []
    return [
        "## Targets (issue 15: start-up at flat cost)",
        "",
        "Median (min-max) of per-round values, every comparison side by side in one run "
        "(order rotating each round), never an absolute time. `X/flat`: whole-process "
        "wall time over the flat layout's (the union of the roots in one site-packages), "
        "warm index; `peak RSS`: MiB over flat's; cold index build: the cold - warm "
        "start, ms per 1,000 roots; `find_spec`: in-process cost per lookup at N roots "
        "over the smallest N. `boot` = foreign roots, verified at start; "
        '`boot-immutable` = the same roots `"immutable": true`; `api` = '
        "`vsite.activate()` of the verified manifest. The sections below give each "
        "measure in full; a miss is information for profiling, not a failure of the run.",
        "",
        *table(TARGET_HEADERS, ctx.targets),
        "",
    ]


def vsite_command(src: Path) -> tuple[list[str], dict[str, str]]:
    """The vsite command for exec/index/install, and what its environment needs.

    The ``vsite`` script next to this interpreter when that is the working tree's, else
    ``python -m vsite`` with ``src`` on ``PYTHONPATH``.
    """
    script = Path(sys.executable).with_name("vsite")
    if script.exists() and src == REPO / "src":
        return [str(script)], {}
    return [sys.executable, "-m", "vsite"], {"PYTHONPATH": str(src)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, N up to 1,000")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 15, quick 5)")
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of roots")
    parser.add_argument("--fresh", action="store_true", help="rebuild the trees")
    parser.add_argument(
        "--python",
        default=getattr(sys, "_base_executable", sys.executable),
        help="base interpreter of the children's venvs (default: this one's base)",
    )
    parser.add_argument("--trees-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--src", type=Path, default=REPO / "src", help="the vsite source tree to measure"
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument(
        "--vsite-cli", nargs="+", default=None, help="argv of the vsite command for exec"
    )
    parser.add_argument(
        "--workloads", nargs="+", choices=list(WORKLOADS), help="layout workloads to run"
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=list(SECTIONS),
        default=DEFAULT_SECTIONS,
        help="what to run (default: all but envsetup)",
    )
    parser.add_argument(
        "--envsetup-rounds", type=int, help="envsetup rounds, synthetic sets (default ≤ 5)"
    )
    parser.add_argument(
        "--torch-rounds", type=int, default=1, help="envsetup torch rounds of pip and uv (0: skip)"
    )
    parser.add_argument(
        "--torch-vsite-runs", type=int, default=5, help="envsetup torch: vsite runs in all"
    )
    parser.add_argument("--torch-wheels", type=Path, default=TORCH_WHEELS)
    args = parser.parse_args(argv)
    if args.workloads is None:
        args.workloads = list(WORKLOADS)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    if args.rounds is None:
        args.rounds = 5 if args.quick else 15
    if args.envsetup_rounds is None:
        args.envsetup_rounds = min(args.rounds, 5)
    args.src = args.src.resolve()
    if args.vsite_cli is None:
        args.vsite_cli, args.vsite_cli_env = vsite_command(args.src)
    else:
        args.vsite_cli_env = {}
    args.trees_dir = args.trees_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse(argv)
    ctx = Context(args)
    build_trees(ctx)
    warm(ctx)
    for name, section in SECTIONS.items():
        if name in args.sections:
            section(ctx)
    opening = header(
        quick=args.quick,
        python=ctx.python,
        src=ctx.src,
        sizes=ctx.sizes,
        rounds=ctx.rounds,
        seconds=time.perf_counter() - started,
    )
    misses = [f"- {m}" for m in ctx.misses] or ["None."]
    args.output.write_text(
        "\n".join([*opening, *targets(ctx), *ctx.report, "## Misses", "", *misses, ""])
    )
    ctx.log(f"wrote {args.output}")
    ctx.runner.close()
    for line in [*ctx.console, *console_table(TARGET_HEADERS, ctx.targets)]:
        print(line)
    print("misses:", "; ".join(ctx.misses) if ctx.misses else "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
