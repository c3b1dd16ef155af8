"""index: the persistent index reader (marshal vs json vs pickle) and the cold build.

vsite's own work runs in a child (``probes/index_costs.py``, the measured vsite on
``PYTHONPATH``); fresh-process reads are measured children (``probes/reader.py``).
"""

from __future__ import annotations

import json
import statistics

from context import Context
from measure import Spread, rounds_of
from report import table
from spawn import Child, output, probe

READERS = ("marshal", "json", "pickle")


def reader_size(ctx: Context) -> int:
    return 3000 if not ctx.args.quick else max(ctx.sizes)


def run(ctx: Context) -> None:
    n = reader_size(ctx)
    built = [ctx.trees[size] for size in (1000, 3000) if size in ctx.trees]
    argv = probe(
        ctx.empty_python,
        "index_costs",
        str(ctx.work),
        str(max(30, ctx.rounds * 3)),
        str(max(3, ctx.rounds // 3)),
        str(ctx.trees[n].manifest),
        *(str(tree.manifest) for tree in built),
    )
    costs = json.loads(output(argv, ctx.src_env, ctx.work))
    reader = costs["reader"]
    loads: dict[str, list[float]] = reader["loads"]
    fresh = {
        name: Child(probe(ctx.empty_python, "reader", name, reader["files"][name]), ctx.env)
        for name in READERS
    }
    fres = rounds_of(ctx.runner, fresh, ctx.rounds)
    fresh_times = {name: [float(s.check) for s in fres[name]] for name in READERS}
    rows = []
    for name in READERS:
        rows.append(
            [
                name,
                f"{reader['sizes'][name] / 1024:.0f}",
                f"{statistics.median(loads[name]) * 1000:.2f}",
                Spread([a / b for a, b in zip(loads[name], loads["marshal"])]).fmt(),
                f"{statistics.median(fresh_times[name]) * 1000:.2f}",
                Spread([a / b for a, b in zip(fresh_times[name], fresh_times["marshal"])]).fmt(),
            ]
        )
    fastest = min(READERS, key=lambda name: statistics.median(fresh_times[name]))
    summary = f"fastest reader at N={n}: {fastest} " + ", ".join(
        f"{row[0]} {row[5]}x (fresh process)" for row in rows
    )
    ctx.log(summary)
    ctx.console.append(summary)
    ctx.report += [
        f"## Persistent index reader: marshal vs json vs pickle (N={n} index)",
        "",
        "Same fields: the index's roots, top-level names with their holders, root "
        "mtimes, distributions, `.pth` files and native names, as plain tuples, lists "
        "and dicts (json stores tuples as lists; vsite's own file is sectioned, its "
        "records marshalled). In-process: `loads` only, rounds rotating. Fresh "
        "process: `import <reader>` + read the file + `loads`, in a child.",
        "",
        *table(
            ["reader", "size KiB", "loads ms", "loads vs marshal", "fresh ms", "fresh vs marshal"],
            rows,
        ),
        "",
        f"Fastest: **{fastest}**.",
        "",
    ]
    rows = []
    for tree, build in zip(built, costs["builds"]):
        per = 1000 / tree.n
        rows.append(
            [
                str(tree.n),
                f"{statistics.median(build['build']) * 1000 * per:.1f}",
                f"{statistics.median(build['encode']) * 1000 * per:.2f}",
                f"{statistics.median(build['load']) * 1000 * per:.2f}",
                f"{build['bytes'] / 1024:.0f}",
            ]
        )
        ctx.log(f"index build N={tree.n}: {rows[-1][1]} ms per 1,000 roots")
    ctx.report += [
        "## Index build (cold) per 1,000 roots, warm OS cache",
        "",
        "In a child process, median of repeats. build = scan every root + merge "
        "(`build_index`); encode = `index_write.encode`; warm load = "
        "`index_cache.load` (decode + verify every root's identity).",
        "",
        *table(
            ["N", "build ms/1k roots", "encode ms/1k", "warm load ms/1k", "index KiB"],
            rows,
        ),
        "",
    ]
