"""Differential runs: one probe, three layouts of the same roots, outputs compared.

- ``flat``: the union of the roots linked into ONE directory (first root wins a
  relative path; a root repeating an earlier root's distribution is left out whole, as
  vsite drops it), put where site-packages sits on ``sys.path`` and its ``.pth`` files
  processed by ``site.addsitedir``. This is the reference: what SPEC section 1 says the
  virtual site must equal.
- ``vsite``: ``vsite.activate(manifest)``.
- ``naive``: every root inserted at that same position, in manifest order, no ``.pth``.

A probe is Python source that prints ONE JSON document on stdout. It runs in a fresh
interpreter (this one's ``sys.executable``; no PYTHONPATH, no VSITE_*, no bytecode
written) whose ``sys.path[0]`` is not the probe's directory. Its globals hold
``LAYOUT``, ``SITE_ENTRIES`` (the sys.path entries the layout added) and ``ROOT_DIRS``
(where each root's files are: the roots, or the flat directory for every root; a probe
adds files there to see them appear).

Every absolute path of the flat directory, of any root and of vsite's site entry is
rewritten to ``<site>`` in the output, so ``<site>/pkg/mod.py`` compares across layouts.
Bytecode in vsite's per-user cache (``<cache>/<real dir>/mod.<tag>.pyc``, the
``sys.pycache_prefix`` layout) is first rewritten to where the flat directory keeps it
(``<real dir>/__pycache__/mod.<tag>.pyc``): ``__cached__`` compares too.
An object ``{"__set__": [...]}`` in the output becomes the sorted list of its distinct
items AFTER that rewriting (three portions of ``ns`` in three roots are one
``<site>/ns``).

Use: ``from tests.differential import assert_equivalent, run_layouts``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

__all__ = [
    "LAYOUTS",
    "Run",
    "assert_equivalent",
    "build_flat",
    "kept_roots",
    "normalise",
    "run_layouts",
    "run_probe",
    "uncache",
]

LAYOUTS = ("flat", "vsite", "naive")
SITE = "<site>"

# Runs the probe under one layout. argv: layout, config file, probe file.
_RUNNER = """\
import json, os, site, sys
del sys.path[0]  # this runner's own directory
before = list(sys.path)
layout, config_file, probe_file = sys.argv[1:4]
del sys.argv[1:]
with open(config_file, encoding="utf-8") as stream:
    config = json.load(stream)
site_paths = []
if layout == "vsite":
    import vsite
    site_paths.append(vsite.activate(config["manifest"]).site_path)
else:
    candidates = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    wanted = {os.path.normcase(os.path.abspath(c)) for c in candidates}
    position = next(
        (n for n, e in enumerate(sys.path)
         if isinstance(e, str) and os.path.normcase(os.path.abspath(e)) in wanted),
        len(sys.path),
    )
    if layout == "flat":
        sys.path.insert(position, config["flat"])
        site.addsitedir(config["flat"])  # already on sys.path: only runs the .pth files
    else:
        sys.path[position:position] = config["roots"]
with open(config["meta"], "w", encoding="utf-8") as stream:
    json.dump({"site_paths": site_paths}, stream)
with open(probe_file, encoding="utf-8") as _stream:
    _code = compile(_stream.read(), probe_file, "exec")
