"""The layouts one probe runs under, built, entered and compared in one place.

Four layouts of the same roots (manifest order):

- ``flat``: SPEC section 1's reference. The union of the roots linked into ONE
  directory (:func:`build_flat`: the first root wins a relative path; a root repeating
  an earlier root's distribution is left out whole, as vsite drops it), put where
  site-packages sits on ``sys.path``; its ``.pth`` files run by ``site.addsitedir``.
- ``vsite``: ``vsite.activate(manifest)``.
- ``naive``: every root at that position, in manifest order; no ``.pth`` file runs.
- ``addsitedir``: the same entries, then ``site.addsitedir(root)`` per root in
  manifest order, as pex does: each root's ``.pth`` files run, root after root.

The test process builds (:func:`build_flat`, :func:`child_env`) and compares
(:func:`normalise`, :func:`uncache`); the probe processes (tests/differential.py's
runner, tests/property/_layout_worker.py, tests/conformance/probe.py) enter a layout
with :func:`enter`. They load this file by its path (:data:`FILE`), not by import:
no ``tests`` package may appear in a probed interpreter. So the module imports, at its
top, only what those interpreters have loaded anyway.
"""

from __future__ import annotations

import json
import os
import re
import site
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any, Callable, TypeVar, Union

    StrPath = Union[str, "os.PathLike[str]"]
    P = TypeVar("P", bound=StrPath)

__all__ = [
    "FILE",
    "LAYOUTS",
    "SITE",
    "build_flat",
    "bytecode_dir",
    "child_env",
    "enter",
    "kept_roots",
    "normalise",
    "shadowed",
    "site_position",
    "uncache",
]

LAYOUTS = ("flat", "vsite", "naive", "addsitedir")
SITE = "<site>"
#: This file, for a probe process to load (compile and exec into a fresh module).
FILE = os.path.abspath(__file__)

# -- in the probe process ----------------------------------------------------------------


def site_position() -> int:
    """Where ``site`` puts site-packages on ``sys.path`` (its end when none is there)."""
    candidates = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    wanted = {os.path.normcase(os.path.abspath(c)) for c in candidates}
    for position, entry in enumerate(sys.path):
        if isinstance(entry, str) and os.path.normcase(os.path.abspath(entry)) in wanted:
            return position
    return len(sys.path)


def enter(
    layout: str, *, roots: Sequence[str] = (), flat: str = "", manifest: str = ""
) -> tuple[list[str], Any]:
    """Put ``layout`` into this interpreter: (the ``sys.path`` entries it put where
    site-packages sits, vsite's activation handle or None)."""
    if layout == "vsite":
        import vsite

        handle = vsite.activate(manifest)
        return [handle.site_path], handle
    if layout == "flat":
        entries = [flat]
    elif layout in ("naive", "addsitedir"):
        entries = list(roots)
    else:
        raise ValueError(f"unknown layout {layout!r}: one of {LAYOUTS}")
    position = site_position()
    sys.path[position:position] = entries
    if layout != "naive":
        for entry in entries:
            site.addsitedir(entry)  # already on sys.path: runs its .pth files only
    return entries, None


# -- in the test process: building -------------------------------------------------------


def kept_roots(roots: Sequence[P]) -> list[P]:
    """The roots a flat install keeps: a root repeating a seen distribution is left out."""
    seen: set[str] = set()
    kept = []
    for root in roots:
        names = set()
        for entry in sorted(os.listdir(root)):
            for suffix in (".dist-info", ".egg-info"):
                if entry.endswith(suffix) and os.path.isdir(os.path.join(root, entry)):
                    names.add(_canonical(entry[: -len(suffix)].partition("-")[0]))
        if names & seen:
            continue
        seen |= names
        kept.append(root)
    return kept


def _canonical(name: str) -> str:
    # packaging.utils.canonicalize_name, without packaging in a probe process.
    return re.sub(r"[-_.]+", "-", name).lower()


def build_flat(roots: Sequence[Path], flat: Path) -> Path:
    """Link the union of ``roots`` into ``flat``: the first root wins each relative path.

    Files are hard links (copies across devices): a probe may add files to the flat
    directory but must not rewrite one in place.
    """
    flat.mkdir(parents=True)
    for root in kept_roots(roots):
        for dirpath, dirnames, filenames in os.walk(root):
            target_dir = flat / os.path.relpath(dirpath, root)
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
        import shutil

        shutil.copy2(source, target)


def bytecode_dir(state: str) -> str:
    """vsite's per-user bytecode cache for a probe whose vsite state is ``state``."""
    return os.path.join(state, "bytecode")


