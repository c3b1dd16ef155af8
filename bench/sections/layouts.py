"""layouts: every workload under flat, naive, boot, boot-immutable and api; targets vs flat."""

from __future__ import annotations

import statistics

from context import Context
from measure import differences_mib, ms, ratios, rounds_of
from report import console_table, table
from spawn import Sample
from workloads import LAYOUTS, WORKLOADS, layout_child

TARGET_SIZES = (1000, 3000)
#: (workload, layout) -> the most layout/flat may cost at each of TARGET_SIZES (median
#: wall ratio, warm index); issue 15, start-up at flat cost. ``api`` activates the same
#: verified manifest as ``boot``, so it has boot's targets.
TARGETS: dict[tuple[str, str], tuple[float, float]] = {
    ("start", "boot-immutable"): (1.05, 1.05),
    ("start", "boot"): (1.15, 1.30),
    ("start", "api"): (1.15, 1.30),
    ("imports", "boot-immutable"): (1.10, 1.10),
    ("imports", "boot"): (1.10, 1.10),
    ("imports", "api"): (1.10, 1.10),
    ("failed", "boot-immutable"): (1.10, 1.10),
    ("failed", "boot"): (1.10, 1.10),
    ("failed", "api"): (1.10, 1.10),
    ("metadata", "boot-immutable"): (1.02, 1.02),
    ("metadata", "boot"): (1.02, 1.02),
    ("metadata", "api"): (1.02, 1.02),
}
#: the most a vsite layout's peak RSS may exceed flat's, MiB, at each of TARGET_SIZES
RSS_BUDGET_MIB = (2.0, 1.0)
HEADLINE = [
    "workload",
    "N",
    "boot/flat",
    "immutable/flat",
    "boot/flat cpu",
    "boot/naive",
    "api/flat",
    "api/naive",
    "RSS boot-flat MiB",
    "RSS imm.-flat MiB",
]

Results = dict[tuple[int, str], dict[str, list[Sample]]]


def run(ctx: Context) -> None:
    results: Results = {}
    rows = []
    for workload, (description, make) in WORKLOADS.items():
        if workload not in ctx.args.workloads:
            continue
        for n in ctx.sizes:
            tree = ctx.trees[n]
            args, expected = make(tree)
            children = {layout: layout_child(layout, tree, ctx, args) for layout in LAYOUTS}
            res = rounds_of(ctx.runner, children, ctx.rounds, expected)
            results[(n, workload)] = res
            row = [
                workload,
                str(n),
                ratios(res["boot"], res["flat"]).fmt(),
                ratios(res["boot-immutable"], res["flat"]).fmt(),
                ratios(res["boot"], res["flat"], "cpu").fmt(),
                ratios(res["boot"], res["naive"]).fmt(),
                ratios(res["api"], res["flat"]).fmt(),
                ratios(res["api"], res["naive"]).fmt(),
                differences_mib(res["boot"], res["flat"]).fmt(1),
                differences_mib(res["boot-immutable"], res["flat"]).fmt(1),
            ]
            rows.append(row)
            ctx.log(f"{description}, N={n}: boot/flat {row[2]}, immutable/flat {row[3]}")
    ctx.console += console_table(HEADLINE, rows)
    ctx.report += [
        "## Headline: vsite vs flat and vs naive (whole-process wall time ratio)",
        "",
        "Median (min-max) of per-round ratios; < 1 means vsite is faster. `boot` is "
        "vsite's boot path (`VSITE_MANIFEST` + `PYTHONPATH=<boot dir>`, what "
        "`vsite exec` sets up) with the tree's manifest (foreign roots, verified at "
        "start); `immutable` is the same with `manifest-immutable.json` (the same roots, "
        '`"immutable": true`: never statted at start); `api` is an in-process '
        "`vsite.activate()` of the verified manifest (its import and activation are "
        "inside the measured process). Warm persistent index. `cpu`: the child's own CPU "
        "time instead of wall time (less sensitive to other load on the machine). RSS "
        "columns: peak RSS minus flat's, MiB.",
        "",
        *table(HEADLINE, rows),
        "",
        *details(results),
    ]
    targets(ctx, results)


def details(results: Results) -> list[str]:
    rows = []
    for (n, workload), res in results.items():
        rows.append(
            [
                workload,
                str(n),
                *(ms(res[layout]) for layout in LAYOUTS),
                ratios(res["boot"], res["flat"], "cpu").fmt(),
                ratios(res["api"], res["flat"], "cpu").fmt(),
                " / ".join(ms(res[layout], "start_cpu") for layout in LAYOUTS),
                " / ".join(
                    f"{statistics.median(s.rss_kib for s in res[layout]) / 1024:.1f}"
                    for layout in LAYOUTS
                ),
            ]
        )
    rows.sort(key=lambda row: (list(WORKLOADS).index(row[0]), int(row[1])))
    headers = [
        "workload",
        "N",
        *(f"{layout} wall" for layout in LAYOUTS),
        "cpu boot/flat",
        "cpu api/flat",
        "start cpu ms f/n/b/i/a",
        "peak RSS MiB f/n/b/i/a",
    ]
    return [
        "## Details per workload",
        "",
        "Medians in ms (context only: the ratios above are what is compared). `cpu` is "
        "the child's own `time.process_time()` at the end of the workload (interpreter "
        "start included, teardown excluded); `start cpu` is the same clock when the "
        "probe began (interpreter start + `site` + the boot path's activation).",
        "",
        *table(headers, rows),
        "",
    ]


def targets(ctx: Context, results: Results) -> None:
    """The Targets table's rows: each vsite layout over flat, wall time and peak RSS."""
    for at, n in enumerate(TARGET_SIZES):
        for (workload, layout), limits in TARGETS.items():
            if (n, workload) in results:
                res = results[(n, workload)]
                ctx.target(
                    f"{workload}: {layout}/flat",
                    n,
                    ratios(res[layout], res["flat"]),
                    limits[at],
                    f"≤ {limits[at]:.2f}",
                )
        for workload, layout in TARGETS:
            if (n, workload) in results:
                res = results[(n, workload)]
                budget = RSS_BUDGET_MIB[at]
                ctx.target(
                    f"peak RSS {workload}: {layout} - flat",
                    n,
                    differences_mib(res[layout], res["flat"]),
                    budget,
                    f"≤ +{budget:.0f} MiB",
                    digits=1,
                )
