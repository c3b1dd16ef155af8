"""Conformance on real distributions: one flat site-packages against vsite's roots.

    python -m tests.conformance [--jobs N] [--only NAME...] [--report FILE]
    python tests/conformance/run.py ...

The corpus (CORPUS, with its dependencies) is resolved with ``pip download`` for this
interpreter (Python 3.11) and then, once per wheel set, installed with ``vsite install``
into a store, one root per wheel, and a manifest; the reference is the flat directory
of those roots (tests/layouts.py ``build_flat``: the first root wins a relative path, as
SPEC section 1 says the virtual site must).

Every distribution is probed in a fresh interpreter of a bare venv under each layout
(tests/conformance/probe.py: imports, ``pkgutil.walk_packages``, specs,
``importlib.metadata``, ``importlib.resources``, package ``__path__``s), plus one
probe of the whole site (``.pth`` side effects, all distributions and entry points).
Paths are normalised (the flat dir, every root and vsite's site entry read
``<site>``; package ``__path__`` portions are deduplicated after that; vsite's
bytecode cache is mapped to ``__pycache__``), and the two outputs compared. Every
difference fails. Where two wheels ship the same file with different contents, the
flat reference holds the first root's copy and a path to any other copy keeps a mark
of it (tests/layouts.py ``shadowed``), so taking the wrong copy is a difference too.

Downloads and installs are cached under ``${VSITE_TESTS_CACHE:-~/.cache/vsite-tests}``
/conformance. Prints one summary line with the run time; ``--report`` writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.layouts import SITE, build_flat, bytecode_dir, child_env, normalise, shadowed, uncache

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
PYTHON = (3, 11)

CORPUS = (
    "protobuf",
    "googleapis-common-protos",
    "google-auth",
    "google-api-core",
    "google-crc32c",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "jaraco.functools",
    "jaraco.text",
    "backports.tarfile",
    "configparser",
    "sphinxcontrib-jsmath",
    "sphinxcontrib-serializinghtml",
    "sphinx",
    "setuptools<81",
    "coverage",
    "numpy",
    "scipy",
    "pillow",
    "pandas",
    "matplotlib",
    "lxml",
    "grpcio",
    "opencv-python-headless",
    "certifi",
    "tzdata",
    "jsonschema-specifications",
    "pytest",
    "pytest-asyncio",
    "pytest-mock",
    "pytest-cov",
    "hypothesis",
    "narwhals",
    "flake8",
    "black",
    "six",
    "typing-extensions",
    "pyyaml",
    "cryptography",
    "requests",
    # Wheels that collide, so the first-root rule is checked on real files: jwt and
    # PyJWT both ship jwt/__init__.py, exceptions.py and utils.py (different code);
    # attr ships attr.py where attrs ships the attr/ package (a package beats a module).
    "jwt",
    "pyjwt",
    "attr",
)

GLOBAL = "(site)"  # the name under which the whole-site probe is reported


class SetupError(RuntimeError):
    """The corpus cannot be prepared (no network, no pip, no Python 3.11)."""


def cache_dir() -> Path:
    base = os.environ.get("VSITE_TESTS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "vsite-tests"
    )
    return Path(base) / "conformance"


def _key(items: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        noise = "is ignored: it is neither a file nor a directory"
        err = "\n".join(line for line in result.stderr.splitlines() if noise not in line)
        raise SetupError(f"pip {args[0]} failed (exit {result.returncode}):\n{err[-3000:]}")


class Prepared:
    """The corpus on disk: wheels, the flat directory, the manifest, the bare venv."""

    def __init__(self) -> None:
        self.wheels: list[Path] = []
        self.flat = Path()
        self.manifest = Path()
        self.python = ""
        self.timings: dict[str, float] = {}
        self.unpacked = 0
        self.reused = 0


def prepare(cache: Path, corpus: tuple[str, ...] = CORPUS) -> Prepared:
    """Download (once), install into the store and link the flat reference (once per
    wheel set)."""
    if sys.version_info[:2] != PYTHON:
        raise SetupError(f"the conformance corpus is for Python 3.11, not {sys.version.split()[0]}")
    prepared = Prepared()
    cache.mkdir(parents=True, exist_ok=True)
    wheels_dir = cache / "wheels"
    listing = cache / f"wheels-{_key(corpus)}.json"
    started = time.monotonic()
    if not listing.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            _pip("download", "--only-binary=:all:", "-d", tmp, *corpus)
            wheels_dir.mkdir(exist_ok=True)
            names = sorted(os.listdir(tmp))
            for name in names:
                os.replace(os.path.join(tmp, name), wheels_dir / name)
        listing.write_text(json.dumps(names, indent=1))
    names = json.loads(listing.read_text())
    prepared.wheels = [wheels_dir / name for name in names]
    prepared.timings["download"] = time.monotonic() - started
    set_key = _key(names)

    started = time.monotonic()
    from vsite.manifest import Manifest
    from vsite.tools.compose import manifest_text, write_manifest
    from vsite.tools.install import check_wheels, install, manifest_roots
    from vsite.tools.install.store import Store

    store = Store(str(cache / "store"))
    result = install(check_wheels([str(w) for w in prepared.wheels]), store)
    prepared.unpacked, prepared.reused = result.unpacked, result.reused
    prepared.manifest = cache / f"manifest-{set_key}.json"
    text = manifest_text(manifest_roots(result.entries), str(prepared.manifest), absolute=False)
    write_manifest(text, str(prepared.manifest))
    prepared.timings["vsite install"] = time.monotonic() - started

    started = time.monotonic()
    roots = [Path(root.path) for root in Manifest.load(prepared.manifest).roots]
    flat = cache / "flat-first-root" / _key([str(r) for r in roots])
    if not flat.exists():
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(flat.parent)))
        try:
            os.replace(build_flat(roots, staging / "site-packages"), flat)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    prepared.flat = flat
    prepared.timings["flat build"] = time.monotonic() - started
    prepared.python = _bare_python(cache)
    return prepared


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bare_python(cache: Path) -> str:
    """A venv with an empty site-packages, so neither layout sees the dev tools."""
    venv = cache / "bare-venv-3.11"
    python = venv / "bin" / "python"
    if not python.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        command = [base, "-m", "venv", "--without-pip", str(venv)]
        subprocess.run(command, check=True, capture_output=True)
    return str(python)


# -- probing -----------------------------------------------------------------------------


def _state(cache: Path) -> str:
    return str(_mkdir(cache / "state"))


def _env(cache: Path) -> dict[str, str]:
    # No bytecode written: the roots are read-only; the flat dir is shared.
    env = child_env(_state(cache))
    for key in ("PYTHONHOME", "COVERAGE_PROCESS_START"):
        env.pop(key, None)
    env.update(PYTHONHASHSEED="0", MPLBACKEND="Agg", MPLCONFIGDIR=str(_mkdir(cache / "mplconfig")))
    return env


def run_probe(prepared: Prepared, layout: str, config: Path, target: str, cache: Path) -> Any:
    """One probe in a fresh interpreter; its JSON, or {"crash": ...} when it failed."""
    mode = ["global"] if target == GLOBAL else ["dist", target]
    command = [prepared.python, str(PROBE), layout, str(config), *mode]
    with tempfile.TemporaryDirectory(prefix="probe-") as cwd:
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=_env(cache),
                cwd=cwd,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"crash": "timed out after 600 s"}
    _, marker, payload = result.stdout.rpartition("@@PROBE@@")
    if result.returncode != 0 or not marker:
        tail = result.stderr.strip().splitlines()[-3:]
        return {"crash": f"exit {result.returncode}: " + " | ".join(tail)}
    return json.loads(payload)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def clean(
    output: Any,
    prefixes: list[str],
    venv: str,
    marks: dict[str, str] | None = None,
    cache: str = "",
) -> Any:
    """Normalise one probe's output so the two layouts compare: paths under
    ``prefixes`` and the probe's site entries read <site> (a root's copy of a file the
    flat site takes from elsewhere keeps its mark: ``marks``, tests/layouts.py
    ``shadowed``), the venv reads <venv>, vsite's bytecode ``cache`` is put where the
    flat directory keeps bytecode, object addresses read 0x?."""
    site_paths = output.pop("site_paths", []) if isinstance(output, dict) else []
    value = normalise(uncache(output, cache), [*prefixes, *site_paths], marks)
    value = normalise(value, [venv], token="<venv>")
    value = _rewrite_strings(value, lambda text: _ADDRESS.sub("0x?", text))
    if not isinstance(value, dict):
        return value
    for key in ("package_paths",):
        if key in value:
            value[key] = {k: _distinct(v) for k, v in value[key].items()}
    loaded = value.get("loaded")
    if isinstance(loaded, dict):  # modules of the site only: the stdlib is the same
        value["loaded"] = {
            name: [info[0], info[1], None if info[2] is None else _distinct(info[2])]
            for name, info in loaded.items()
            if any(_in_site(v) for v in (info[0], *(info[2] or ())))
        }
    for info in (value.get("imports") or {}).values():
        if isinstance(info, dict) and isinstance(info.get("path"), list):
            info["path"] = _distinct(info["path"])
    startup = value.get("startup")
    if isinstance(startup, dict):
        loaded = startup.get("modules_loaded") or {}
        # Only what the site's .pth files loaded: vsite's own imports are not the site's.
        startup["modules_loaded"] = {k: v for k, v in loaded.items() if _in_site(v)}
    return value


def _in_site(value: Any) -> bool:
    """A normalised path in the site: <site> itself or below it."""
    return isinstance(value, str) and (value == SITE or value.startswith(SITE + "/"))


def _distinct(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _rewrite_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_rewrite_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {change(k): _rewrite_strings(v, change) for k, v in value.items()}
    return value


def differences(flat: Any, vsite: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Leaves where the two outputs differ: (key path, flat value, vsite value)."""
    if isinstance(flat, dict) and isinstance(vsite, dict):
        found = []
        for key in sorted(set(flat) | set(vsite), key=str):
            missing = "<absent>"
            found += differences(flat.get(key, missing), vsite.get(key, missing), f"{where}/{key}")
        return found
    if flat != vsite:
        return [(where or "/", flat, vsite)]
    return []


