"""frontdoor: ``env/bin/python -c pass`` and ``vsite exec M -- python -c pass`` vs plain.

Six whole-process starts of one program, side by side in interleaved rounds:

- ``plain``: the base interpreter (``--python``), which may hold packages of its own;
- ``venv``: the empty ``venv --without-pip`` of that interpreter (the layouts' own);
- ``flat``: the tree's flat venv (the union of the roots in its site-packages);
- ``shell``: ``DIR/bin/python`` of the environment shell ``vsite env M -o DIR`` wrote
  for the tree's manifest (its one-line ``.pth`` boots the site);
- ``immutable``: the same for the tree's immutable manifest;
- ``exec``: ``vsite exec M -- python ...`` through the bench's vsite command, ``python``
  found on ``PATH`` (exec puts its cached shell's ``bin/`` first).

Issue 13's targets (median wall ratio): shell ≤ 1.10 at 10 roots and ≤ 1.25 at 1,000,
exec ≤ 2.0; checked against ``venv`` (a clean start of the same interpreter), ``plain``
shown beside it. Issue 15's: immutable ≤ 1.05 x flat at 1,000 and 3,000 roots. Once
per N, untimed: each start is checked (the site active where it belongs, ``sys.prefix``,
no module without bytecode), and ``-X importtime`` of the shells is summed for vsite's
own modules.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from context import Context
from measure import differences_mib, ms, ratios, rounds_of
from report import console_table, load_average, table
from spawn import Child, Sample, output
from trees import Tree, package_name, venv_python

#: N -> the most shell/venv may cost (median wall ratio); exec/venv at every N
SHELL_TARGETS = {10: 1.10, 1000: 1.25}
EXEC_TARGET = 2.0
#: issue 15: the immutable shell over flat at these N, median wall ratio
FLAT_TARGET = 1.05
FLAT_TARGET_SIZES = (1000, 3000)
MIN_ROUNDS = 15
STARTS = ("plain", "venv", "flat", "shell", "immutable", "exec")
SHELLS = ("shell", "immutable")  # made by ``vsite env``
#: The measured program: ``pass`` plus the one line ``spawn.Runner`` reads, from
#: builtins only (``time`` is built in): CPU time, peak RSS (VmHWM), check 0.
CODE = (
    "import time;c=time.process_time();"
    "h=[l.split()[1] for l in open('/proc/self/status','rb') if l[:6]==b'VmHWM:'];"
    "print(c,c,int(h[0]) if h else 0,0)"
)
#: Untimed check of one start: site active?, sys.prefix, loaded modules without bytecode
#: on disk (looked at before the import that tests the site), modules with it, the
#: tree's roots on sys.path (vsite's finder resolves them: none should be there).
VERIFY = """\
import os, sys
cached = [getattr(m, "__cached__", None) for m in list(sys.modules.values())]
cached = [c for c in cached if c]
missing = [c for c in cached if not os.path.exists(c)]
roots = sum(1 for p in sys.path if isinstance(p, str) and p.startswith({roots!r}))
try:
    import {package}
    active = {package}.NUMBER == 0
except ImportError:
    active = False