exec(_code, {
    "__name__": "__main__",
    "__file__": probe_file,
    "__builtins__": __builtins__,
    "LAYOUT": layout,
    "SITE_ENTRIES": [e for e in sys.path if e not in before],
    "ROOT_DIRS": [config["flat"]] * len(config["roots"]) if layout == "flat" else config["roots"],
})
"""


class Run:
    """One layout's result: the probe's JSON output and stderr, paths normalised."""

    __slots__ = ("layout", "output", "stderr")

    def __init__(self, layout: str, output: Any, stderr: str) -> None:
        self.layout = layout
        self.output = output
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"Run({self.layout!r}, {self.output!r})"


def kept_roots(roots: list[Path]) -> list[Path]:
    """The roots a flat install keeps: a root repeating a seen distribution is left out."""
    seen: set[str] = set()
    kept = []
    for root in roots:
        names = set()
        for entry in sorted(os.listdir(root)):
            for suffix in (".dist-info", ".egg-info"):
                if entry.endswith(suffix) and (root / entry).is_dir():
                    names.add(canonicalize_name(entry[: -len(suffix)].partition("-")[0]))
        if names & seen:
            continue
        seen |= names
        kept.append(root)
    return kept


def build_flat(roots: list[Path], flat: Path) -> Path:
    """Link the union of ``roots`` into ``flat``: the first root wins each relative path.

    Files are hard links (copies across devices): a probe may add files to the flat
    directory but must not rewrite one in place.
    """
    flat.mkdir(parents=True)
    for root in kept_roots(roots):
        for dirpath, dirnames, filenames in os.walk(root):
            relative = Path(dirpath).relative_to(root)
            target_dir = flat / relative
            if target_dir.exists() and not target_dir.is_dir():
                dirnames[:] = []  # a file of an earlier root holds this name
                continue
            target_dir.mkdir(exist_ok=True)
            for filename in filenames:
                target = target_dir / filename
                if not os.path.lexists(target):
                    _link_or_copy(os.path.join(dirpath, filename), target)
    return flat


def _link_or_copy(source: str, target: Path) -> None:
    # A hard link is the same file at a flat path, made in a fraction of a copy's time.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def run_probe(
    layout: str,
    roots: list[Path],
    probe: str,
    work: Path,
    *,
    env: dict[str, str] | None = None,
    flat: Path | None = None,
) -> Run:
    """Run ``probe`` under one layout; ``work`` is a fresh directory for its files."""
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.json"
    manifest.write_text(
        json.dumps({"vsite": 1, "roots": [os.fspath(r) for r in roots]}), encoding="utf-8"
    )
    config = {
        "manifest": os.fspath(manifest),
        "roots": [os.fspath(r) for r in roots],
        "flat": os.fspath(flat) if flat is not None else "",
        "meta": os.fspath(work / f"{layout}.meta.json"),
    }
    (work / "config.json").write_text(json.dumps(config), encoding="utf-8")
    runner_dir = work / "runner"
    runner_dir.mkdir(exist_ok=True)
    (runner_dir / "run.py").write_text(_RUNNER, encoding="utf-8")
    probe_file = work / "probe.py"
    probe_file.write_text(textwrap.dedent(probe), encoding="utf-8")
    command = [sys.executable, os.fspath(runner_dir / "run.py"), layout]
    command += [os.fspath(work / "config.json"), os.fspath(probe_file)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_child_env(env, os.fspath(work / "state")),
        cwd=os.fspath(runner_dir),
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"probe failed under the {layout} layout (exit {result.returncode}):\n"
            f"{result.stderr}\n--- stdout ---\n{result.stdout}"
        )
    try:
        output = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(
            f"probe under the {layout} layout did not print one JSON document:\n"
            f"{result.stdout}\n--- stderr ---\n{result.stderr}"
        ) from None
    meta = json.loads(Path(config["meta"]).read_text(encoding="utf-8"))
    prefixes = [*roots, *([flat] if flat is not None else []), *meta["site_paths"]]
    cache = _bytecode_dir(os.fspath(work / "state"))
    output, stderr = uncache(output, cache), uncache(result.stderr, cache)
    return Run(layout, normalise(output, prefixes), normalise(stderr, prefixes))


def run_layouts(
    roots: list[Path],
    probe: str,
    tmp_path: Path,
    *,
    layouts: tuple[str, ...] = LAYOUTS,
    env: dict[str, str] | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Run ``probe`` under each layout; return layout -> normalised JSON output.

    With ``full``, the values are :class:`Run` objects (output and stderr).
    """
    roots = [Path(r).absolute() for r in roots]
    work = Path(tempfile.mkdtemp(prefix="layouts-", dir=tmp_path))
    flat = build_flat(roots, work / "flat" / "site-packages") if "flat" in layouts else None
    runs = {
        layout: run_probe(layout, roots, probe, work / layout, env=env, flat=flat)
        for layout in layouts
    }
    return runs if full else {layout: run.output for layout, run in runs.items()}


