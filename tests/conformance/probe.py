"""The conformance probe: runs in a fresh interpreter, prints ONE JSON document.

    python probe.py LAYOUT CONFIG global
    python probe.py LAYOUT CONFIG dist NAME

LAYOUT is one of tests/layouts.py's (loaded by path): ``flat``, the reference;
``vsite`` (imported from CONFIG's ``vsite_src``, which is then taken off ``sys.path``);
``naive`` and ``addsitedir``, plain sys.path entries (self-checks of the probe).
Standard library only: it runs in a bare venv that holds nothing else.

``global`` reports what the site looks like right after set-up (``.pth`` side effects:
``sys.path``, modules loaded from the site, import hooks) and whole-site metadata;
``dist NAME`` probes one distribution: imports, a bounded ``pkgutil.walk_packages``,
specs of every module found, metadata, resources and package ``__path__``s.
Paths are reported raw; the harness normalises them.
"""

from __future__ import annotations

import json
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import importlib.metadata as md

# A JSON document as the probe builds it.
JSON = Any

# pkgutil.walk_packages imports every PACKAGE it lists (that is how it finds their
# subpackages); none of this corpus's packages has an effect beyond the probe's own
# process when imported, so nothing is skipped there. Plain MODULES are then imported
# one by one, except these (name pattern -> why):
SKIP_WALK: dict[str, str] = {}
SKIP_IMPORT = {
    "*.__main__": "runs the package's command line (it parses sys.argv, may exit or block)",
    "*.tests.*, *.testing.*, *.conftest, *.test_*, *_test": (
        "the distributions' own test suites: they need test-only dependencies, data "
        "files wheels leave out, and some check their environment at import"
    ),
    "_distutils_hack.override": "replaces sys.modules['distutils'] for the rest of the run",
    "setuptools._distutils.*, setuptools._vendor.*, pkg_resources._vendor.*": (
        "vendored copies, imported under their own names by setuptools/pkg_resources"
    ),
    "matplotlib.backends.*": "GUI backends probe for Qt/Tk/Gtk/wx and a display",
}
MAX_IMPORT = 3000  # plain modules imported per distribution
MAX_WALK = 4000  # modules listed per distribution
MAX_RESOURCES = 400  # packages whose resources are listed per distribution
# Written by the installer, not part of the distribution.
INSTALLER_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def _load_layouts() -> ModuleType:
    """tests/layouts.py, loaded by path: no ``tests`` package in this interpreter."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "layouts.py")
    module = type(sys)("_layouts")
    module.__file__ = path
    with open(path, encoding="utf-8") as stream:
        exec(compile(stream.read(), path, "exec"), module.__dict__)
    return module


def _setup(layout: str, config: dict[str, Any]) -> list[str]:
    """Enter ``layout``; the sys.path entries it put where site-packages sits."""
    layouts = _load_layouts()
    if layout == "vsite":
        sys.path.insert(0, config["vsite_src"])
    try:
        entries: list[str]
        entries, _ = layouts.enter(
            layout, roots=config["roots"], flat=config["flat"], manifest=config["manifest"]
        )
    finally:
        if layout == "vsite":
            sys.path.remove(config["vsite_src"])
    return entries


def _error(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ours(obj: object) -> bool:
    module = getattr(type(obj), "__module__", "") or ""
    return module == "vsite" or module.startswith("vsite.")


def _hook_name(obj: object) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{name}"


def _all_entry_points() -> list[md.EntryPoint]:
    import importlib.metadata as md

    if sys.version_info >= (3, 12):
        return list(md.entry_points())
    else:  # 3.9: a dict of group -> entry points; 3.10-3.11: SelectableGroups, a dict too.
        return [ep for group in md.entry_points().values() for ep in group]


def probe_global(site_paths: list[str], baseline: set[str]) -> dict[str, JSON]:
    import importlib.metadata as md

    loaded: dict[str, str | None] = {}
    for name, module in sorted(sys.modules.items()):
        if name in baseline or name == "vsite" or name.startswith("vsite."):
            continue
        loaded[name] = getattr(module, "__file__", None)
    dists = sorted((d.metadata["Name"] or "", d.version or "") for d in md.distributions())
    eps = sorted((ep.group, ep.name, ep.value) for ep in _all_entry_points())
    packages: dict[str, list[str]] | None = None
    if sys.version_info >= (3, 10):  # the corpus runs on 3.11; 3.9's has no such call
        packages = {k: sorted(v) for k, v in md.packages_distributions().items()}
    startup = {
        "sys_path": [p for p in sys.path if p not in site_paths],
        "site_entry_count": sum(1 for p in sys.path if p in site_paths),
        "modules_loaded": loaded,
        "meta_path": [_hook_name(f) for f in sys.meta_path if not _ours(f)],
        "path_hooks": [_hook_name(h) for h in sys.path_hooks if not _ours(h)],
    }
    return {
        "startup": startup,
        "distributions": dists,
        "entry_points": eps,
        "packages_distributions": packages,
        "pkg_resources": probe_pkg_resources(),
    }


def probe_pkg_resources() -> dict[str, JSON]:
    """What a program that imports pkg_resources (setuptools) sees of the site."""
    try:
        import pkg_resources
    except BaseException as exc:
        return {"error": _error(exc)}
    working_set = sorted((d.project_name, d.version, d.location) for d in pkg_resources.working_set)
    lookups: dict[str, JSON] = {}
    for project_name, _, _ in working_set:
        try:
            found = pkg_resources.get_distribution(project_name)
            lookups[project_name] = [found.version, found.location, found.has_metadata("RECORD")]
        except BaseException as exc:
            lookups[project_name] = _error(exc)
    scripts = sorted(
        (ep.dist.project_name, ep.name, str(ep))
        for ep in pkg_resources.iter_entry_points("console_scripts")
    )
    requirement: list[str] | str
    try:
        requirement = [str(d) for d in pkg_resources.require("sphinx")]
    except BaseException as exc:
        requirement = _error(exc)
    return {
        "working_set": working_set,
        "get_distribution": lookups,
        "console_scripts": scripts,
        "require_sphinx": sorted(requirement) if isinstance(requirement, list) else requirement,
    }


def _top_level_names(dist: md.Distribution) -> list[str]:
    text = dist.read_text("top_level.txt")
    names: set[str] = set()
    if text:
        names.update(line.strip().replace("/", ".") for line in text.splitlines())
    for path in dist.files or ():
        parts = path.parts
        if not parts or parts[0] in ("..", "") or parts[0].endswith((".dist-info", ".data")):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith((".pth", ".pyc")):
                continue
            first = first.partition(".")[0]
        names.add(first)
    return sorted(n for n in names if n and n.replace("_", "a").isalnum() and n != "__pycache__")


_STANDARD_MODULES = ("_frozen_importlib", "_frozen_importlib_external", "zipimport")


def _loader_kind(loader: object) -> str | None:
    """The standard loader class ``loader`` is (SPEC: specs use the standard loaders;
    vsite may subclass one to add a resource reader), else its own full name."""
    if loader is None:
        return None
    for cls in type(loader).__mro__:
        if cls.__module__ in _STANDARD_MODULES:
            return cls.__name__
    return f"nonstandard {type(loader).__module__}.{type(loader).__qualname__}"


def _module_info(module: ModuleType) -> dict[str, JSON]:
    spec = getattr(module, "__spec__", None)
    path = getattr(module, "__path__", None)
    return {
        "file": getattr(module, "__file__", None),
        "loader": _loader_kind(spec.loader) if spec is not None else None,
        "path": None if path is None else list(path),
    }


def _skipped(name: str) -> bool:
    return any(name == s or name.startswith(s + ".") for s in SKIP_WALK)


def _import_skipped(name: str) -> bool:
    import fnmatch

    patterns = [p.strip() for key in SKIP_IMPORT for p in key.split(",")]
    probe = name + "."  # "pkg.tests" matches "*.tests.*" too
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(probe, p) for p in patterns)


def probe_dist(name: str) -> dict[str, JSON]:
    import importlib
    import importlib.metadata as md
    import importlib.util
    import pkgutil

    out: dict[str, JSON] = {"dist": name}
    try:
        dist = md.distribution(name)
    except Exception as exc:
        out["error"] = _error(exc)
        return out
    files = sorted(
        str(f)
        for f in dist.files or ()
        if f.parts and f.parts[0] != ".." and f.name not in INSTALLER_FILES and f.suffix != ".pyc"
    )
    out["metadata"] = {
        "name": dist.metadata["Name"],
        "version": md.version(name),
        "requires": sorted(dist.requires or ()),
        "entry_points": sorted((ep.group, ep.name, ep.value) for ep in dist.entry_points),
        "files": files,
        "located": str(dist.locate_file("")),
        "same_as_lookup": str(md.distribution(dist.metadata["Name"]).locate_file("")),
    }
    tops = _top_level_names(dist)
    imports: dict[str, JSON] = {}
    for top in tops:
        try:
            module = importlib.import_module(top)
        except BaseException as exc:  # SystemExit from a module is a result too
            imports[top] = {"error": _error(exc)}
            continue
        imports[top] = _module_info(module)
    out["imports"] = imports

    walked: list[tuple[str, bool]] = []
    errors: dict[str, str] = {}
    specs: dict[str, JSON] = {}

    def onerror(failed: str) -> None:
        errors[failed] = _error(sys.exc_info()[1])

    truncated = False
    for top in tops:
        path = getattr(sys.modules.get(top), "__path__", None)
        if path is None or _skipped(top):
            continue
        for info in pkgutil.walk_packages(path, top + ".", onerror=onerror):
            if _skipped(info.name):
                continue
            walked.append((info.name, info.ispkg))
            if len(walked) >= MAX_WALK:
                truncated = True
                break
        if truncated:
            break
    for module_name, _ in walked:
        try:
            spec = importlib.util.find_spec(module_name)
        except BaseException as exc:
            specs[module_name] = _error(exc)
            continue
        if spec is None:
            specs[module_name] = None
            continue
        specs[module_name] = [spec.origin, _loader_kind(spec.loader), spec.parent]
    out["walk"] = {"modules": walked, "errors": errors, "truncated": truncated}
    out["specs"] = specs

    module_imports: dict[str, str | None] = {}
    for module_name, ispkg in walked:
        if ispkg or module_name in sys.modules or _import_skipped(module_name):
            continue
        if len(module_imports) >= MAX_IMPORT:
            break
        try:
            importlib.import_module(module_name)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt from a module too
            module_imports[module_name] = _error(exc)
        else:
            module_imports[module_name] = None
    out["module_imports"] = module_imports

    packages = [top for top in tops if getattr(sys.modules.get(top), "__path__", None)]
    packages += [n for n, ispkg in walked if ispkg and n in sys.modules]
    resources: dict[str, JSON] = {}
    paths: dict[str, list[str]] = {}
    import importlib.resources as ir

    for package in packages[:MAX_RESOURCES]:
        paths[package] = list(getattr(sys.modules[package], "__path__", []) or [])
        try:
            names = sorted(p.name for p in ir.files(package).iterdir() if p.name != "__pycache__")
        except BaseException as exc:
            resources[package] = _error(exc)
            continue
        resources[package] = names
    out["resources"] = resources
    out["package_paths"] = paths
    loaded: dict[str, JSON] = {}
    for module_name, module in sorted(sys.modules.items()):
        if module_name == "vsite" or module_name.startswith("vsite."):
            continue
        where = getattr(module, "__file__", None)
        package_path = getattr(module, "__path__", None)
        loaded[module_name] = [
            where,
            getattr(module, "__cached__", None),
            None if package_path is None else list(package_path),
        ]
    out["loaded"] = loaded  # every module the probe pulled in, and where from
    return out


def main() -> None:
    del sys.path[0]  # the probe's own directory
    layout, config_file, mode = sys.argv[1:4]
    with open(config_file, encoding="utf-8") as stream:
        config = json.load(stream)
    baseline = set(sys.modules)
    site_paths = _setup(layout, config)
    import warnings

    warnings.simplefilter("ignore")
    result = probe_global(site_paths, baseline) if mode == "global" else probe_dist(sys.argv[4])
    result["site_paths"] = site_paths
    sys.stdout.flush()
    sys.stdout.write("\n@@PROBE@@" + json.dumps(result, default=repr) + "\n")
    sys.stdout.flush()
    os._exit(0)  # atexit handlers of probed modules are not part of the result


if __name__ == "__main__":
    main()
