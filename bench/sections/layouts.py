"""layouts: every workload under flat, naive, boot and api, with targets vs flat."""

from __future__ import annotations

import statistics

from context import Context
from measure import differences_mib, ms, ratios, rounds_of
from report import console_table, table
from spawn import Sample
from workloads import LAYOUTS, WORKLOADS, layout_child

TARGET_SIZES = (1000, 3000)
#: workload -> the most vsite/flat may cost (median wall ratio) at TARGET_SIZES, warm index
TARGETS = {"imports": 1.10, "failed": 1.10, "metadata": 1.00, "start": 1.10}
RSS_BUDGET_MIB = 2.0
HEADLINE = [
    "workload",
    "N",
    "boot/flat",
    "boot/flat cpu",
    "boot/naive",
    "api/flat",
    "api/naive",
    "RSS boot-flat MiB",
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
                ratios(res["boot"], res["flat"], "cpu").fmt(),
                ratios(res["boot"], res["naive"]).fmt(),
                ratios(res["api"], res["flat"]).fmt(),
                ratios(res["api"], res["naive"]).fmt(),
                differences_mib(res["boot"], res["flat"]).fmt(1),
            ]
            rows.append(row)
            ctx.log(f"{description}, N={n}: boot/flat {row[2]}, boot/naive {row[4]}")
    ctx.console += console_table(HEADLINE, rows)
    ctx.report += [
        "## Headline: vsite vs flat and vs naive (whole-process wall time ratio)",
        "",
        "Median (min-max) of per-round ratios; < 1 means vsite is faster. `boot` is "
        "vsite's boot path (`VSITE_MANIFEST` + `PYTHONPATH=<boot dir>`, what "
        "`vsite exec` sets up), `api` is an in-process `vsite.activate()` (its import "
        "and activation are inside the measured process). Warm persistent index. "
        "`cpu`: the child's own CPU time instead of wall time (less sensitive to "
        "other load on the machine). RSS column: peak RSS of boot minus flat, MiB.",
        "",
        *table(HEADLINE, rows),
        "",
        *details(results),
        *targets(ctx, results),
    ]


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
        "start cpu ms f/n/b/a",
        "peak RSS MiB f/n/b/a",
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


def targets(ctx: Context, results: Results) -> list[str]:
    rows = []
    for n in TARGET_SIZES:
        if n not in ctx.sizes:
            continue
        for workload, limit in TARGETS.items():
            if (n, workload) not in results:
                continue
            res = results[(n, workload)]
            for variant in ("boot", "api"):
                spread = ratios(res[variant], res["flat"])
                ok = spread.median <= limit
                rows.append(
                    [
                        f"{workload} {variant}/flat",
                        str(n),
                        f"≤ {limit:.2f}",
                        spread.fmt(),
                        "ok" if ok else "MISS",
                    ]
                )
                if not ok:
                    ctx.misses.append(f"N={n} {workload} {variant}/flat {spread.fmt()}")
        for workload in TARGETS:
            if (n, workload) not in results:
                continue
            res = results[(n, workload)]
            for variant in ("boot", "api"):
                spread = differences_mib(res[variant], res["flat"])
                ok = spread.median <= RSS_BUDGET_MIB
                rows.append(
                    [
                        f"RSS {workload} {variant}-flat",
                        str(n),
                        f"≤ +{RSS_BUDGET_MIB:.0f} MiB",
                        spread.fmt(1),
                        "ok" if ok else "MISS",
                    ]
                )
                if not ok:
                    ctx.misses.append(f"N={n} RSS {workload} {variant}-flat {spread.fmt(1)}")
    if not rows:
        return []
    return [
        "## Targets (warm index, median of per-round ratios)",
        "",
        *table(["measure", "N", "target", "measured", ""], rows),
        "",
    ]