print(active, sys.prefix, len(missing), len(cached), roots, *missing[:3], sep="\\t")
"""
HEADLINE = [
    "N",
    "shell/plain",
    "shell/venv",
    "exec/plain",
    "exec/venv",
    "shell/flat",
    "immutable/flat",
    "issue 13 targets",
    "",
]


def shell_of(ctx: Context, tree: Tree, immutable: bool) -> tuple[Path, float]:
    """``vsite env M -o DIR`` for the tree's manifest or its immutable one (made again
    every run); DIR and seconds."""
    manifest = tree.immutable_manifest if immutable else tree.manifest
    target = ctx.base / "frontdoor" / (f"n{tree.n}-immutable" if immutable else f"n{tree.n}")
    started = time.perf_counter()
    output([*ctx.vsite_cli, "env", str(manifest), "-o", str(target)], ctx.cli_env, ctx.work)
    return target, time.perf_counter() - started


def children(ctx: Context, tree: Tree, shells: dict[str, Path], code: str) -> dict[str, Child]:
    # clean_env already removed PYTHONDONTWRITEBYTECODE (this machine sets it): the
    # warm-up below writes the bytecode of the stdlib and of vsite's own modules.
    env = {k: v for k, v in ctx.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cli_env = {k: v for k, v in ctx.cli_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        "plain": Child([ctx.python, "-c", code], env),
        "venv": Child([ctx.empty_python, "-c", code], env),
        "flat": Child([str(venv_python(tree.flat_venv)), "-c", code], env),
        **{name: Child([str(venv_python(d)), "-c", code], env) for name, d in shells.items()},
        "exec": Child(
            [*ctx.vsite_cli, "exec", str(tree.manifest), "--", "python", "-c", code], cli_env
        ),
    }


def verify(ctx: Context, tree: Tree, shells: dict[str, Path]) -> list[list[str]]:
    """Each start once, untimed: the site where it belongs, bytecode for every module.

    Roots on ``sys.path`` are reported (and listed as a miss), not fatal: the site
    still imports the right thing, only slower.
    """
    rows = []
    envs = os.path.join(ctx.env["VSITE_DIR"], "envs", "")
    code = VERIFY.format(package=package_name(0), roots=os.path.join(tree.roots_dir, ""))
    prefixes = {"flat": tree.flat_venv, **shells}
    for name, child in children(ctx, tree, shells, code).items():
        active, prefix, missing, cached, roots, *examples = (
            output(child.argv, child.env, ctx.work).strip().split("\t")
        )
        want = name not in ("plain", "venv")  # the package: vsite's site, or flat's copy
        if (active == "True") != want:
            raise RuntimeError(f"N={tree.n} {name}: site active {active}, expected {want}")
        if (name in prefixes and Path(prefix) != prefixes[name]) or (
            name == "exec" and not prefix.startswith(envs)
        ):
            raise RuntimeError(f"N={tree.n} {name}: sys.prefix {prefix} is not its shell")
        if missing != "0":
            raise RuntimeError(f"N={tree.n} {name}: {missing} modules without bytecode {examples}")
        if roots != "0":
            ctx.misses.append(f"front door N={tree.n} {name}: {roots} roots on sys.path")
        rows.append([str(tree.n), name, active, f"`{prefix}`", cached, roots])
    return rows


def importtime(python: str, ctx: Context) -> dict[str, int]:
    """Module -> its own import time in µs, from one ``python -X importtime -c pass``."""
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", "pass"],
        env=ctx.env,
        cwd=ctx.work,
        capture_output=True,
        text=True,
        check=True,
    )
    times: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        own, _, name = line[len("import time:") :].split("|")
        times[name.strip()] = times.get(name.strip(), 0) + int(own)
    return times


def is_vsite(module: str) -> bool:
    return module == "vsite" or module.startswith(("vsite.", "_vsite"))


def import_costs(ctx: Context, n: int, name: str, shell: Path) -> list[str]:
    """A shell's imports (one run): vsite's own, the rest only the shell imports, and
    the self times of ``site`` (the boot runs inside it, from the ``.pth``) and of the
    ``sitecustomize`` lookup, each beside the empty venv's."""
    ours = importtime(str(shell / "bin" / "python"), ctx)
    venv = importtime(ctx.empty_python, ctx)
    own = {m: us for m, us in ours.items() if is_vsite(m)}
    extra = {m: us for m, us in ours.items() if not is_vsite(m) and m not in venv}
    top = ", ".join(
        f"`{m}` {us / 1000:.2f}" for m, us in sorted(own.items(), key=lambda i: -i[1])[:4]
    )

    def both(module: str) -> str:
        return f"{ours.get(module, 0) / 1000:.2f} / {venv.get(module, 0) / 1000:.2f}"

    return [
        str(n),
        name,
        f"{len(own)}: {sum(own.values()) / 1000:.2f}",
        f"{len(extra)}: {sum(extra.values()) / 1000:.2f}"
        + (f" ({', '.join(f'`{m}`' for m in sorted(extra))})" if extra else ""),
        both("site"),
        both("sitecustomize"),
        f"{sum(ours.values()) / 1000:.2f} / {sum(venv.values()) / 1000:.2f}",
        top,
    ]


