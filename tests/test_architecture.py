"""The package's shape: the runtime stays stdlib-only, the tooling sits beside it.

The runtime is ``vsite`` and its subpackages other than ``vsite.tools``: what the boot
path and ``import vsite; vsite.activate(...)`` load. It imports the standard library and
itself only. ``vsite.tools`` (the command line, check, install, ...) may import the
runtime, ``packaging`` and ``installer``; the runtime never imports it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest
from tests.children import child_env

#: What the runtime must never import (a package, or any module inside it).
TOOLING = ("vsite.tools", "packaging", "installer")

PACKAGE = Path(vsite.__file__).parent
TOOLS = PACKAGE / "tools"

#: Modules of the runtime's packages that are not runtime, and why.
NOT_RUNTIME = {
    "vsite.__main__": "``python -m vsite``: the command line's entry; nothing imports it",
}

#: The modules of ``vsite.tools`` that write to stdout/stderr, and why.
PRINTING = {
    "vsite.tools.cli": "the command line: the one place that prints and picks exit codes",
    "vsite.tools.run": "reports the program's own uncaught exception as python does",
}


def _tooling(names: object) -> list[str]:
    assert isinstance(names, list)
    return sorted(
        str(name)
        for name in names
        if any(str(name) == top or str(name).startswith(top + ".") for top in TOOLING)
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if TOOLS not in path.parents and _module_name(path) not in NOT_RUNTIME
    )


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, anywhere in it (functions, TYPE_CHECKING blocks):
    ``from a import b`` counts as ``a`` and ``a.b`` (b may be a submodule)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), os.fspath(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    roots = tmp_path / "roots"
    make_root(
        roots,
        "alpha",
        {"alpha": {"__init__.py": ""}, "ns": {"a.py": ""}},
        pth={"alpha.pth": "import alpha\n"},
    )
    make_root(roots, "beta", {"ns": {"b.py": ""}})
    return write_manifest(tmp_path / "manifest.json", [roots / "alpha", roots / "beta"])


def _modules_of_child(command: list[str]) -> list[str]:
    result = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
    assert result.returncode == 0, result.stderr
    names = json.loads(result.stdout.splitlines()[-1])
    assert isinstance(names, list)
    return [str(name) for name in names]


# `json` is imported by the probe itself, after the modules were listed.
_PROBE = "import sys; names = sorted(sys.modules); import json; print(json.dumps(names))"


def test_the_boot_path_imports_no_tooling(manifest: Path) -> None:
    vsite_exec = [sys.executable, "-m", "vsite", "exec", os.fspath(manifest), "--"]
    names = _modules_of_child([*vsite_exec, sys.executable, "-c", _PROBE])
    assert "vsite.activation" in names  # the site did boot
    assert "alpha" in names  # and ran its .pth file
    assert _tooling(names) == []


#: What a start loads of vsite's own when the program imports nothing from the site
#: (issue 15: each module is 0.1-0.4 ms of every start on the 2-core VMs): the boot
#: bundle's modules (``vsite/_boot/_vsite_boot.py``), read from one file. The union,
#: the bytecode loader, the errors, the manifest parser and the index writer wait for
#: their first use. These modules also do without ``from __future__ import
#: annotations`` (importing ``__future__`` is one more module): their annotations that
#: Python 3.9 cannot evaluate are quoted. The site's entry is its farm, held for the
#: process's life and checked at start (``vsite._farm_lock``).
def _bundled() -> set[str]:
    boot_dir = os.fspath(PACKAGE / "_boot")
    sys.path.insert(0, boot_dir)
    try:
        from _vsite_boot import BUNDLED  # type: ignore[import-not-found]
    finally:
        sys.path.remove(boot_dir)
        sys.modules.pop("_vsite_boot", None)
    return set(BUNDLED)


BOOT_MODULES = _bundled()
assert "vsite.activation" in BOOT_MODULES


def test_a_start_that_imports_nothing_from_the_site_loads_only_the_boot_modules(
    tmp_path: Path,
) -> None:
    root = make_root(tmp_path, "alpha", {"alpha": {"__init__.py": ""}})
    manifest = write_manifest(tmp_path / "manifest.json", [root], immutable=True)
    vsite_exec = [sys.executable, "-m", "vsite", "exec", os.fspath(manifest), "--"]
    _modules_of_child([*vsite_exec, sys.executable, "-c", _PROBE])  # the index is warm now
    names = _modules_of_child([*vsite_exec, sys.executable, "-c", _PROBE])
    assert {name for name in names if name.split(".")[0] == "vsite"} == BOOT_MODULES
    assert "__future__" not in names


#: What the first import from the site adds (the union of the roots, the bytecode
#: loader), and with a ``.pth`` file in the site, what runs it: the modules nearly every
#: process loads, so they too do without ``__future__`` (~0.2 ms).
FIRST_USE_MODULES = {
    "vsite._fs",
    "vsite._machinery",
    "vsite.finder.bytecode",
    "vsite.finder.union",
    "vsite.pth",
    "vsite._compat",
    "vsite._compat.py312_dot_pth",
}


def test_the_first_import_from_the_site_and_its_pth_files_load_no_future(
    tmp_path: Path,
) -> None:
    root = make_root(
        tmp_path,
        "alpha",
        {"alpha": {"__init__.py": "", "sub.py": ""}},
        pth={"alpha.pth": "import sys; sys.alpha_pth = 1\n"},
    )
    manifest = write_manifest(tmp_path / "manifest.json", [root], immutable=True)
    vsite_exec = [sys.executable, "-m", "vsite", "exec", os.fspath(manifest), "--"]
    code = f"import sys, alpha.sub; assert sys.alpha_pth == 1; {_PROBE}"
    _modules_of_child([*vsite_exec, sys.executable, "-c", code])  # the index is warm now
    names = _modules_of_child([*vsite_exec, sys.executable, "-c", code])
    ours = {name for name in names if name.split(".")[0] == "vsite"}
    assert ours == BOOT_MODULES | FIRST_USE_MODULES
    assert "__future__" not in names


def test_import_vsite_and_activate_import_no_tooling(manifest: Path) -> None:
    code = f"import vsite; vsite.activate({os.fspath(manifest)!r}); import alpha; {_PROBE}"
    names = _modules_of_child([sys.executable, "-c", code])
    assert "vsite.activation" in names
    assert _tooling(names) == []


def test_no_runtime_module_imports_the_tooling() -> None:
    modules = _runtime_modules()
    assert PACKAGE / "activation.py" in modules  # the walk sees the runtime,
    assert PACKAGE / "finder" / "union.py" in modules  # subpackages too,
    assert PACKAGE / "tools" / "cli.py" not in modules  # and not the tooling
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}"
        for path in modules
        for line, name in _imports(path)
        if _tooling([name])
    ]
    assert bad == []


def test_only_the_command_line_prints() -> None:
    """Tooling modules return data or raise; ``vsite.tools.cli`` reports it."""
    found = []
    for path in sorted(TOOLS.rglob("*.py")):
        if _module_name(path) in PRINTING:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name) and node.id == "print":
                name = "print"
            elif (
                isinstance(node, ast.Attribute)
                and node.attr in ("stdout", "stderr", "exit")
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                name = f"sys.{node.attr}"
            else:
                continue
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}")
    assert found == []


# -- import cycles ---------------------------------------------------------------------

# Imports the cycle walk does not count, each with its reason. Imports under
# ``if TYPE_CHECKING:`` never run and are left out of the walk itself (annotations only);
# every other import counts, function-level (lazy) ones too: a lazy import still makes
# the two modules depend on each other, it only moves the moment the cycle bites.
CYCLE_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_files() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {vsite module it imports: line of the first such import}.

    ``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``.
    Parent packages a dotted import runs implicitly are not counted (every module would
    otherwise depend on ``vsite/__init__``).
    """
    modules = _module_files()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _runtime_imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                while target and target not in modules:  # import a.b.c of a non-module
                    target = target.rpartition(".")[0]
                if target and target != name and (name, target) not in CYCLE_EXCEPTIONS:
                    edges.setdefault(target, node.lineno)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _cycle_in(graph: dict[str, dict[str, int]], group: set[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*paths[node], start]
            if nxt in group and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def _describe_cycle(graph: dict[str, dict[str, int]], group: list[str]) -> str:
    cycle = _cycle_in(graph, set(group), group[0])
    steps = [
        f"  {here} (line {graph[here][there]}) -> {there}" for here, there in zip(cycle, cycle[1:])
    ]
    return "\n".join([f"cycle among {', '.join(group)}; one of its loops:", *steps])


def test_package_imports_form_no_cycle() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    report = "\n\n".join(_describe_cycle(graph, group) for group in cycles)
    assert not cycles, f"import cycles among vsite's modules:\n{report}"


def test_import_walk_counts_function_level_imports() -> None:
    # The walk must see what it exists to catch: a function-level import.
    graph = import_graph()
    assert "vsite.finder.pkg_resources_support" in graph["vsite.finder.meta_finder"]
    assert "vsite.native.farm" in graph["vsite.activation"]