# -- files several wheels ship ------------------------------------------------------------


def conflicts(manifest: Path) -> dict[str, list[str]]:
    """Relative files that several roots ship with different contents: path -> roots."""
    from vsite.manifest import Manifest

    owners: dict[str, dict[str, str]] = {}
    for root in Manifest.load(manifest).roots:
        for record in Path(root.path).glob("*.dist-info/RECORD"):
            for line in record.read_text(encoding="utf-8").splitlines():
                path, _, rest = line.partition(",")
                digest = rest.partition(",")[0]
                if not digest or path.startswith("..") or ".dist-info/" in path:
                    continue
                owners.setdefault(path.strip('"'), {})[root.path] = digest
    return {path: sorted(roots) for path, roots in owners.items() if len(set(roots.values())) > 1}


def sharing(conflicting: dict[str, list[str]]) -> list[str]:
    """The distributions (canonical names) whose root ships one of ``conflicting``."""
    from packaging.utils import canonicalize_name

    names = set()
    for roots in conflicting.values():
        for root in roots:
            for info in Path(root).glob("*.dist-info"):
                names.add(str(canonicalize_name(info.name[: -len(".dist-info")].partition("-")[0])))
    return sorted(names)


# -- the run ------------------------------------------------------------------------------


def dist_names(prepared: Prepared) -> list[str]:
    from packaging.utils import parse_wheel_filename

    return sorted(str(parse_wheel_filename(w.name)[0]) for w in prepared.wheels)


