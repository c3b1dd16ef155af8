"""One layout's probe server for the property tests (run as a script, never imported).

``python _layout_worker.py LAYOUT`` reads one JSON request per line on stdin, and for
each: installs the case's roots under LAYOUT (one of tests/layouts.py's), imports
every module name of the case and records the fingerprint, takes the layout out again
and writes one JSON answer line. One interpreter serves every example of a test run, so
an example costs its imports, not an interpreter start; each case has fresh directories
and its modules are purged afterwards, so no state carries from one case to the next.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import traceback
from types import ModuleType
from typing import Any

# A JSON document as the worker reads or writes it.
JSON = Any

del sys.path[0]  # this script's directory
LAYOUT = sys.argv[1]


def _load_layouts() -> ModuleType:
    """tests/layouts.py, loaded by path: no ``tests`` package in this interpreter."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "layouts.py")
    module = type(sys)("_layouts")
    module.__file__ = path
    with open(path, encoding="utf-8") as stream:
        exec(compile(stream.read(), path, "exec"), module.__dict__)
    return module


layouts = _load_layouts()
# stdout carries the protocol; anything a module prints goes to stderr instead.
_protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)

_MARK_TAG = b"\0VSITE-MARK:"
_STANDARD_LOADER_MODULES = ("_frozen_importlib", "_frozen_importlib_external")


def main() -> None:
    # Import what the probe uses before the first snapshot of sys.meta_path: the
    # importlib_metadata backport adds its finder there on import (and removes the
    # stdlib PathFinder's find_distributions), which must outlive every case.
    import pkgutil  # noqa: F401
    from importlib import metadata, resources  # noqa: F401

    for optional in ("importlib_metadata", "importlib_resources"):
        try:
            importlib.import_module(optional)
        except ImportError:
            pass
    if LAYOUT == "vsite":
        import vsite  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer: dict[str, JSON] = {"ok": run_case(request)}
        except BaseException:
            answer = {"error": traceback.format_exc()}
        _protocol.write(json.dumps(answer) + "\n")
        _protocol.flush()


def run_case(request: dict[str, JSON]) -> dict[str, JSON]:
    tops = set(request["top"])
    before = (list(sys.path), list(sys.meta_path), list(sys.path_hooks))
    entries: list[str]
    entries, handle = layouts.enter(
        LAYOUT, roots=request["roots"], flat=request["flat"], manifest=request["manifest"]
    )
    site_paths: list[str] = [handle.site_path] if handle is not None else []
    try:
        result = probe(request, entries, site_paths)
    finally:
        if handle is not None:
            handle.deactivate(purge=True)
    owned = [request["base"], *site_paths]
    result["site_paths"] = site_paths
    result["bytecode_dir"] = os.environ.get("VSITE_BYTECODE_DIR", "")
    # What a purging deactivate() left behind (vsite only: the others are undone here).
    result["residue"] = {
        "modules": sorted(n for n in sys.modules if n.partition(".")[0] in tops),
        "path": sys.path != before[0],
        "meta_path": sys.meta_path != before[1],
        "path_hooks": sys.path_hooks != before[2],
        "path_importer_cache": sorted(
            k for k in sys.path_importer_cache if isinstance(k, str) and _under(k, owned)
        ),
    }
    sys.path[:], sys.meta_path[:], sys.path_hooks[:] = before
    for key in [k for k in sys.path_importer_cache if isinstance(k, str) and _under(k, owned)]:
        del sys.path_importer_cache[key]
    for name in result["residue"]["modules"]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return result


def probe(request: dict[str, JSON], entries: list[str], site_paths: list[str]) -> dict[str, JSON]:
    import pkgutil

    # A distribution is the case's when it lies under the case's base or in the site's
    # entry (vsite's view: the directory the metadata scan finds it in, as flat's is).
    where = tuple(os.path.join(path, "") for path in (request["base"], *site_paths))
    modules: dict[str, JSON] = {}
    for name in request["names"]:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            modules[name] = {"error": type(exc).__name__, "message": str(exc)}
        else:
            modules[name] = describe(module)
    return {
        "modules": modules,
        # Only the site's own entries: the stdlib's would cost ~0.1 s a case.
        "iter_modules": [[m.name, m.ispkg] for m in pkgutil.iter_modules(entries)],
        "metadata": metadata(importlib.import_module("importlib.metadata"), request, where),
        "backport": _backport(request, where),
    }