def child_env(state: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a probe process: this one's, less PYTHONPATH and VSITE_*;
    vsite's farms, index caches and bytecode under ``state``; no bytecode written."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith("VSITE_")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the layouts share the roots
    env["VSITE_DIR"] = state
    env["VSITE_BYTECODE_DIR"] = bytecode_dir(state)
    env.update(extra or {})
    return env


# -- in the test process: comparing ------------------------------------------------------

# The characters that end a path inside a longer text (a traceback, a repr).
_END = r"\s'\",:)\]>"


def shadowed(roots: Sequence[StrPath]) -> dict[str, str]:
    """Every file of ``roots`` (manifest order) that is NOT the flat site's file at its
    relative path -> why: an earlier kept root has a file there, or its root repeats a
    distribution and is left out. Keyed by the path as given and as resolved."""
    kept = {os.fspath(r) for r in kept_roots(roots)}
    holders: dict[str, int] = {}  # relative file -> the kept root the flat site has it from
    found = {}
    for number, root in enumerate(os.fspath(r) for r in roots):
        for dirpath, _, filenames in os.walk(root):
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                relative = os.path.relpath(path, root)
                if root not in kept:
                    why = f" (root {number + 1}'s copy; that root is left out of the flat site)"
                elif relative in holders:
                    why = f" (root {number + 1}'s copy; the flat site holds root "
                    why += f"{holders[relative] + 1}'s)"
                else:
                    holders[relative] = number
                    continue
                found[path] = found[os.path.realpath(path)] = why
    return found


def normalise(
    value: Any,
    prefixes: Sequence[StrPath],
    shadowed: Mapping[str, str] | None = None,
    *,
    token: str = SITE,
) -> Any:
    """``value`` with every absolute path under one of ``prefixes`` rewritten to
    ``token`` (<site>), whole path components only.

    ``shadowed`` (:func:`shadowed` of the roots) keeps the one thing that rewriting would
    erase: WHICH copy of a file a path names. A path to a file that is not the flat
    site's (directly, or through a link in vsite's farm) reads
    ``<site>/rel (root K's copy; ...)``, so it differs from the flat layout's
    ``<site>/rel`` whatever the two files hold.
    """
    paths: set[str] = set()
    for prefix in prefixes:
        text = os.fspath(prefix).rstrip(os.sep)
        paths.add(text)
        paths.add(os.path.realpath(text))
    if not paths:
        return value
    # Longest first, whole path components only: /t/a must not eat /t/ab.
    pattern = re.compile(
        "(" + "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True)) + ")"
        rf"(?![^/\\{_END}])((?:[/\\][^/\\{_END}]*)*)"
    )
    marks = shadowed or {}

    def rewrite(match: re.Match[str]) -> str:
        rest = match[2]
        mark = ""
        if marks:
            path = match[1] + rest
            mark = marks.get(path) or marks.get(os.path.realpath(path), "")
        return token + rest + mark

    return _rewrite(value, lambda text: pattern.sub(rewrite, text), sets=True)


def uncache(value: Any, cache: str) -> Any:
    """``value`` with every path in vsite's bytecode cache put where flat keeps it.

    vsite writes ``<cache>/<real dir>/mod.<tag>.pyc`` (the ``sys.pycache_prefix``
    layout); the flat directory has ``<real dir>/__pycache__/mod.<tag>.pyc``.
    """
    if not cache:
        return value
    pattern = re.compile(re.escape(cache) + rf"((?:/[^/{_END}]+)*)/([^/{_END}]+\.pyc)")
    return _rewrite(value, lambda text: pattern.sub(r"\1/__pycache__/\2", text))


def _rewrite(value: Any, change: Callable[[str], str], *, sets: bool = False) -> Any:
    """``value`` with ``change`` applied to every string in it, keys too. With ``sets``,
    an object ``{"__set__": [...]}`` becomes the sorted list of its distinct items after
    that (the last rewriting does it: one item may become another's equal)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_rewrite(item, change, sets=sets) for item in value]
    if isinstance(value, dict):
        if sets and set(value) == {"__set__"} and isinstance(value["__set__"], list):
            items = [_rewrite(item, change, sets=sets) for item in value["__set__"]]
            unique = {json.dumps(item, sort_keys=True): item for item in items}
            return [unique[key] for key in sorted(unique)]
        return {
            _rewrite(k, change, sets=sets): _rewrite(v, change, sets=sets) for k, v in value.items()
        }
    return value
