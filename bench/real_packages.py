"""Fresh-process import time of real packages: vsite vs the same pins in a pip venv.

    python bench/real_packages.py [--torch] [--rounds N] [--python PY]

Builds (or reuses) four layouts of the pinned set in bench/real-requirements.txt under
bench/trees/real/: ``flat`` (a venv, pip install, bytecode compiled), ``store`` (``vsite
install`` into a store), ``foreign`` (one read-only ``pip install --target`` root per
wheel, no bytecode) and ``naive`` (those roots on PYTHONPATH). Every child runs as
``nobody`` with bytecode writing on; ratios vs flat are taken per round. Prints the
table and writes bench/REAL_RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PINS = HERE / "real-requirements.txt"
TORCH_PINS = HERE / "real-requirements-torch.txt"
TOP_LEVEL = ("pandas", "numpy", "sphinx", "ipython")
TORCH_TOP_LEVEL = ("torch==2.14.1",)
NOBODY = 65534
#: workload -> (module imported, package whose __version__ is the check)
WORKLOADS = {
    "pandas": ("pandas", "pandas"),
    "sphinx.application": ("sphinx.application", "sphinx"),
    "IPython": ("IPython", "IPython"),
}
TORCH_WORKLOADS = {"torch": ("torch", "torch")}
LAYOUTS = ("flat", "store", "foreign-first", "foreign", "naive")
CHILD = """\
import os, sys
import {module}
_pkg = sys.modules[{package!r}]
_mod = sys.modules[{module!r}]
_site = os.path.dirname(os.path.dirname(_pkg.__file__))
print(_pkg.__version__, os.path.relpath(_mod.__file__, _site), _mod.__file__)
"""
#: prepended to CHILD in the compile-counting child: source compiles of files
COUNT_COMPILES = """\
import sys
_compiled = []
def _on_audit(event, args):
    if event == "compile" and isinstance(args[1], str) and not args[1].startswith("<"):
        _compiled.append(args[1])
sys.addaudithook(_on_audit)
"""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def sh(*argv: str | Path) -> str:
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))[:300]} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def pip(python: str | Path, *args: str | Path) -> str:
    return sh(python, "-m", "pip", *args[:1], "--quiet", *args[1:])


def ask(python: str | Path, expression: str) -> str:
    return sh(python, "-c", f"import sys; print({expression})").strip()


def rmtree(path: Path) -> None:
    if path.exists():
        sh("chmod", "-R", "u+w", path)
        shutil.rmtree(path)


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def src_digest() -> str:
    """Content hash of vsite's sources: the tool venv is rebuilt when they change."""
    h = hashlib.sha256()
    for path in sorted(p for p in (REPO / "src" / "vsite").rglob("*") if p.is_file()):
        if "__pycache__" not in path.parts:
            h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def stamp_of(directory: Path) -> Path:
    return directory.with_name(directory.name + ".stamp")


def reuse(directory: Path, key: str) -> bool:
    """True when ``directory`` was built for ``key``; else it is removed (to be rebuilt)."""
    if stamp_of(directory).exists() and stamp_of(directory).read_text() == key:
        return True
    rmtree(directory)
    stamp_of(directory).unlink(missing_ok=True)
    log(f"building {directory}")
    return False


def default_python() -> str:
    try:
        root = sh("pyenv", "root").strip()
    except (OSError, RuntimeError):
        root = str(Path.home() / ".pyenv")
    found = sorted(glob.glob(f"{root}/versions/3.11.*/bin/python3.11"))
    if not found:
        raise SystemExit("no pyenv Python 3.11 found: pass --python")
    return found[-1]


def resolve(python: str, requirements: tuple[str, ...], out: Path) -> None:
    """Pin ``requirements`` and their whole resolved closure, exactly, into ``out``."""
    report = out.with_suffix(".report.json")
    pip(python, "install", "--dry-run", "--ignore-installed", "--report", report, *requirements)
    installs = json.loads(report.read_text())["install"]
    report.unlink()
    pins = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in installs)
    version = ask(python, "sys.version.split()[0]")
    header = f"# {' '.join(requirements)}, resolved by bench/real_packages.py --resolve"
    out.write_text("\n".join([header, f"# for {version}", *pins]) + "\n")


