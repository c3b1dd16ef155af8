"""vsite benchmarks: ratios measured side by side in one run, never absolute pass/fail.

    python bench/run.py [--quick]

Builds (or reuses) synthetic trees under bench/trees/, runs every workload under every
layout in interleaved rounds (the layouts' order rotates from round to round, so drift
and background load hit them alike), prints the headline table and writes
bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import envsetup  # noqa: E402
import workloads  # noqa: E402
from trees import (  # noqa: E402
    DEFAULT_DIR,
    Tree,
    base_venv,
    ensure_tree,
    site_packages,
    venv_python,
)
from workloads import (  # noqa: E402
    LAYOUTS,
    WORKLOADS,
    Child,
    Runner,
    Sample,
    child_code,
    clean_env,
    layout_child,
)

FULL_SIZES = (10, 100, 1000, 3000)
QUICK_SIZES = (10, 100, 1000)
TARGET_SIZES = (1000, 3000)
#: workload -> the most vsite/flat may cost (median wall ratio) at TARGET_SIZES, warm index
TARGETS = {"imports": 1.10, "failed": 1.10, "metadata": 1.00, "start": 1.10}
RSS_BUDGET_MIB = 2.0
FINDSPEC_TARGET = 1.2
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
SECTIONS = ("layouts", "cold", "exec", "findspec", "index", "envsetup")
#: envsetup installs GBs (torch) and takes minutes: only when asked for
DEFAULT_SECTIONS = [s for s in SECTIONS if s != "envsetup"]


# -- statistics --------------------------------------------------------------------------


class Spread:
    """Median and range of per-round values."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.median = statistics.median(values)
        self.low = min(values)
        self.high = max(values)

    def fmt(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def ratios(a: list[Sample], b: list[Sample], metric: str = "wall") -> Spread:
    """a/b per round."""
    return Spread([x.value(metric) / y.value(metric) for x, y in zip(a, b)])


def differences_mib(a: list[Sample], b: list[Sample]) -> Spread:
    return Spread([(x.rss_kib - y.rss_kib) / 1024 for x, y in zip(a, b)])


def ms(samples: list[Sample], metric: str = "wall") -> str:
    return f"{statistics.median(s.value(metric) for s in samples) * 1000:.1f}"


def rounds_of(
    runner: Runner, children: dict[str, Child], rounds: int, expected: str | None = None
) -> dict[str, list[Sample]]:
    """Run every child once per round, the order rotating by one each round."""
    names = list(children)
    results: dict[str, list[Sample]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sample = runner.run(children[name])
            if expected is not None and sample.check != expected:
                raise RuntimeError(f"{name}: check {sample.check} != expected {expected}")
            results[name].append(sample)
    return results


# -- sections ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = args.python
        self.base = args.trees_dir
        self.sizes: tuple[int, ...] = tuple(args.sizes)
        self.rounds: int = args.rounds
        self.state = self.base / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        self.env = clean_env(self.state)
        self.runner = Runner(self.base / "work")
        self.trees: dict[int, Tree] = {}
        self.empty: Path = Path()
        self.report: list[str] = []
        self.headline: list[list[str]] = []
        self.misses: list[str] = []
        self.reader_summary = ""
        self.layout_results: dict[tuple[int, str], dict[str, list[Sample]]] = {}
        self.envsetup_rows: list[list[str]] = []

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # trees ------------------------------------------------------------------------

    def build_trees(self) -> None:
        started = time.perf_counter()
        self.empty = base_venv(self.base, self.python)
        if not self.needs_trees:
            return  # envsetup builds its own wheels
        wanted = set(self.sizes)
        if "index" in self.args.sections:
            wanted.add(self.reader_size)
        for n in sorted(wanted):
            tree, rebuilt = ensure_tree(self.base, n, self.python, fresh=self.args.fresh)
            self.trees[n] = tree
            if rebuilt:
                self.log(f"built tree N={n}")
        self.log(f"trees ready in {time.perf_counter() - started:.1f} s")

    @property
    def needs_trees(self) -> bool:
        return any(section != "envsetup" for section in self.args.sections)

    @property
    def reader_size(self) -> int:
        return 3000 if not self.args.quick else max(self.sizes)

    def warm(self) -> None:
        """One run of each child: bytecode caches written, indexes persisted, checks ok."""
        if not self.needs_trees:
            return
        started = time.perf_counter()
        for n in self.sizes:
            tree = self.trees[n]
            for workload, (_, make) in WORKLOADS.items():
                if workload not in self.args.workloads:
                    continue
                body, expected = make(tree)
                for layout in LAYOUTS:
                    sample = self.runner.run(layout_child(layout, tree, self.empty, self.env, body))
                    if sample.check != expected:
                        raise RuntimeError(
                            f"N={n} {workload} {layout}: check {sample.check} != {expected}"
                        )
            self.runner.run(self.exec_child(tree))
        self.log(f"warm-up done in {time.perf_counter() - started:.1f} s")

    # layouts side by side ---------------------------------------------------------

    def layouts(self) -> None:
        rows = []
        for workload, (description, make) in WORKLOADS.items():
            if workload not in self.args.workloads:
                continue
            for n in self.sizes:
                tree = self.trees[n]
                body, expected = make(tree)
                children = {
                    layout: layout_child(layout, tree, self.empty, self.env, body)
                    for layout in LAYOUTS
                }
                res = rounds_of(self.runner, children, self.rounds, expected)
                self.layout_results[(n, workload)] = res
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
                self.headline.append(row)
                self.log(f"{description}, N={n}: boot/flat {row[2]}, boot/naive {row[4]}")
        self.report += [
            "## Headline: vsite vs flat and vs naive (whole-process wall time ratio)",
            "",
            "Median (min-max) of per-round ratios; < 1 means vsite is faster. `boot` is "
            "vsite's boot path (`VSITE_MANIFEST` + `PYTHONPATH=<boot dir>`, what "
            "`vsite exec` sets up), `api` is an in-process `vsite.activate()` (its import "
            "and activation are inside the measured process). Warm persistent index. "
            "`cpu`: the child's own CPU time instead of wall time (less sensitive to "
            "other load on the machine). RSS column: peak RSS of boot minus flat, MiB.",
            "",
            *table(
                HEADLINE,
                rows,
            ),
            "",
        ]
        self.detail_tables()
        self.targets()

    def detail_tables(self) -> None:
        self.report += [
            "## Details per workload",
            "",
            "Medians in ms (context only: the ratios above are what is compared). `cpu` is "
            "the child's own `time.process_time()` at the end of the workload (interpreter "
            "start included, teardown excluded); `start cpu` is the same clock when the "
            "`-c` code began (interpreter start + `site` + the boot path's activation).",
            "",
        ]
        rows = []
        for (n, workload), res in self.layout_results.items():
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
        self.report += [
            *table(
                [
                    "workload",
                    "N",
                    *(f"{layout} wall" for layout in LAYOUTS),
                    "cpu boot/flat",
                    "cpu api/flat",
                    "start cpu ms f/n/b/a",
                    "peak RSS MiB f/n/b/a",
                ],
                rows,
            ),
            "",
        ]

    def targets(self) -> None:
        rows = []
        for n in TARGET_SIZES:
            if n not in self.sizes:
                continue
            for workload, limit in TARGETS.items():
                if (n, workload) not in self.layout_results:
                    continue
                res = self.layout_results[(n, workload)]
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
                        self.misses.append(f"N={n} {workload} {variant}/flat {spread.fmt()}")
            for workload in TARGETS:
                if (n, workload) not in self.layout_results:
                    continue
                res = self.layout_results[(n, workload)]
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
                        self.misses.append(f"N={n} RSS {workload} {variant}-flat {spread.fmt(1)}")
        if rows:
            self.report += [
                "## Targets (warm index, median of per-round ratios)",
                "",
                *table(["measure", "N", "target", "measured", ""], rows),
                "",
            ]

    # cold vs warm, exec ---------------------------------------------------------------

    def trusted_manifest(self, tree: Tree) -> Path:
        """A copy of the manifest with a sidecar index (``vsite index``): trusted, no stats."""
        from vsite import index_cache
        from vsite.index import build_index
        from vsite.manifest import Manifest

        path = tree.dir / "manifest-trusted.json"
        path.write_bytes(tree.manifest.read_bytes())
        index_cache.store(build_index(Manifest.load(path)), index_cache.sidecar_path(str(path)))
        return path

    def cold_warm(self) -> None:
        rows = []
        for n in self.sizes:
            tree = self.trees[n]
            body, expected = WORKLOADS["start"][1](tree)
            children = {
                "cold": layout_child("boot-cold", tree, self.empty, self.env, body),
                "warm": layout_child("boot", tree, self.empty, self.env, body),
                "trusted": layout_child(
                    "boot", tree, self.empty, self.env, body, self.trusted_manifest(tree)
                ),
                "flat": layout_child("flat", tree, self.empty, self.env, body),
            }
            res = rounds_of(self.runner, children, self.rounds, expected)
            pairs = list(zip(res["cold"], res["warm"]))
            rows.append(
                [
                    str(n),
                    ratios(res["cold"], res["warm"]).fmt(),
                    ratios(res["warm"], res["trusted"]).fmt(),
                    ratios(res["trusted"], res["flat"]).fmt(),
                    " / ".join(ms(res[k]) for k in ("cold", "warm", "trusted", "flat")),
                    f"{statistics.median(c.wall - w.wall for c, w in pairs) * 1000:.1f}",
                ]
            )
            self.log(f"activation cold/warm N={n}: {rows[-1][1]}, warm/trusted {rows[-1][2]}")
        self.report += [
            "## Activation: cold vs warm index vs trusted sidecar",
            "",
            "Boot path, `python -c pass`. cold = `VSITE_DIR` pointing at a new empty "
            "directory for every run (the index is built, then stored); warm = the "
            "persistent index, verified by the identity (inode, mtime) of every root; "
            "trusted = a sidecar index next to the manifest (`vsite index`, for immutable "
            "roots), decoded without verification.",
            "",
            *table(
                [
                    "N",
                    "cold/warm",
                    "warm/trusted",
                    "trusted/flat",
                    "ms cold / warm / trusted / flat",
                    "cold-warm ms",
                ],
                rows,
            ),
            "",
        ]

    def exec_child(self, tree: Tree) -> Child:
        code = child_code("", "_check = 0")
        return Child(
            [*self.args.vsite_cli, "exec", str(tree.manifest), "--", self.empty_python, "-c", code],
            self.env,
        )

    @property
    def empty_python(self) -> str:
        return str(venv_python(self.empty))

    def exec_vs_plain(self) -> None:
        rows = []
        plain = Child([self.empty_python, "-c", child_code("", "_check = 0")], self.env)
        for n in self.sizes:
            tree = self.trees[n]
            res = rounds_of(
                self.runner, {"exec": self.exec_child(tree), "plain": plain}, self.rounds, "0"
            )
            rows.append(
                [str(n), ratios(res["exec"], res["plain"]).fmt(), ms(res["exec"]), ms(res["plain"])]
            )
            self.log(f"vsite exec / plain N={n}: {rows[-1][1]}")
        self.report += [
            "## `vsite exec M -- python -c pass` vs plain `python -c pass`",
            "",
            f"`vsite` command: `{' '.join(self.args.vsite_cli)}` (two interpreter starts: "
            "the CLI, then the exec'd child with the boot path).",
            "",
            *table(["N", "exec/plain", "exec ms", "plain ms"], rows),
            "",
        ]

    # find_spec -------------------------------------------------------------------------

    def findspec_child(self, tree: Tree, layout: str) -> Child:
        """Per-lookup cost of vsite's SiteFinder, or of the stdlib FileFinder on the flat dir."""
        if layout == "vsite":
            python = self.empty_python
            setup = f"""
import sys as _s
_s.path.insert(0, {str(workloads.SRC)!r})
import vsite as _v
del _s.path[0]
_f = _v.activate({str(tree.manifest)!r}).path_hook.site
"""
        else:
            python = str(venv_python(tree.flat_venv))
            setup = f"""
import sys as _s
_f = _s.path_hooks[-1]({str(site_packages(tree.flat_venv))!r})
"""
        body = (
            setup
            + f"""
_names = {tree.packages!r}
_hits = (_names * (4000 // len(_names) + 1))[:4000]
_misses = ['nosuchmod_%04d' % k for k in range(4000)]
def _best(seq):
    best = float('inf')
    for _ in range(3):
        for start in range(0, len(seq), 500):
            chunk = seq[start:start + 500]
            t = _t.perf_counter()
            for name in chunk:
                _f.find_spec(name)
            best = min(best, (_t.perf_counter() - t) / len(chunk))
    return best
assert all(_f.find_spec(n) is not None for n in _names)
assert _f.find_spec('nosuchmod_0000') is None
_check = '%r,%r' % (_best(_hits), _best(_misses))
"""
        )
        return Child([python, "-c", child_code("", body)], self.env)

    def find_spec(self) -> None:
        small = min(self.sizes)
        rows = []
        for n in (1000, 3000):
            if n not in self.sizes:
                continue
            children = {
                f"{layout} {size}": self.findspec_child(self.trees[size], layout)
                for layout in ("vsite", "flat")
                for size in (n, small)
            }
            res = rounds_of(self.runner, children, max(5, self.rounds // 2))

            def per_lookup(key: str, index: int, res: dict[str, list[Sample]] = res) -> list[float]:
                return [float(s.check.strip("'").split(",")[index]) for s in res[key]]

            for kind, index in (("hit (package)", 0), ("miss", 1)):
                big = per_lookup(f"vsite {n}", index)
                little = per_lookup(f"vsite {small}", index)
                spread = Spread([b / s for b, s in zip(big, little)])
                flat_big = per_lookup(f"flat {n}", index)
                flat_little = per_lookup(f"flat {small}", index)
                flat = Spread([b / s for b, s in zip(flat_big, flat_little)])
                ok = spread.median <= FINDSPEC_TARGET
                rows.append(
                    [
                        kind,
                        f"{n} / {small}",
                        spread.fmt(),
                        f"{statistics.median(big) * 1e9:.0f}"
                        f" / {statistics.median(little) * 1e9:.0f}",
                        flat.fmt(),
                        f"{statistics.median(flat_big) * 1e9:.0f}"
                        f" / {statistics.median(flat_little) * 1e9:.0f}",
                        "ok" if ok else "MISS",
                    ]
                )
                if not ok:
                    self.misses.append(f"find_spec {kind} {n}/{small} {spread.fmt()}")
                self.log(f"find_spec {kind} N={n}/N={small}: {spread.fmt()} (flat {flat.fmt()})")
        self.report += [
            "## Lookup cost vs number of roots (in-process `find_spec`)",
            "",
            "vsite: `SiteFinder.find_spec` of the activated site; flat: the stdlib "
            "`FileFinder` of the flat site-packages (reference: what the file system "
            "itself costs at that size). Per child: the fastest of 24 timed chunks of 500 "
            "lookups (3 passes over 4,000 names, cycling through the N packages), the "
            f"four children alternating; target for vsite ≤ {FINDSPEC_TARGET}. A package "
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

    # reader + index build (in-process) ----------------------------------------------

    def index_sections(self) -> None:
        import json
        import marshal
        import pickle

        from vsite import index_cache
        from vsite.index import build_index
        from vsite.manifest import Manifest

        n = self.reader_size
        tree = self.trees[n]
        index = build_index(Manifest.load(tree.manifest))
        blobs = {"marshal": index_cache.encode(index)}
        fields = marshal.loads(blobs["marshal"])
        blobs["json"] = json.dumps(
            [f.decode("latin-1") if isinstance(f, bytes) else f for f in fields],
            separators=(",", ":"),
        ).encode()
        blobs["pickle"] = pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
        loaders: dict[str, Callable[[bytes], object]] = {
            "marshal": marshal.loads,
            "json": json.loads,
            "pickle": pickle.loads,
        }
        times: dict[str, list[float]] = {name: [] for name in loaders}
        names = list(loaders)
        for r in range(max(30, self.rounds * 3)):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                loaders[name](blobs[name])
                times[name].append(time.perf_counter() - started)
        # A fresh process pays for the reader's import too (json and pickle import re...).
        files = {}
        for name, blob in blobs.items():
            path = self.base / "work" / f"index-{n}.{name}"
            path.write_bytes(blob)
            files[name] = path
        fresh = {
            name: Child(
                [
                    self.empty_python,
                    "-c",
                    child_code(
                        "",
                        f"_p = _t.perf_counter()\nimport {name} as _r\n"
                        f"with open({str(files[name])!r}, 'rb') as _f:\n    _d = _f.read()\n"
                        f"_r.loads(_d)\n_check = repr(_t.perf_counter() - _p)",
                    ),
                ],
                self.env,
            )
            for name in names
        }
        fres = rounds_of(self.runner, fresh, self.rounds)
        fresh_times = {name: [float(s.check.strip("'")) for s in fres[name]] for name in names}
        rows = []
        for name in names:
            rows.append(
                [
                    name,
                    f"{len(blobs[name]) / 1024:.0f}",
                    f"{statistics.median(times[name]) * 1000:.2f}",
                    Spread([a / b for a, b in zip(times[name], times["marshal"])]).fmt(),
                    f"{statistics.median(fresh_times[name]) * 1000:.2f}",
                    Spread(
                        [a / b for a, b in zip(fresh_times[name], fresh_times["marshal"])]
                    ).fmt(),
                ]
            )
        fastest = min(names, key=lambda name: statistics.median(fresh_times[name]))
        self.reader_summary = f"fastest reader at N={n}: {fastest} " + ", ".join(
            f"{row[0]} {row[5]}x (fresh process)" for row in rows
        )
        self.log(self.reader_summary)
        self.report += [
            f"## Persistent index reader: marshal vs json vs pickle (N={n} index)",
            "",
            "Same fields (the vsite index-cache tuple; json stores tuples as lists and "
            "bytes fields as strings). In-process: `loads` only, rounds rotating. Fresh "
            "process: `import <reader>` + read the file + `loads`, in a child.",
            "",
            *table(
                [
                    "reader",
                    "size KiB",
                    "loads ms",
                    "loads vs marshal",
                    "fresh ms",
                    "fresh vs marshal",
                ],
                rows,
            ),
            "",
            f"Fastest: **{fastest}**.",
            "",
        ]
        self.index_build(index_cache, build_index, Manifest)

    def index_build(self, index_cache: object, build_index: object, manifest_cls: object) -> None:
        rows = []
        for n in (1000, 3000):
            tree = self.trees.get(n)
            if tree is None:
                continue
            manifest = manifest_cls.load(tree.manifest)  # type: ignore[attr-defined]
            builds, encodes, decodes = [], [], []
            data = b""
            for _ in range(max(3, self.rounds // 3)):
                started = time.perf_counter()
                index = build_index(manifest)  # type: ignore[operator]
                builds.append(time.perf_counter() - started)
                started = time.perf_counter()
                data = index_cache.encode(index)  # type: ignore[attr-defined]
                encodes.append(time.perf_counter() - started)
                started = time.perf_counter()
                loaded = index_cache.load(str(tree.manifest), data)  # type: ignore[attr-defined]
                decodes.append(time.perf_counter() - started)
                assert loaded is not None
            per = 1000 / n
            rows.append(
                [
                    str(n),
                    f"{statistics.median(builds) * 1000 * per:.1f}",
                    f"{statistics.median(encodes) * 1000 * per:.2f}",
                    f"{statistics.median(decodes) * 1000 * per:.2f}",
                    f"{len(data) / 1024:.0f}",
                ]
            )
            self.log(f"index build N={n}: {rows[-1][1]} ms per 1,000 roots")
        self.report += [
            "## Index build (cold) per 1,000 roots, warm OS cache",
            "",
            "In-process, median of repeats. build = scan every root + merge "
            "(`build_index`); encode = `index_cache.encode`; warm load = "
            "`index_cache.load` (decode + verify every root's identity).",
            "",
            *table(
                ["N", "build ms/1k roots", "encode ms/1k", "warm load ms/1k", "index KiB"],
                rows,
            ),
            "",
        ]

    # new environment from local wheels ---------------------------------------------

    def envsetup(self) -> None:
        args = self.args
        setup = envsetup.EnvSetup(
            self.base,
            self.python,
            self.empty,
            args.vsite_cli,
            args.src,
            self.env,
            self.log,
            fresh=args.fresh,
        )
        setup.ensure_uv()
        sets: list[tuple[envsetup.WheelSet, int, int]] = []
        for n in self.sizes:
            if n > envsetup.ENVSETUP_MAX_N:
                self.log(
                    f"envsetup: N={n} skipped (synthetic sets up to {envsetup.ENVSETUP_MAX_N})"
                )
                continue
            wheels = envsetup.synthetic_wheels(self.base, n, fresh=args.fresh)
            sets.append((wheels, args.envsetup_rounds, 1))
        skipped = ""
        if args.torch_rounds > 0:
            torch = envsetup.torch_wheels(self.base, args.torch_wheels, python_tag(self.python))
            if isinstance(torch, str):
                skipped = f"torch set skipped: {torch}"
                print(skipped)
            else:
                runs = envsetup.runs_per_round(args.torch_vsite_runs, args.torch_rounds)
                sets.append((torch, args.torch_rounds, runs))
        rows, first_rows = [], []
        for wheels, rounds, vsite_runs in sets:
            first = setup.warm(wheels, fresh=args.fresh, pip=not wheels.persistent)
            res = setup.rounds(wheels, rounds, vsite_runs)
            walls = {layout: envsetup.per_round(res[layout]) for layout in envsetup.LAYOUTS}
            cpus = {layout: envsetup.per_round(res[layout], "cpu") for layout in envsetup.LAYOUTS}

            def seconds(
                layout: str,
                steps: tuple[str, ...] = ("venv", "install"),
                walls: dict[str, list[float]] = walls,
                res: dict[str, list[list[envsetup.Run]]] = res,
            ) -> str:
                parts = (f"{envsetup.step_median(res[layout], s):.2f}" for s in steps)
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
            self.log(f"envsetup {wheels.name}: uv/vsite {uv_ratio.fmt(1)}, pip/vsite {rows[-1][5]}")
            if wheels.name == "torch":
                ok = uv_ratio.median >= envsetup.TORCH_TARGET
                rows[-1][6] += f" (target ≥ {envsetup.TORCH_TARGET:.0f}: {'ok' if ok else 'MISS'})"
                if not ok:
                    self.misses.append(f"envsetup torch uv/vsite {uv_ratio.fmt(1)}")
        headers = [
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
        self.envsetup_rows = [headers, *rows]
        self.report += [
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
            *table(headers, rows),
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

    # report --------------------------------------------------------------------------

    def write(self, started: float) -> None:
        header = [
            "# vsite benchmark results",
            "",
            "Generated by `python bench/run.py"
            + (" --quick" if self.args.quick else "")
            + "`; do not edit by hand.",
            "",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- machine: {machine()}",
            f"- Python (children): {python_version(self.python)} (`{self.python}`)",
            f"- vsite: {git_describe()}",
            f"- sizes N: {', '.join(map(str, self.sizes))}; rounds per comparison: "
            f"{self.rounds}; load average at start: {load_average()}",
            f"- total time: {time.perf_counter() - started:.0f} s",
            "",
            "Layouts: **flat** = the union of the roots copied into one venv's "
            "site-packages; **naive** = a venv whose site-packages holds a `.pth` listing "
            "every root (all roots on `sys.path`); **boot**/**api** = vsite in an empty "
            "venv of the same base Python. Every child is `python -c CODE` started with "
            "`posix_spawn`, bytecode caches warm, `PYTHONDONTWRITEBYTECODE` unset.",
            "",
        ]
        misses = (
            ["## Misses", "", *(f"- {m}" for m in self.misses), ""]
            if self.misses
            else ["## Misses", "", "None.", ""]
        )
        text = "\n".join(header + self.report + misses)
        self.args.output.write_text(text, encoding="utf-8")
        self.log(f"wrote {self.args.output}")


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {model}, {os.cpu_count()} CPUs"


def _ask(python: str, expression: str) -> str:
    """What ``python`` prints for ``expression`` (it has ``sys`` imported)."""
    out = subprocess.run(
        [python, "-c", f"import sys; print({expression})"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def python_version(python: str) -> str:
    return _ask(python, "sys.version.split()[0]")


def git_describe() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--", str(workloads.SRC)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes in src/" if dirty else "")


def python_tag(python: str) -> str:
    return _ask(python, "'cp%d%d' % sys.version_info[:2]")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def default_cli(src: Path) -> list[str]:
    script = Path(sys.executable).with_name("vsite")
    if script.exists() and src == workloads.REPO / "src":
        return [str(script)]
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); "
        "from vsite.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        "--src", type=Path, default=workloads.SRC, help="the vsite source tree to measure"
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
        choices=SECTIONS,
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
    parser.add_argument("--torch-wheels", type=Path, default=envsetup.TORCH_WHEELS)
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
    workloads.SRC = args.src
    workloads.BOOT_DIR = args.src / "vsite" / "_boot"
    if args.vsite_cli is None:
        args.vsite_cli = default_cli(args.src)
    args.trees_dir = args.trees_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse(argv)
    sys.path.insert(0, str(args.src))  # the in-process sections measure this vsite
    bench = Bench(args)
    bench.build_trees()
    bench.warm()
    sections = {
        "layouts": bench.layouts,
        "cold": bench.cold_warm,
        "exec": bench.exec_vs_plain,
        "findspec": bench.find_spec,
        "index": bench.index_sections,
        "envsetup": bench.envsetup,
    }
    for name in SECTIONS:
        if name in args.sections:
            sections[name]()
    bench.write(started)
    bench.runner.close()
    print_table(HEADLINE, bench.headline)
    if "index" in args.sections:
        print(bench.reader_summary)
    if bench.envsetup_rows:
        print_table(bench.envsetup_rows[0], bench.envsetup_rows[1:])
    print("misses:", "; ".join(bench.misses) if bench.misses else "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