def run(
    cache: Path,
    *,
    jobs: int = 2,
    only: list[str] | None = None,
    out: Any = sys.stdout,
    vsite_src: Path = REPO / "src",
) -> dict[str, Any]:
    """Prepare, probe every distribution under both layouts, compare; the report."""
    started = time.monotonic()
    prepared = prepare(cache)
    from vsite.manifest import Manifest

    roots = [root.path for root in Manifest.load(prepared.manifest).roots]
    config = cache / "probe-config.json"
    config.write_text(
        json.dumps(
            {
                "flat": str(prepared.flat),
                "manifest": str(prepared.manifest),
                "vsite_src": str(vsite_src),
                "roots": roots,
            }
        )
    )
    targets = [GLOBAL, *(only or dist_names(prepared))]
    prefixes = [str(prepared.flat), *roots, str(cache / "store")]
    venv = str(Path(prepared.python).parent.parent)
    marks = shadowed(roots)
    bytecode = bytecode_dir(_state(cache))
    probe_started = time.monotonic()

    def both(target: str) -> tuple[str, Any, Any]:
        outputs = [
            clean(
                run_probe(prepared, layout, config, target, cache), prefixes, venv, marks, bytecode
            )
            for layout in ("flat", "vsite")
        ]
        return target, outputs[0], outputs[1]

    conflicting = conflicts(prepared.manifest)
    results: dict[str, Any] = {}
    counts = {"imports": 0, "import errors": 0, "modules": 0, "resources": 0}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for target, flat, vsite in pool.map(both, targets):
            found = differences(flat, vsite)
            crashed = [name for name, o in (("flat", flat), ("vsite", vsite)) if "crash" in o]
            if crashed:  # a probe that could not run compares nothing: a failure
                found.append(("/crash", flat.get("crash"), vsite.get("crash")))
            results[target] = {
                "differences": found,
                "crashed": crashed,
                "flat": flat,
                "vsite": vsite,
            }
            _count(counts, flat)
            out.write(f"  {target}: {'different' if found else 'identical'}\n")
            shown = [d for d in found if d[0] == "/crash"] if crashed else found
            for key, flat_value, vsite_value in shown[:20]:
                out.write(f"    {key}\n      flat:  {_short(flat_value)}\n")
                out.write(f"      vsite: {_short(vsite_value)}\n")
            out.flush()
    probe_time = time.monotonic() - probe_started
    total = time.monotonic() - started
    dists = [t for t in targets if t != GLOBAL]
    different = [t for t in dists if results[t]["differences"]]
    # Where wheels disagree on a file, "identical" includes taking the first root's copy.
    shared = [t for t in sharing(conflicting) if t in dists]
    identical = len(dists) - len(different)
    site_state = "identical" if not results[GLOBAL]["differences"] else "DIFFERENT"
    summary = (
        f"conformance: {len(dists)} distributions, {identical} identical, "
        f"{len(different)} different, {len(shared)} shipping a file another wheel ships "
        "differently (the first root's copy required); "
        f"whole site {site_state}; {counts['imports']} top-level imports "
        f"({counts['import errors']} failing alike), {counts['modules']} modules walked, "
        f"{counts['resources']} resource listings; {total:.0f} s "
        f"(probes {probe_time:.0f} s, vsite install {prepared.timings['vsite install']:.1f} s: "
        f"{prepared.unpacked} unpacked, {prepared.reused} reused)"
    )
    out.write(summary + "\n")
    return {
        "summary": summary,
        "different": different,
        "sharing": shared,
        "conflicts": conflicting,
        "results": results,
        "timings": {**prepared.timings, "probes": probe_time, "total": total},
        "site_different": bool(results[GLOBAL]["differences"]),
    }


