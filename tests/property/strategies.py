"""Hypothesis strategies for vsite's property tests, and the code that lays them out.

A :class:`Scenario` is a manifest's worth of roots. Names come from small pools
(``alpha``/``beta``/``gamma`` at the top, ``a``/``b``/``c`` below, three distribution
names in many spellings) so that random roots collide often: the same relative file in
two roots, a module in one root and a package or namespace directory of that name in
another, a namespace split at several depths, one distribution installed twice.

Every module file written defines (or, for an extension module, carries at its end) a
marker naming the root and relative path it was written to, so a probe can tell which
root a module came from after paths are normalised.
"""

from __future__ import annotations

import functools
import importlib.util
import marshal
import os
import re
from dataclasses import dataclass
from importlib.machinery import BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES
from pathlib import Path
from typing import Union

from hypothesis import strategies as st

from tests.builders import Tree, make_root, write_tree

__all__ = [
    "DIST_BASES",
    "EP_GROUPS",
    "MARK_TAG",
    "SUB_NAMES",
    "TOP_NAMES",
    "Dist",
    "Module",
    "Package",
    "RootSpec",
    "Scenario",
    "canonical",
    "dist_spellings",
    "module_names",
    "node_kind",
    "scenarios",
    "write_scenario",
]

TOP_NAMES = ("alpha", "beta", "gamma")
SUB_NAMES = ("a", "b", "c")
MAX_DEPTH = 3  # alpha/a/b/c.py at most
DIST_BASES = ("vsp-foo-bar", "vsp-baz", "vsp-qux")
VERSIONS = ("1.0", "2.0.post1", "0.1a1")
EP_GROUPS = ("vsp.plugins", "vsp.hooks")
EP_NAMES = ("one", "two")
MARK_TAG = b"\0VSITE-MARK:"  # ends an extension module's bytes: the marker follows

FILE_SUFFIXES = (*SOURCE_SUFFIXES, *BYTECODE_SUFFIXES, *EXTENSION_SUFFIXES)
_PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


@dataclass(frozen=True)
class Module:
    """A module file ``name + suffix``: source, bytecode or extension module."""

    suffix: str


@dataclass(frozen=True)
class Package:
    """A directory: regular package (``init`` is its ``__init__`` suffix) or namespace."""

    init: str | None
    children: tuple[tuple[str, Node], ...]
    pkgutil: bool = False  # a source __init__ that calls pkgutil.extend_path


Node = Union[Module, Package]


@dataclass(frozen=True)
class Dist:
    """The distribution a root installs; ``name`` is one spelling of a DIST_BASES name."""

    name: str
    version: str
    entry_points: tuple[tuple[str, str, str], ...]  # (group, name, "module:attr")


@dataclass(frozen=True)
class RootSpec:
    tree: tuple[tuple[str, Node], ...]
    dist: Dist | None


Scenario = tuple[RootSpec, ...]


# -- strategies ------------------------------------------------------------------------


@functools.cache  # one strategy object per argument: building them costs
def _file_sets(native: bool) -> st.SearchStrategy[tuple[str, ...]]:
    """Per name and directory: no file, one source file, or one or two files of any
    suffix (extension modules only in ``native`` scenarios) in one root."""
    known = FILE_SUFFIXES if native else (*SOURCE_SUFFIXES, *BYTECODE_SUFFIXES)
    return st.one_of(
        st.just(()),
        st.just((".py",)),
        st.lists(st.sampled_from(known), min_size=1, max_size=2, unique=True).map(tuple),
    )


@st.composite
def _directory(draw: st.DrawFn, depth: int, native: bool) -> tuple[tuple[str, Node], ...]:
    """One directory's entries: per pool name, module files and/or a subdirectory."""
    entries: list[tuple[str, Node]] = []
    for name in TOP_NAMES if depth == 0 else SUB_NAMES:
        entries.extend((name, Module(suffix)) for suffix in draw(_file_sets(native)))
        package = draw(_maybe_package(depth, native))
        if package is not None:
            entries.append((name, package))
    return tuple(entries)


@functools.cache
def _maybe_package(depth: int, native: bool) -> st.SearchStrategy[Package | None]:
    """A directory one time in two: regular package (any __init__ suffix) or namespace."""
    children = st.just(()) if depth + 1 >= MAX_DEPTH else _directory(depth + 1, native)
    init_suffixes = FILE_SUFFIXES if native else (*SOURCE_SUFFIXES, *BYTECODE_SUFFIXES)
    packages = st.builds(
        lambda init, children, pkgutil: Package(init, children, pkgutil and init == ".py"),
        st.one_of(st.none(), st.just(".py"), st.sampled_from(init_suffixes)),
        children,
        st.booleans(),
    )
    return st.one_of(st.none(), packages)


@st.composite
def dist_spellings(draw: st.DrawFn, base: str | None = None) -> str:
    """``base`` (default: one of DIST_BASES) spelt with random case and separator runs."""
    words = (base or draw(st.sampled_from(DIST_BASES))).split("-")
    cased = [draw(st.sampled_from((w, w.upper(), w.title()))) for w in words]
    text = cased[0]
    for word in cased[1:]:
        text += draw(st.sampled_from(("-", "_", ".", "__", "-_.", "._"))) + word
    return text


_ep_values = st.one_of(
    st.none(),
    st.none(),
    st.builds("{}.{}:MARK".format, st.sampled_from(TOP_NAMES), st.sampled_from(SUB_NAMES)),
)


@st.composite
def _entry_points(draw: st.DrawFn) -> tuple[tuple[str, str, str], ...]:
    found = []
    for group in EP_GROUPS:
        for name in EP_NAMES:
            value = draw(_ep_values)
            if value is not None:
                found.append((group, name, value))
    return tuple(found)