class Site:
    """One pinned requirement set, built as every layout under ``dir``."""

    def __init__(self, pins: Path, directory: Path) -> None:
        self.pins, self.dir, self.wheels = pins, directory, list[Path]()
        self.flat, self.store, self.roots = (directory / n for n in ("flat", "store", "roots"))

    def roots_in_order(self) -> list[str]:
        manifest = json.loads((self.dir / "foreign.json").read_text())
        paths = [r if isinstance(r, str) else r["path"] for r in manifest["roots"]]
        return [str((self.dir / p).resolve()) for p in paths]


def empty_python(tool: Path) -> Path:
    return tool.parent / "empty" / "bin" / "python"


def build_tool(cache: Path, python: str) -> Path:
    """A venv with vsite installed (not editable) from this working tree, and an empty
    ``venv --without-pip`` of the same Python for the vsite children."""
    tool = cache / "tool"
    key = f"{python} {src_digest()}"
    if not reuse(tool, key):
        sh(python, "-m", "venv", tool)
        pip(tool / "bin" / "python", "install", REPO)
        rmtree(empty_python(tool).parent.parent)
        sh(python, "-m", "venv", "--without-pip", empty_python(tool).parent.parent)
        stamp_of(tool).write_text(key)
    return tool


def boot_dir(tool: Path) -> str:
    """The boot directory of the installed vsite under test (what ``vsite exec`` uses)."""
    code = "import vsite, os; print(os.path.join(os.path.dirname(vsite.__file__), '_boot'))"
    return sh(tool / "bin" / "python", "-c", code).strip()


def compile_flag(tool: Path) -> list[str]:
    """What makes ``vsite install`` ship bytecode with the vsite under test."""
    helptext = sh(tool / "bin" / "vsite", "install", "--help")
    return [] if "--no-compile" in helptext else ["--compile"] if "--compile" in helptext else []


def build_site(site: Site, python: str, tool: Path) -> None:
    pins = site.pins.read_text()
    site.dir.mkdir(parents=True, exist_ok=True)
    wheels = site.dir / "wheels"
    if not reuse(wheels, key := digest(python, pins)):
        wheels.mkdir()
        pip(
            python, "download", "--no-deps", "--only-binary", ":all:", "-d", wheels, "-r", site.pins
        )
        stamp_of(wheels).write_text(key)
    site.wheels = sorted(wheels.glob("*.whl"))
    if not reuse(site.flat, key):
        sh(python, "-m", "venv", site.flat)
        links = ("--no-index", "--find-links", wheels)
        pip(site.flat / "bin" / "python", "install", "--no-deps", *links, "-r", site.pins)
        stamp_of(site.flat).write_text(key)
    vsite, flag = tool / "bin" / "vsite", compile_flag(tool)
    if not reuse(site.store, key := digest(python, pins, stamp_of(tool).read_text(), *flag)):
        out = ("-o", site.dir / "store.json", "--store", site.store)
        sh(vsite, "install", "-r", site.pins, "--no-deps", *flag, *out)
        stamp_of(site.store).write_text(key)
    if not reuse(site.roots, key := digest(python, pins)):
        for wheel in site.wheels:
            target = ("--target", site.roots / "-".join(wheel.name.split("-")[:2]))
            pip(tool / "bin" / "python", "install", "--no-deps", "--no-compile", *target, wheel)
        sh("chmod", "-R", "a-w", site.roots)
        stamp_of(site.roots).write_text(key)
    sh(vsite, "manifest", *sorted(site.roots.iterdir()), "-o", site.dir / "foreign.json")


def pyc_kinds(store: Path) -> str:
    """How the store's sources ship: .py count, and .pyc count by invalidation mode."""
    kinds = {0: "timestamp", 1: "unchecked-hash", 3: "checked-hash"}
    counts: dict[str, int] = {}
    sources = 0
    for dirpath, _, files in os.walk(store):
        sources += sum(name.endswith(".py") for name in files)
        for name in (n for n in files if n.endswith(".pyc")):
            with open(os.path.join(dirpath, name), "rb") as stream:
                flags = int.from_bytes(stream.read(8)[4:], "little")
            kind = kinds.get(flags, f"flags={flags}")
            counts[kind] = counts.get(kind, 0) + 1
    pycs = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"
    return f"{sources} .py, .pyc: {pycs}"