def describe(module: ModuleType) -> dict[str, JSON]:
    spec = module.__spec__
    assert spec is not None  # imported by the import system: it has a spec
    found: dict[str, JSON] = {
        "loader": _loader_kind(spec.loader),
        "file": getattr(module, "__file__", None),
        "cached": getattr(module, "__cached__", None),
        "mark": getattr(module, "MARK", None) or _trailing_mark(spec.origin),
    }
    if hasattr(module, "__path__"):
        import pkgutil

        found["path"] = list(module.__path__)
        found["iter_modules"] = [[m.name, m.ispkg] for m in pkgutil.iter_modules(module.__path__)]
        found["resources"] = resources(module.__name__)
    return found


def resources(name: str) -> dict[str, JSON]:
    """One level of files(name): (name, is_dir) pairs, per API this interpreter has."""
    found: dict[str, JSON] = {}
    apis = ["importlib_resources"]
    # 3.9's stdlib files() ignores resource readers (a known, documented difference).
    if sys.version_info >= (3, 10):
        apis.append("importlib.resources")
    for api in apis:
        try:
            files = importlib.import_module(api).files(name)
            found[api] = sorted({(c.name, c.is_dir()) for c in files.iterdir()})
        except ImportError as exc:
            if exc.name == api:
                continue
            found[api] = type(exc).__name__
        except Exception as exc:
            found[api] = type(exc).__name__
    return found


def metadata(api: Any, request: dict[str, JSON], where: tuple[str, ...]) -> dict[str, JSON]:
    """The case's distributions as one metadata API sees them; ``entry_points()`` by
    group is derived from them (reading every installed distribution's entry points
    per case would cost more than the rest of the probe)."""
    dists: list[JSON] = []
    groups: dict[str, list[list[str]]] = {group: [] for group in request["groups"]}
    for dist in api.distributions():
        if not os.path.join(str(dist.locate_file("")), "").startswith(where):
            continue  # the interpreter's own site-packages: the same for every layout
        entry_points = sorted([ep.group, ep.name, ep.value] for ep in dist.entry_points)
        files = sorted(str(f) for f in dist.files or ())
        dists.append([dist.metadata["Name"], dist.version, entry_points, files])
        for group, name, value in entry_points:
            groups.setdefault(group, []).append([name, value])
    versions: dict[str, str | None] = {}
    for spelling in request["spellings"]:
        try:
            versions[spelling] = api.version(spelling)
        except api.PackageNotFoundError:
            versions[spelling] = None
    return {
        "distributions": sorted(dists),
        "versions": versions,
        "entry_points": {group: sorted(found) for group, found in groups.items()},
    }


def _backport(request: dict[str, JSON], where: tuple[str, ...]) -> dict[str, JSON] | None:
    try:
        import importlib_metadata
    except ImportError:
        return None
    return metadata(importlib_metadata, request, where)


def _loader_kind(loader: object) -> str:
    """The standard loader class a loader is (or extends): vsite's must be one."""
    for cls in type(loader).__mro__:
        if cls.__module__ in _STANDARD_LOADER_MODULES:
            return cls.__name__
    return f"{type(loader).__module__}.{type(loader).__qualname__}"


def _trailing_mark(origin: str | None) -> str | None:
    if origin is None:
        return None
    with open(origin, "rb") as stream:
        data = stream.read()
    _, tag, mark = data.rpartition(_MARK_TAG)
    return mark.rstrip(b"\0").decode() if tag else None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(os.path.join(p, "")) for p in prefixes)


if __name__ == "__main__":
    main()