def _count(counts: dict[str, int], output: Any) -> None:
    if not isinstance(output, dict):
        return
    imports = output.get("imports") or {}
    counts["imports"] += len(imports)
    counts["import errors"] += sum(1 for i in imports.values() if "error" in i)
    counts["modules"] += len((output.get("walk") or {}).get("modules") or ())
    counts["resources"] += len(output.get("resources") or ())


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2, help="probes run at once")
    parser.add_argument("--only", nargs="+", metavar="DIST", help="probe these only")
    parser.add_argument("--report", metavar="FILE", help="write the full report as JSON")
    parser.add_argument(
        "--vsite-src",
        type=Path,
        default=REPO / "src",
        metavar="DIR",
        help="the directory holding the vsite package the probes use (default: this "
        "checkout's src; e.g. a `git archive` of a commit, to test that commit alone)",
    )
    options = parser.parse_args(argv)
    try:
        report = run(cache_dir(), jobs=options.jobs, only=options.only, vsite_src=options.vsite_src)
    except SetupError as exc:
        sys.stderr.write(f"conformance: cannot prepare the corpus: {exc}\n")
        return 2
    if options.report:
        Path(options.report).write_text(json.dumps(report, indent=1, default=str))
    return 1 if report["different"] or report["site_different"] else 0


if __name__ == "__main__":
    sys.exit(main())