@dataclass
class Child:
    argv: list[str]
    env: dict[str, str]
    allowed: tuple[Path, ...] = ()  # where the imported file may lie
    fresh_bytecode: bool = False  # VSITE_BYTECODE_DIR = a new empty directory


@dataclass
class Sample:
    wall: float
    cpu: float
    out: str


class Runner:
    """Spawns children as ``nobody`` (when root) from an empty working directory, with
    HOME, XDG_CACHE_HOME and VSITE_DIR in a nobody-owned 0700 directory emptied first."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.as_root = os.geteuid() == 0
        self.firsts = 0
        rmtree(home)
        for sub in ("", ".cache", "state", "work", "first"):
            self.owned_dir(home / sub)

    def owned_dir(self, path: Path) -> Path:
        path.mkdir(mode=0o700, parents=True)
        if self.as_root:
            os.chown(path, NOBODY, NOBODY)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        drop = ("PYTHON", "VSITE_", "__PYVENV", "VIRTUAL_ENV", "PIP_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(HOME=str(self.home), XDG_CACHE_HOME=str(self.home / ".cache"))
        env.update(VSITE_DIR=str(self.home / "state"), **extra)
        return env

    def run(self, child: Child, name: str) -> Sample:
        env = child.env
        if child.fresh_bytecode:
            self.firsts += 1
            fresh = self.owned_dir(self.home / "first" / str(self.firsts))
            env = {**env, "VSITE_BYTECODE_DIR": str(fresh)}
        ids = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if self.as_root else {}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            child.argv, env=env, cwd=self.home / "work", capture_output=True, text=True, **ids
        )  # type: ignore[call-overload]
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.fresh_bytecode:
            rmtree(Path(env["VSITE_BYTECODE_DIR"]))
            # Its compiled files written and removed, flushed before the next child is
            # timed: that child (``foreign``, next in every rotation) would otherwise run
            # beside their writeback and journal commits (up to +0.05 on its ratio).
            os.sync()
        if proc.returncode:
            raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return Sample(wall, cpu, check(child, name, proc.stdout))


def check(child: Child, name: str, out: str) -> str:
    """The layout-independent check value; the imported file must lie in the layout's tree."""
    if not child.allowed:
        return out
    lines = out.strip().splitlines()
    version, relative, path = lines[0].split(" ", 2)
    if not any(path.startswith(f"{p}{os.sep}") for p in child.allowed):
        raise RuntimeError(f"{name} imported {path}, outside {child.allowed}")
    return " ".join([version, relative, *lines[1:]])


def layout_children(site: Site, runner: Runner, tool: Path, code: str) -> dict[str, Child]:
    """Flat: the venv's python; the others: the empty venv's (no site-packages leaks in)."""
    boot = boot_dir(tool)
    store = runner.env(VSITE_MANIFEST=str(site.dir / "store.json"), PYTHONPATH=boot)
    foreign = runner.env(VSITE_MANIFEST=str(site.dir / "foreign.json"), PYTHONPATH=boot)
    naive = runner.env(PYTHONPATH=os.pathsep.join(site.roots_in_order()))
    argv = [str(empty_python(tool)), "-c", code]
    farm = runner.home / "state"
    return {
        "flat": Child([str(site.flat / "bin" / "python"), "-c", code], runner.env(), (site.flat,)),
        "store": Child(argv, store, (site.store, farm)),
        "foreign-first": Child(argv, foreign, (site.roots, farm), fresh_bytecode=True),
        "foreign": Child(argv, foreign, (site.roots, farm)),
        "naive": Child(argv, naive, (site.roots,)),
    }