def assert_equivalent(
    roots: list[Path],
    probe: str,
    tmp_path: Path,
    *,
    naive_differs: bool = False,
    env: dict[str, str] | None = None,
) -> Any:
    """Assert vsite's output equals the flat layout's; return that output.

    With ``naive_differs``, also assert the naive layout's output is NOT the flat one's:
    the behaviour checked is one that plain sys.path entries get wrong.
    """
    layouts = LAYOUTS if naive_differs else ("flat", "vsite")
    results = run_layouts(roots, probe, tmp_path, layouts=layouts, env=env)
    assert results["vsite"] == results["flat"], _diff(results)
    if naive_differs:
        assert results["naive"] != results["flat"], (
            "the naive layout gives the flat answer too, so this check proves nothing:\n"
            + json.dumps(results["flat"], indent=1, sort_keys=True)
        )
    return results["flat"]


def normalise(value: Any, prefixes: list[Any]) -> Any:
    """``value`` with every absolute path under one of ``prefixes`` rewritten to <site>."""
    paths: set[str] = set()
    for prefix in prefixes:
        text = os.fspath(prefix).rstrip(os.sep)
        paths.add(text)
        paths.add(os.path.realpath(text))
    # Longest first, whole path components only: /t/a must not eat /t/ab.
    pattern = re.compile(
        "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
        + r"(?![^/\\\s'\",:)\]>])"
    )
    return _rewrite(value, pattern)


def _cache_pattern(cache: str) -> re.Pattern[str]:
    # <cache>/<real dir>/<module>.<tag>.pyc -> the flat layout's <real dir>/__pycache__/...
    return re.compile(re.escape(cache) + r"((?:/[^/\s'\",:)\]>]+)*)/([^/\s'\",:)\]>]+\.pyc)")


def uncache(value: Any, cache: str) -> Any:
    """``value`` with every path in vsite's bytecode cache put where flat keeps it."""
    if not cache:
        return value
    if isinstance(value, str):
        return _cache_pattern(cache).sub(r"\1/__pycache__/\2", value)
    if isinstance(value, list):
        return [uncache(item, cache) for item in value]
    if isinstance(value, dict):
        return {uncache(k, cache): uncache(v, cache) for k, v in value.items()}
    return value


def _rewrite(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(SITE, value)
    if isinstance(value, list):
        return [_rewrite(item, pattern) for item in value]
    if isinstance(value, dict):
        if set(value) == {"__set__"} and isinstance(value["__set__"], list):
            items = [_rewrite(item, pattern) for item in value["__set__"]]
            unique = {json.dumps(item, sort_keys=True): item for item in items}
            return [unique[key] for key in sorted(unique)]
        return {_rewrite(k, pattern): _rewrite(v, pattern) for k, v in value.items()}
    return value


def _child_env(extra: dict[str, str] | None, state: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith("VSITE_")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # roots are shared by the three runs
    env["VSITE_DIR"] = state  # farms and caches of this run only
    env["VSITE_BYTECODE_DIR"] = _bytecode_dir(state)
    env.update(extra or {})
    return env


def _bytecode_dir(state: str) -> str:
    return os.path.join(state, "bytecode")


def _diff(results: dict[str, Any]) -> str:
    flat = json.dumps(results["flat"], indent=1, sort_keys=True).splitlines()
    vsite = json.dumps(results["vsite"], indent=1, sort_keys=True).splitlines()
    import difflib

    return "vsite differs from the flat layout:\n" + "\n".join(
        difflib.unified_diff(flat, vsite, "flat", "vsite", lineterm="")
    )
