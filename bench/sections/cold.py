"""cold: the boot path's activation with a cold index, a warm one, a trusted sidecar."""

from __future__ import annotations

import statistics
from pathlib import Path

from context import Context
from measure import Spread, ms, ratios, rounds_of
from report import table
from spawn import output
from trees import Tree
from workloads import WORKLOADS, layout_child

TARGET_SIZES = (1000, 3000)
#: the most the cold index build may add to a start, ms per 1,000 roots (issue 15)
BUILD_MS_PER_1000 = 15.0


def trusted_manifest(ctx: Context, tree: Tree) -> Path:
    """A copy of the manifest with a sidecar index (``vsite index``): trusted, no stats."""
    path = tree.dir / "manifest-trusted.json"
    path.write_bytes(tree.manifest.read_bytes())
    output([*ctx.vsite_cli, "index", str(path)], ctx.cli_env, ctx.work)
    return path


def run(ctx: Context) -> None:
    rows = []
    for n in ctx.sizes:
        tree = ctx.trees[n]
        args, expected = WORKLOADS["start"][1](tree)
        trusted = trusted_manifest(ctx, tree)
        children = {
            "cold": layout_child("boot-cold", tree, ctx, args),
            "warm": layout_child("boot", tree, ctx, args),
            "trusted": layout_child("boot", tree, ctx, args, trusted),
            "flat": layout_child("flat", tree, ctx, args),
        }
        res = rounds_of(ctx.runner, children, ctx.rounds, expected)
        pairs = list(zip(res["cold"], res["warm"]))
        build = Spread([(c.wall - w.wall) * 1e6 / n for c, w in pairs])
        if n in TARGET_SIZES:
            ctx.target(
                "cold index build: cold - warm start, ms per 1,000 roots",
                n,
                build,
                BUILD_MS_PER_1000,
                f"≤ {BUILD_MS_PER_1000:.0f} ms",
                digits=1,
            )
        rows.append(
            [
                str(n),
                ratios(res["cold"], res["warm"]).fmt(),
                ratios(res["warm"], res["trusted"]).fmt(),
                ratios(res["trusted"], res["flat"]).fmt(),
                " / ".join(ms(res[k]) for k in ("cold", "warm", "trusted", "flat")),
                f"{statistics.median(c.wall - w.wall for c, w in pairs) * 1000:.1f}",
                build.fmt(1),
            ]
        )
        ctx.log(f"activation cold/warm N={n}: {rows[-1][1]}, warm/trusted {rows[-1][2]}")
    ctx.report += [
        "## Activation: cold vs warm index vs trusted sidecar",
        "",
        "Boot path, `python -c pass`. cold = `VSITE_DIR` pointing at a new empty "
        "directory for every run (the index is built, then stored); warm = the "
        "persistent index, verified by the identity (inode, mtime) of every root; "
        "trusted = a sidecar index next to the manifest (`vsite index`, for immutable "
        "roots), decoded without verification. Build per 1,000 roots: the per-round "
        f"cold - warm wall time scaled to 1,000 roots (target ≤ {BUILD_MS_PER_1000:.0f} ms "
        "at N = 1,000 and 3,000).",
        "",
        *table(
            [
                "N",
                "cold/warm",
                "warm/trusted",
                "trusted/flat",
                "ms cold / warm / trusted / flat",
                "cold-warm ms",
                "build ms per 1,000 roots",
            ],
            rows,
        ),
        "",
    ]