def rounds_of(runner: Runner, children: dict[str, Child], rounds: int) -> dict[str, list[Sample]]:
    """Every child once per round, the order rotating by one each round."""
    names = list(children)
    results: dict[str, list[Sample]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(runner.run(children[name], name))
    return results


def spread(values: list[float], digits: int = 2) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def ratio(a: list[Sample], b: list[Sample], metric: str = "wall") -> str:
    return spread([getattr(x, metric) / getattr(y, metric) for x, y in zip(a, b)])


def import_ratio(
    layout: list[Sample], layout_start: list[Sample], flat: list[Sample], flat_start: list[Sample]
) -> str:
    """Per round: (layout's wall - its own start) / (flat's wall - flat's start)."""
    return spread(
        [
            (a.wall - a0.wall) / (f.wall - f0.wall)
            for a, a0, f, f0 in zip(layout, layout_start, flat, flat_start)
        ]
    )


def ms(samples: list[Sample]) -> str:
    return f"{statistics.median(s.wall for s in samples) * 1000:.0f}"


def measure(
    workload: str, spec: tuple[str, str], site: Site, runner: Runner, tool: Path, rounds: int
) -> list[list[str]]:
    """Warm-up, one compile-counting child per layout, then the rounds; table rows."""
    code = CHILD.format(module=spec[0], package=spec[1])
    children = layout_children(site, runner, tool, code)
    failed: dict[str, str] = {}
    for name, child in list(children.items()):
        try:
            runner.run(child, name)
        except RuntimeError as error:
            if name != "naive":  # naive is a reference: it may break
                raise
            failed[name] = str(error).strip().splitlines()[-1]
            del children[name]
    compiles = {}
    for name, child in children.items():
        counting = COUNT_COMPILES + code + "print(len(_compiled))"
        counter = Child(
            [*child.argv[:-1], counting], child.env, child.allowed, child.fresh_bytecode
        )
        compiles[name] = runner.run(counter, name).out.split()[-1]
    # Untimed: the full (generation 2) collections CPython ran during the timed program
    # itself (read after it, so nothing is perturbed). The gen2 trigger is a threshold
    # on surviving objects: a layout that allocates a little more or less can cross it
    # once more than flat, a whole-heap pass (~40 ms over torch's ~170k objects) that is
    # not the layout's own work. Shown beside the ratios so such a round is explained.
    collections = {}
    for name, child in children.items():
        probe = code + "import gc\nprint(gc.get_stats()[2]['collections'])\n"
        gc_child = Child([*child.argv[:-1], probe], child.env, child.allowed, child.fresh_bytecode)
        collections[name] = runner.run(gc_child, name).out.split()[-1]
    # Each layout's own start (`-c pass`, same environment) in the same rounds: the
    # import-only ratio takes it off both sides, so what is left is the imports.
    starts = {
        f"{name} start": Child([*child.argv[:-1], "pass"], child.env, (), child.fresh_bytecode)
        for name, child in children.items()
    }
    both = rounds_of(runner, {**children, **starts}, rounds)
    res = {name: both[name] for name in children}
    checks = {n: {s.out for s in samples} for n, samples in res.items()}
    if len(set().union(*checks.values())) != 1:
        raise RuntimeError(f"{workload}: check values differ across layouts: {checks}")
    log(f"{workload}: {next(iter(checks['flat']))}")
    rows = []
    for name in LAYOUTS:
        if name in failed:
            rows.append([workload, name, f"fails: {failed[name][:60]}", "", "", "", "", ""])
        else:
            a, b = res[name], res["flat"]
            imports = import_ratio(a, both[f"{name} start"], b, both["flat start"])
            row = [workload, name, ratio(a, b), imports, ratio(a, b, "cpu"), ms(a)]
            rows.append([*row, compiles[name], collections[name]])
    return rows


def launcher(site: Site, runner: Runner, tool: Path, rounds: int) -> list[list[str]]:
    """``vsite exec M -- python -c pass`` vs that child started directly, and flat's."""
    manifest, python = str(site.dir / "store.json"), str(empty_python(tool))
    vsite = [str(tool / "bin" / "vsite"), "exec", manifest, "--"]
    boot = runner.env(VSITE_MANIFEST=manifest, PYTHONPATH=boot_dir(tool))
    children = {
        "exec": Child([*vsite, python, "-c", "pass"], runner.env()),
        "boot": Child([python, "-c", "pass"], boot),
        "flat": Child([str(site.flat / "bin" / "python"), "-c", "pass"], runner.env()),
    }
    rounds_of(runner, children, 1)
    res = rounds_of(runner, children, rounds)
    launch = [(e.wall - b.wall) * 1000 for e, b in zip(res["exec"], res["boot"])]
    ms_cols = [ms(res["exec"]), ms(res["boot"]), ms(res["flat"]), spread(launch, 0)]
    return [[*ms_cols, ratio(res["exec"], res["flat"]), ratio(res["boot"], res["flat"])]]


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def machine() -> str:
    model = platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as stream:
        model = next((ln.split(":", 1)[1].strip() for ln in stream if "model name" in ln), model)
    return f"{platform.system()} {platform.release()}, {model}, {os.cpu_count()} CPUs"


def git_state(tool: Path) -> str:
    """HEAD, whether src/ has uncommitted changes, and which sources the tool venv holds."""
    head = sh("git", "-C", REPO, "rev-parse", "--short", "HEAD").strip()
    dirty = " + uncommitted changes in src/" if sh("git", "-C", REPO, "status", "-s", "src") else ""
    built = stamp_of(tool).read_text().split()[-1]
    now = "unchanged since" if built == src_digest() else f"now {src_digest()}"
    return f"{head}{dirty}; vsite installed from src/ digest {built} ({now})"


def nobody_can_run(python: str) -> None:
    """Children run as nobody: every directory above the interpreter must let it through."""
    if os.geteuid() != 0:
        return
    try:
        ids = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        subprocess.run([python, "-c", "pass"], capture_output=True, check=True, **ids)  # type: ignore[call-overload]
    except (OSError, subprocess.CalledProcessError):
        blocked = next((p for p in Path(python).parents if not os.stat(p).st_mode & 1), "?")
        hint = f"nobody cannot run {python} ({blocked} is not o+x): chmod o+x it or pass --python"
        raise SystemExit(hint) from None


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="base interpreter (default: pyenv's 3.11)")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--torch", action="store_true", help="also `import torch` (GBs)")
    parser.add_argument("--resolve", action="store_true", help="re-pin the requirement files")
    parser.add_argument("--cache", type=Path, default=HERE / "trees" / "real")
    parser.add_argument("--output", type=Path, default=HERE / "REAL_RESULTS.md")
    return parser.parse_args(argv)