dists = st.builds(Dist, dist_spellings(), st.sampled_from(VERSIONS), _entry_points())

_root_dists = st.one_of(st.none(), dists, dists, dists)


@st.composite
def scenarios(draw: st.DrawFn, max_roots: int = 4) -> Scenario:
    """Manifests of 2 to ``max_roots`` roots, each a random part of one template tree.

    Drawing every root from one template makes the same relative path turn up in
    several roots at every depth: the same file (a conflict), the same directory as a
    regular package in one root and a namespace portion in another, and so on.
    """
    # Extension modules in one scenario in five or so: a top-level name holding one is
    # staged into the native farm, which would otherwise hide most multi-root unions.
    native = draw(st.integers(0, 3)) == 3
    template = draw(_directory(0, native))
    # A list shrinks by dropping any root. At least two: hypothesis favours the minimum
    # size, and a root may still come out empty (the one-directory cases).
    return tuple(draw(st.lists(_root_from(template), min_size=2, max_size=max_roots)))


@st.composite
def _root_from(draw: st.DrawFn, template: tuple[tuple[str, Node], ...]) -> RootSpec:
    return RootSpec(_vary(draw, template), draw(_root_dists))


# Two entries in three are kept (shrinking drops them: 0 is hypothesis' simplest value).
_keep = st.integers(0, 2)


def _vary(draw: st.DrawFn, entries: tuple[tuple[str, Node], ...]) -> tuple[tuple[str, Node], ...]:
    """Some of ``entries``; a directory kept may change between package and namespace."""
    kept = []
    for name, node in entries:
        if not draw(_keep):
            continue
        if isinstance(node, Package):
            init = draw(st.sampled_from((node.init, None, ".py")))
            node = Package(init, _vary(draw, node.children), node.pkgutil and init == ".py")
        kept.append((name, node))
    return tuple(kept)


# -- on disk -----------------------------------------------------------------------------


def write_scenario(scenario: Scenario, base: Path, extensions: dict[str, bytes]) -> list[Path]:
    """Write each root as ``base/r<N>``; return the root paths in manifest order.

    ``extensions`` maps a module's last name component to a compiled extension module
    of that name (its ``PyInit_``), for every name an extension suffix may be drawn for:
    an extension module is never replaced by source (the ``extensions`` fixture skips
    the property where no compiler or Python headers are).
    """
    paths = []
    for number, root in enumerate(scenario):
        name = f"r{number}"
        tree = _tree(root.tree, f"r{number}:", "", extensions)
        if root.dist is None:
            paths.append(write_tree(base / name, tree))
            continue
        groups: dict[str, dict[str, str]] = {}
        for group, key, value in root.dist.entry_points:
            groups.setdefault(group, {})[key] = value
        paths.append(
            make_root(
                base,
                name,
                tree,
                dist=root.dist.name,
                version=root.dist.version,
                entry_points=groups,
            )
        )
    return paths


def _tree(
    entries: tuple[tuple[str, Node], ...], mark: str, rel: str, extensions: dict[str, bytes]
) -> dict[str, str | bytes | Tree]:
    tree: dict[str, str | bytes | Tree] = {}
    for name, node in entries:
        if isinstance(node, Module):
            filename = name + node.suffix
            tree[filename] = _module_file(name, filename, mark + rel + filename, extensions)
            continue
        sub = _tree(node.children, mark, f"{rel}{name}/", extensions)
        if node.init is not None:
            filename = "__init__" + node.init
            extra = _PKGUTIL_INIT if node.pkgutil else ""
            sub[filename] = _module_file(
                name, filename, f"{mark}{rel}{name}/{filename}", extensions, extra
            )
        tree[name] = sub
    return tree


def _module_file(
    modname: str, filename: str, mark: str, extensions: dict[str, bytes], extra: str = ""
) -> str | bytes:
    """Source text, bytecode or extension bytes of a module that carries ``mark``."""
    source = f"MARK = {mark!r}\n{extra}"
    if filename.endswith(tuple(SOURCE_SUFFIXES)):
        return source
    if filename.endswith(tuple(BYTECODE_SUFFIXES)):
        code = compile(source, filename, "exec")
        # A sourceless .pyc: magic, flags (0: timestamp-based), mtime and size (unchecked
        # without a source), then the code object.
        return importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)
    # An extension module: ELF ignores bytes past its sections, so the marker rides along.
    if modname not in extensions:
        raise ValueError(f"no compiled extension module {modname!r} for {filename}")
    return extensions[modname] + MARK_TAG + mark.encode() + b"\0"


def module_names(roots: list[Path]) -> list[str]:
    """Every dotted module name the roots' trees hold (files and directories), sorted."""
    found: set[str] = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            rel = Path(dirpath).relative_to(root).parts
            dirnames[:] = [d for d in dirnames if d.isidentifier()]
            if rel:
                found.add(".".join(rel))
            for filename in filenames:
                stem = _strip_suffix(filename)
                if stem is not None and stem != "__init__":
                    found.add(".".join((*rel, stem)))
    return sorted(found)


def _strip_suffix(filename: str) -> str | None:
    for suffix in sorted(FILE_SUFFIXES, key=len, reverse=True):
        if filename.endswith(suffix) and filename[: -len(suffix)].isidentifier():
            return filename[: -len(suffix)]
    return None


def canonical(name: str) -> str:
    """PEP 503 normalisation, from its regex (the reference the properties check against)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def node_kind(node: Node) -> str:
    """ "module", "package" or "namespace"."""
    if isinstance(node, Module):
        return "module"
    return "namespace" if node.init is None else "package"