def run(ctx: Context) -> None:
    rounds = max(ctx.rounds, MIN_ROUNDS)
    load_before = load_average()
    rows, details, imports, checks, made = [], [], [], [], []
    linked = set()
    for n in ctx.sizes:
        tree = ctx.trees[n]
        shells = {}
        for name in SHELLS:
            shells[name], seconds = shell_of(ctx, tree, immutable=name == "immutable")
            made.append(f"N={n} {name} {seconds:.2f} s")
            linked.add(os.path.realpath(shells[name] / "bin" / "python"))
        kids = children(ctx, tree, shells, CODE)
        for child in kids.values():  # warm-up: bytecode, exec's cached shell, the index
            ctx.runner.run(child)
        checks += verify(ctx, tree, shells)
        imports += [import_costs(ctx, n, name, shell) for name, shell in shells.items()]
        res = rounds_of(ctx.runner, kids, rounds, "0")
        rows.append(headline_row(ctx, n, res))
        details.append(detail_row(n, res))
        if n in FLAT_TARGET_SIZES:
            ctx.target(
                "front door: immutable `env/bin/python` / flat",
                n,
                ratios(res["immutable"], res["flat"]),
                FLAT_TARGET,
                f"≤ {FLAT_TARGET:.2f}",
            )
        ctx.log(f"front door N={n}: shell/venv {rows[-1][2]}, immutable/flat {rows[-1][6]}")
    ctx.console += console_table(HEADLINE, rows)
    ctx.report += [
        "## Front door: `env/bin/python -c pass` and `vsite exec M -- python -c pass`",
        "",
        "Whole-process wall time of six starts of one program, side by side, "
        f"{rounds} rounds (order rotating); median (min-max) of per-round ratios. "
        f"**plain**: the base interpreter `{ctx.python}` (with whatever its own "
        "site-packages holds); **venv**: its empty `venv --without-pip`; **flat**: the "
        "tree's flat venv (the union of the roots in its site-packages); **shell**: "
        "`DIR/bin/python` of `vsite env M -o DIR` for the tree's manifest (links "
        f"`{', '.join(sorted(linked))}`; its `.pth` boots the site); **immutable**: the "
        'same for the tree\'s `manifest-immutable.json` (`"immutable": true`); **exec**: '
        f"`{' '.join(ctx.vsite_cli)} "
        "exec M -- python ...`, `python` found on `PATH` (exec's cached shell first). "
        "The program is `pass` plus one report line from builtins (`time.process_time()`, "
        "VmHWM from `/proc/self/status`). Bytecode on (`PYTHONDONTWRITEBYTECODE` removed), "
        "written by a warm-up run; warm index. Targets (issue 13), checked against venv: "
        f"shell ≤ {SHELL_TARGETS[10]:.2f} at N=10, ≤ {SHELL_TARGETS[1000]:.2f} at "
        f"N=1000; exec ≤ {EXEC_TARGET:.1f}. Issue 15's (in the Targets table): immutable "
        f"≤ {FLAT_TARGET:.2f} x flat at N = 1,000 and 3,000. Load average before / after: "
        f"{load_before} / {load_average()}.",
        "",
        *table(HEADLINE, rows),
        "",
        *table(
            [
                "N",
                f"ms {' / '.join(STARTS)}",
                "cpu shell/venv",
                "cpu exec/venv",
                "cpu shell/plain",
                "cpu immutable/flat",
                "RSS shell-venv MiB",
                "RSS immutable-flat MiB",
            ],
            details,
        ),
        "",
        "`-X importtime` of each shell's `python -c pass` beside the empty venv's (one run "
        "each, after the warm-up, not timed; self times, ms): vsite's own modules "
        "(`vsite*`, `_vsite*`: count, sum), the modules the shell imports that the venv "
        "does not, `site` (the boot's own work runs inside it, from the `.pth`), the "
        "`sitecustomize` lookup (none exists: a miss over every `sys.path` entry), the "
        "sum of every line.",
        "",
        *table(
            [
                "N",
                "shell",
                "vsite modules",
                "others only in shell",
                "`site` shell / venv",
                "`sitecustomize` shell / venv",
                "all shell / venv",
                "slowest vsite modules",
            ],
            imports,
        ),
        "",
        "Each start checked once per N (untimed, after the warm-up): the site active "
        "(`import benchpkg_0000`) in all but plain and venv, `sys.prefix` (a shell: its "
        "DIR; flat: its venv; exec: its cached shell under `VSITE_DIR/envs`), every "
        "loaded module with a "
        "`__cached__` has its bytecode on disk (else the run fails), and how many of the "
        "tree's roots are on `sys.path` (vsite's finder resolves them; a root there is "
        f"listed as a miss). `vsite env` took {', '.join(made)}.",
        "",
        *table(
            ["N", "start", "site", "sys.prefix", "modules, all with bytecode", "roots on sys.path"],
            checks,
        ),
        "",
    ]


def headline_row(ctx: Context, n: int, res: dict[str, list[Sample]]) -> list[str]:
    shell_venv = ratios(res["shell"], res["venv"])
    exec_venv = ratios(res["exec"], res["venv"])
    target = SHELL_TARGETS.get(n)
    missed = []
    if target is not None and shell_venv.median > target:
        missed.append(f"shell/venv N={n} {shell_venv.fmt()} > {target:.2f}")
    if exec_venv.median > EXEC_TARGET:
        missed.append(f"exec/venv N={n} {exec_venv.fmt()} > {EXEC_TARGET:.1f}")
    ctx.misses += [f"front door {m}" for m in missed]
    return [
        str(n),
        ratios(res["shell"], res["plain"]).fmt(),
        shell_venv.fmt(),
        ratios(res["exec"], res["plain"]).fmt(),
        exec_venv.fmt(),
        ratios(res["shell"], res["flat"]).fmt(),
        ratios(res["immutable"], res["flat"]).fmt(),
        (f"≤ {target:.2f} / " if target is not None else "- / ") + f"≤ {EXEC_TARGET:.1f}",
        "MISS" if missed else "ok",
    ]


def detail_row(n: int, res: dict[str, list[Sample]]) -> list[str]:
    return [
        str(n),
        " / ".join(ms(res[s]) for s in STARTS),
        ratios(res["shell"], res["venv"], "cpu").fmt(),
        ratios(res["exec"], res["venv"], "cpu").fmt(),
        ratios(res["shell"], res["plain"], "cpu").fmt(),
        ratios(res["immutable"], res["flat"], "cpu").fmt(),
        differences_mib(res["shell"], res["venv"]).fmt(1),
        differences_mib(res["immutable"], res["flat"]).fmt(1),
    ]