def sites_of(args: argparse.Namespace, python: str, tool: Path, notes: list[str]) -> list[Site]:
    """The requirement sets to measure, pinned and built; torch skipped when it fails."""
    if args.resolve or not PINS.exists():
        resolve(python, TOP_LEVEL, PINS)
    sites = [Site(PINS, args.cache / "main")]
    build_site(sites[0], python, tool)
    if args.torch:
        try:
            if args.resolve or not TORCH_PINS.exists():
                resolve(python, TORCH_TOP_LEVEL, TORCH_PINS)
            sites.append(Site(TORCH_PINS, args.cache / "torch"))
            build_site(sites[1], python, tool)
        except RuntimeError as error:
            notes.append(f"torch skipped: {str(error).strip().splitlines()[-1]}")
            print(notes[-1])
            del sites[1:]
    return sites


HOW = """\
## How it was measured

`flat`: `python -m venv` + `pip install --no-deps -r <pins>` (pip writes timestamp pycs).
`store`: `vsite install -r <pins> --no-deps` by vsite installed (not editable) from the
working tree. `foreign`: each wheel `pip install --no-deps --no-compile --target` into its
own root, the tree `chmod -R a-w`, `vsite manifest`. `naive`: those roots on `PYTHONPATH`.
Store, foreign and naive children run an empty `venv --without-pip` of the same Python
(nothing else visible); store and foreign with `VSITE_MANIFEST` + `PYTHONPATH=<vsite's
_boot>`, as `vsite exec` sets up. Each child is `python -c CODE` run as nobody from an
empty directory, no `PYTHON*`/`VSITE_*` variables but those set here, bytecode writing on,
`HOME`/`XDG_CACHE_HOME`/`VSITE_DIR` in a nobody-owned 0700 directory emptied at the start;
`foreign-first` gets a new empty `VSITE_BYTECODE_DIR` each run, removed and flushed
(`sync`) before the next child starts. The child prints the
package's `__version__` and the imported file: version and path inside the site must match
across layouts, and the file lie in the layout's own tree (or vsite's native farm). A
warm-up pass, one compile-counting child per layout (`compile` audit events of source
files), then rounds: every layout once per round, the order rotating. Wall = spawn to
reap; cpu = the child's user + system time. Ratios per round vs flat: median (min-max).
"""


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    given = args.python or default_python()
    python = ask(given, "sys.base_prefix + '/bin/python%d.%d' % sys.version_info[:2]")
    nobody_can_run(python)
    args.cache = args.cache.resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    if any(not os.stat(p).st_mode & 1 for p in [args.cache, *args.cache.parents]):
        raise SystemExit(f"nobody cannot reach {args.cache}: pass --cache /tmp/vsite-real-bench")
    tool = build_tool(args.cache, python)
    notes: list[str] = []
    sites = sites_of(args, python, tool, notes)
    runner = Runner(args.cache / "home")
    rows: list[list[str]] = []
    for site in sites:
        for workload, spec in (TORCH_WORKLOADS if site.pins == TORCH_PINS else WORKLOADS).items():
            log(f"{workload}: warm-up, compile counts, {args.rounds} rounds")
            rows += measure(workload, spec, site, runner, tool, args.rounds)
    log("vsite exec: launcher cost")
    exec_rows = launcher(sites[0], runner, tool, args.rounds)
    headers = ["workload", "layout", "wall / flat", "imports only / flat", "cpu / flat"]
    headers += ["wall ms", "compiles", "full GCs"]
    main_table = table(headers, rows)
    exec_headers = ["exec ms", "boot ms", "flat ms", "exec - boot ms", "exec/flat", "boot/flat"]
    exec_table = table(exec_headers, exec_rows)
    print("\n".join([*main_table, "", *exec_table]))
    flag = " ".join(compile_flag(tool)) or "no flag (it compiles by default)"
    pins = hashlib.sha256(b"".join(s.pins.read_bytes() for s in sites)).hexdigest()[:16]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = [
        "# Real-package import benchmark",
        "",
        f"`python bench/real_packages.py{' --torch' * args.torch} --rounds {args.rounds}`: "
        f"{datetime.date.today()}, {machine()}, load average {load} at the end, "
        f"{time.monotonic() - started:.0f} s.",
        "",
        f"- Python {ask(python, 'sys.version.split()[0]')} (`{python}`)",
        f"- git {git_state(tool)}",
        f"- pins sha256 {pins} ({', '.join(f'`bench/{s.pins.name}`' for s in sites)})",
        f"- `vsite install` ran with {flag}; the store holds "
        + "; ".join(
            f"`{s.pins.name}` ({len(s.wheels)} wheels): {pyc_kinds(s.store)}" for s in sites
        ),
        *(f"- {note}" for note in notes),
        "",
        *main_table,
        "",
        "`imports only`: per round, (the layout's wall time - its own `python -c pass` in the"
        " same environment) / (the same for flat), so the start-up (vsite's activation, issue"
        " of its own) is off both sides. `compiles`: source files compiled in one child after"
        " the warm-up (for `foreign-first`,"
        " a first run's). `full GCs`: generation-2 collections during the timed program, one"
        " untimed run (CPython starts one when objects surviving younger collections pass a"
        " quarter of the heap's long-lived ones: a threshold that a few hundred more or fewer"
        " allocations can move by one pass over the whole heap). Launcher:"
        " `vsite exec M -- python -c pass` (store manifest) vs the"
        " same child started with the boot path directly (`boot`) and the flat venv's `python"
        " -c pass`; `exec - boot` is the launcher's own cost, per round:",
        "",
        *exec_table,
        "",
        HOW,
    ]
    args.output.write_text("\n".join(report))
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
