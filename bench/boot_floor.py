"""What any start-up hook costs: the floor under vsite's front door.

    python bench/boot_floor.py [--rounds N] [--python PY] [--output FILE]

Issue 13 asks ``env/bin/python -c pass`` to cost at most 1.10x an empty venv's start at
10 roots. This bench measures what the cheapest possible hook costs, with nothing of
vsite in it, side by side with vsite's own environment shell: empty venvs of one base
interpreter, each with one ``.pth`` file in its site-packages, in interleaved rounds
(whole-process wall time of ``python -c pass``, median of per-round ratios to the
empty venv):

- ``venv``: the empty venv, the reference;
- ``pth``: a ``.pth`` line ``import sys`` (what ``site`` costs per ``.pth`` file);
- ``module``: the line imports one small module, which defines a meta path finder, a
  path hook and a distribution finder (three small classes) and installs them: the
  shape of any import-hook boot, doing no work;
- ``+flock``: the same module also imports ``fcntl`` and takes a shared ``flock`` on a
  file (what holding a farm in use costs);
- ``+mmap``: and maps a 100 KB file (what opening an index costs);
- ``vsite``: vsite's own shell (``vsite env``) of a 10-root immutable manifest, made
  with the vsite under ``src/``.

Nothing passes or fails; the ratios are printed and written to FLOOR_RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "trees" / "floor"
#: The hook module: the smallest shape of a boot that installs import machinery.
HOOK = """\
import sys
{imports}

class Finder:
    def find_spec(self, name, path=None, target=None):
        return None

    def invalidate_caches(self):
        pass


class Hook:
    def __init__(self, finder):
        self.finder = finder

    def __call__(self, entry):
        raise ImportError(entry)


class Distributions:
    def find_spec(self, name, path=None, target=None):
        return None

    def find_distributions(self, context=None):
        return iter(())


def activate(path):
    {work}
    finder = Finder()
    sys.meta_path.insert(2, finder)
    sys.meta_path.append(Distributions())
    sys.path_hooks.insert(0, Hook(finder))
"""
FLOCK = """\
fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)"""
MMAP = FLOCK + "\n    data = mmap.mmap(fd, 0, prot=mmap.PROT_READ)"
#: name -> (what the hook module imports, what activate() does); None: no module
VARIANTS: dict[str, tuple[str, str] | None] = {
    "venv": None,
    "pth": None,
    "module": ("import os", "pass"),
    "+flock": ("import os, fcntl", FLOCK),
    "+mmap": ("import os, fcntl, mmap", MMAP),
}


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def make_variants(python: str) -> dict[str, Path]:
    """The venvs, made once per base interpreter (remade when it changes)."""
    stamp = WORK / "python"
    made_for = f"{python}\n{HOOK}"
    if not stamp.is_file() or stamp.read_text() != made_for:
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        stamp.write_text(made_for)
    data = WORK / "index.bin"
    data.write_bytes(os.urandom(100_000))
    made = {}
    for name, hook in VARIANTS.items():
        venv = WORK / name.lstrip("+")
        if not (venv / "bin" / "python").exists():
            subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
        sp = site_packages(venv)
        if name == "pth":
            (sp / "zz_hook.pth").write_text("import sys\n")
        elif hook is not None:
            imports, work = hook
            (sp / "tinyboot.py").write_text(HOOK.format(imports=imports, work=work))
            (sp / "zz_hook.pth").write_text(f"import tinyboot; tinyboot.activate({str(data)!r})\n")
        made[name] = venv / "bin" / "python"
    return made


def make_vsite_shell(python: str) -> Path:
    """vsite's shell of 10 immutable roots, each a small package with metadata."""
    roots = WORK / "roots"
    if not roots.is_dir():
        for n in range(10):
            root = roots / f"r{n}"
            (root / f"pkg{n}").mkdir(parents=True)
            (root / f"pkg{n}" / "__init__.py").write_text("")
            info = root / f"dist{n}-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dist{n}\nVersion: 1.0\n")
            (info / "RECORD").write_text("")
    manifest = WORK / "manifest.json"
    entries = ",".join(f'"roots/r{n}"' for n in range(10))
    manifest.write_text(f'{{"vsite": 1, "immutable": true, "roots": [{entries}]}}')
    shell = WORK / "shell"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "VSITE_DIR": str(WORK / "state")}
    subprocess.run(
        [python, "-m", "vsite", "env", str(manifest), "-o", str(shell)], env=env, check=True
    )
    return shell / "bin" / "python"


def measure(pythons: dict[str, Path], rounds: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VSITE_"))}
    env["VSITE_DIR"] = str(WORK / "state")
    names = list(pythons)
    for name in names:  # warm-up: bytecode written, caches filled
        for _ in range(3):
            subprocess.run([str(pythons[name]), "-c", "pass"], env=env, check=True)
    walls: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            started = time.perf_counter()
            subprocess.run([str(pythons[name]), "-c", "pass"], env=env, check=True)
            walls[name].append(time.perf_counter() - started)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--python", default=sys.executable, help="the base interpreter")
    parser.add_argument("--output", type=Path, default=HERE / "FLOOR_RESULTS.md")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measured with bytecode, as users run
    base = os.path.realpath(
        subprocess.run(
            [args.python, "-c", "import sys; print(sys._base_executable)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    pythons = {**make_variants(base), "vsite": make_vsite_shell(base)}
    walls = measure(pythons, args.rounds)
    rows = []
    for name, times in walls.items():
        ratios = [t / v for t, v in zip(times, walls["venv"])]
        rows.append(
            f"| {name} | {statistics.median(times) * 1e3:.1f} | {statistics.median(ratios):.2f}"
            f" ({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    table = "\n".join(["| start | ms | / venv |", "|---|---|---|", *rows])
    when = datetime.date.today().isoformat()
    head = (
        f"# The floor under a start-up hook\n\n`python bench/boot_floor.py --rounds "
        f"{args.rounds}`: {when}, {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()} ({base}). Whole-process wall time of `python -c "
        f"pass`, {args.rounds} interleaved rounds; median (min-max) of per-round ratios "
        "to the empty venv. See the script's docstring for what each start is.\n\n"
    )
    args.output.write_text(head + table + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
