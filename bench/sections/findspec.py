"""findspec: in-process ``find_spec`` cost per lookup at 1,000 and 3,000 roots over few."""

from __future__ import annotations

import statistics

from context import Context
from measure import Spread, rounds_of
from report import table
from spawn import Child, Sample, probe
from trees import Tree, site_packages, venv_python

TARGET = 1.10  # vsite's per-lookup cost at N over the smallest N, at most (issue 15)


def lookup_child(ctx: Context, tree: Tree, layout: str) -> Child:
    """Per-lookup cost of vsite's SiteFinder, or of the stdlib FileFinder on the flat dir."""
    if layout == "vsite":
        argv = probe(ctx.empty_python, "lookup", "vsite", str(tree.manifest), *tree.packages)
        return Child(argv, ctx.src_env)
    flat = venv_python(tree.flat_venv)
    where = str(site_packages(tree.flat_venv))
    return Child(probe(flat, "lookup", "flat", where, *tree.packages), ctx.env)


def run(ctx: Context) -> None:
    small = min(ctx.sizes)
    rows = []
    for n in (1000, 3000):
        if n not in ctx.sizes:
            continue
        children = {
            f"{layout} {size}": lookup_child(ctx, ctx.trees[size], layout)
            for layout in ("vsite", "flat")
            for size in (n, small)
        }
        res = rounds_of(ctx.runner, children, max(5, ctx.rounds // 2))

        def per_lookup(key: str, index: int, res: dict[str, list[Sample]] = res) -> list[float]:
            return [float(s.check.strip("'").split(",")[index]) for s in res[key]]

        for kind, index in (("hit (package)", 0), ("miss", 1)):
            big = per_lookup(f"vsite {n}", index)
            little = per_lookup(f"vsite {small}", index)
            spread = Spread([b / s for b, s in zip(big, little)])
            flat_big = per_lookup(f"flat {n}", index)
            flat_little = per_lookup(f"flat {small}", index)
            flat = Spread([b / s for b, s in zip(flat_big, flat_little)])
            ok = ctx.target(
                f"find_spec {kind}: N / {small} roots per lookup",
                n,
                spread,
                TARGET,
                f"≤ {TARGET:.2f}",
            )
            rows.append(
                [
                    kind,
                    f"{n} / {small}",
                    spread.fmt(),
                    f"{statistics.median(big) * 1e9:.0f} / {statistics.median(little) * 1e9:.0f}",
                    flat.fmt(),
                    f"{statistics.median(flat_big) * 1e9:.0f}"
                    f" / {statistics.median(flat_little) * 1e9:.0f}",
                    "ok" if ok else "MISS",
                ]
            )
            ctx.log(f"find_spec {kind} N={n}/N={small}: {spread.fmt()} (flat {flat.fmt()})")
    ctx.report += [
        "## Lookup cost vs number of roots (in-process `find_spec`)",
        "",
        "vsite: `SiteFinder.find_spec` of the activated site; flat: the stdlib "
        "`FileFinder` of the flat site-packages (reference: what the file system "
        "itself costs at that size). Per child: the fastest of 24 timed chunks of 500 "
        "lookups (3 passes over 4,000 names, cycling through the N packages), the "
        f"four children alternating; target for vsite ≤ {TARGET:.2f}. A package "
        "hit makes the same stat calls in both (`__init__` + each suffix until found).",
        "",
        *table(
            [
                "lookup",
                "N ratio",
                "vsite ratio",
                "vsite ns big / small",
                "flat ratio",
                "flat ns big / small",
                "",
            ],
            rows,
        ),
        "",
    ]
