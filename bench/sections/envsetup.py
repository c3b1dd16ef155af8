"""envsetup: time to a ready NEW environment from local wheels, vsite vs pip vs uv.

Only when named in ``--sections`` (it installs GBs for torch); ``environments.py``
builds the environments, ``wheelsets.py`` the wheel sets.
"""

from __future__ import annotations

import statistics

from context import Context
from environments import LAYOUTS, EnvSetup, Run, per_round, runs_per_round, step_median
from measure import Spread
from report import console_table, python_tag, table
from wheelsets import WheelSet, synthetic_wheels, torch_wheels

MAX_N = 1000  # larger N: pip alone would take minutes per round
#: uv (warm cache) / vsite (warm store) for a new torch environment, at least
TORCH_TARGET = 20.0
HEADERS = [
    "set",
    "wheels",
    "vsite s = install + activate",
    "pip s = venv + install",
    "uv s = venv + install",
    "pip/vsite",
    "uv/vsite",
    "uv/vsite cpu",
    "rounds / vsite runs",
]


def wheel_sets(ctx: Context) -> tuple[list[tuple[WheelSet, int, int]], str]:
    """(wheel set, rounds, vsite runs per round) to measure, and why torch is skipped."""
    args = ctx.args
    sets: list[tuple[WheelSet, int, int]] = []
    for n in ctx.sizes:
        if n > MAX_N:
            ctx.log(f"envsetup: N={n} skipped (synthetic sets up to {MAX_N})")
            continue
        sets.append((synthetic_wheels(ctx.base, n, fresh=args.fresh), args.envsetup_rounds, 1))
    skipped = ""
    if args.torch_rounds > 0:
        torch = torch_wheels(ctx.base, args.torch_wheels, python_tag(ctx.python))
        if isinstance(torch, str):
            skipped = f"torch set skipped: {torch}"
            print(skipped)
        else:
            runs = runs_per_round(args.torch_vsite_runs, args.torch_rounds)
            sets.append((torch, args.torch_rounds, runs))
    return sets, skipped


def run(ctx: Context) -> None:
    setup = EnvSetup(ctx)
    setup.ensure_uv()
    sets, skipped = wheel_sets(ctx)
    rows, first_rows = [], []
    for wheels, rounds, vsite_runs in sets:
        first = setup.warm(wheels, fresh=ctx.args.fresh, pip=not wheels.persistent)
        res = setup.rounds(wheels, rounds, vsite_runs)
        walls = {layout: per_round(res[layout]) for layout in LAYOUTS}
        cpus = {layout: per_round(res[layout], "cpu") for layout in LAYOUTS}

        def seconds(
            layout: str,
            steps: tuple[str, ...] = ("venv", "install"),
            walls: dict[str, list[float]] = walls,
            res: dict[str, list[list[Run]]] = res,
        ) -> str:
            parts = (f"{step_median(res[layout], s):.2f}" for s in steps)
            return f"{statistics.median(walls[layout]):.2f} = " + " + ".join(parts)

        uv_ratio = Spread([u / v for u, v in zip(walls["uv"], walls["vsite"])])
        rows.append(
            [
                wheels.name,
                f"{len(wheels.wheels)} ({wheels.size_mib:.0f} MiB)",
                seconds("vsite", ("install", "activate")),
                seconds("pip"),
                seconds("uv"),
                Spread([p / v for p, v in zip(walls["pip"], walls["vsite"])]).fmt(1),
                uv_ratio.fmt(1),
                Spread([u / v for u, v in zip(cpus["uv"], cpus["vsite"])]).fmt(1),
                f"{rounds} / {rounds * vsite_runs}",
            ]
        )
        first_rows.append([wheels.name, first.get("vsite", "n/a"), first.get("uv", "n/a")])
        ctx.log(f"envsetup {wheels.name}: uv/vsite {uv_ratio.fmt(1)}, pip/vsite {rows[-1][5]}")
        if wheels.name == "torch":
            ok = uv_ratio.median >= TORCH_TARGET
            rows[-1][6] += f" (target ≥ {TORCH_TARGET:.0f}: {'ok' if ok else 'MISS'})"
            if not ok:
                ctx.misses.append(f"envsetup torch uv/vsite {uv_ratio.fmt(1)}")
    ctx.console += console_table(HEADERS, rows)
    ctx.report += [
        "## New environment from local wheels: vsite (warm store) vs pip vs uv (warm cache)",
        "",
        "A NEW environment from wheel files already on disk. vsite: `vsite install "
        "--store S -o M WHEELS` into a store already holding every wheel (checked: "
        "every root reused, none unpacked), then the first activation in a fresh "
        "process (`import vsite; vsite.activate(M)`, empty `VSITE_DIR`: cold index, "
        "farm built). pip: `python -m venv D` (pip seeded by ensurepip) + `D/bin/pip "
        "install --no-index --no-deps --find-links DIR WHEELS`, pip's defaults (it "
        f"compiles bytecode; pip {setup.pip_version}, no config file). uv "
        f"(`{setup.uv_version}`, from the registry): `uv venv D` + `uv pip install "
        "--offline --no-deps --python D/bin/python WHEELS`, its cache warm (a warm-up "
        "install first) and on the same file system (hard links): uv's best case; uv "
        "does not compile bytecode. Seconds are medians; ratios are per round (other / "
        "the median of vsite's runs in that round), median (min-max); > 1 means vsite "
        "is faster. cpu: user + system time of the step's processes. Every environment "
        "is checked (distribution versions, a top-level package found), untimed, then "
        "removed. The torch set is measured in fewer rounds for pip and uv (each "
        "installs GBs); pip has no warm-up for it.",
        "",
        *table(HEADERS, rows),
        "",
        *([skipped, ""] if skipped else []),
        "First environment from scratch (the warm-up; context, not compared round by round):",
        "",
        *table(
            ["set", "vsite: install into an empty store + activate", "uv: install, cold cache"],
            first_rows,
        ),
        "",
    ]
