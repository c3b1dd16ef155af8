"""exec: ``vsite exec M -- python ...`` vs the same child started directly."""

from __future__ import annotations

from context import Context
from measure import ms, ratios, rounds_of
from report import table
from spawn import Child, probe
from workloads import exec_child


def run(ctx: Context) -> None:
    rows = []
    plain = Child(probe(ctx.empty_python, "workload", "start"), ctx.env)
    for n in ctx.sizes:
        children = {"exec": exec_child(ctx.trees[n], ctx), "plain": plain}
        res = rounds_of(ctx.runner, children, ctx.rounds, "0")
        rows.append(
            [str(n), ratios(res["exec"], res["plain"]).fmt(), ms(res["exec"]), ms(res["plain"])]
        )
        ctx.log(f"vsite exec / plain N={n}: {rows[-1][1]}")
    ctx.report += [
        "## `vsite exec M -- python -c pass` vs plain `python -c pass`",
        "",
        f"`vsite` command: `{' '.join(ctx.vsite_cli)}` (two interpreter starts: "
        "the CLI, then the exec'd child with the boot path).",
        "",
        *table(["N", "exec/plain", "exec ms", "plain ms"], rows),
        "",
    ]
