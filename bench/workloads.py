"""What the layout children run (``probes/workload.py``), and under which layout.

A workload maker turns a tree into the probe's arguments and the check value every
layout must report (the probe documents each workload).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from context import Context
from spawn import Child, probe
from trees import EP_GROUP, NAMESPACE, Tree, has_entry_point, package_name, venv_python

__all__ = ["LAYOUTS", "WORKLOADS", "exec_child", "layout_child", "spread"]

#: flat: the union in one site-packages; naive: every root on sys.path (a .pth);
#: boot: vsite's boot path (what ``vsite exec`` sets up); boot-immutable: the same with
#: the tree's immutable manifest (roots never statted at start); api: ``vsite.activate()``.
LAYOUTS = ("flat", "naive", "boot", "boot-immutable", "api")


def layout_child(
    layout: str, tree: Tree, ctx: Context, args: list[str], manifest: Path | None = None
) -> Child:
    """The probe running workload ``args`` under ``layout`` for ``tree`` (or a manifest)."""
    env = dict(ctx.env)
    if manifest is None:
        immutable = layout == "boot-immutable"
        manifest = tree.immutable_manifest if immutable else tree.manifest
    if layout == "flat":
        python = venv_python(tree.flat_venv)
    elif layout == "naive":
        python = venv_python(tree.naive_venv)
    elif layout in ("boot", "boot-immutable", "boot-cold"):
        python = venv_python(ctx.empty)
        env["VSITE_MANIFEST"] = str(manifest)
        env["PYTHONPATH"] = str(ctx.boot_dir)
    elif layout == "api":
        python = venv_python(ctx.empty)
        env["PYTHONPATH"] = str(ctx.src)
        args = ["--activate", str(manifest), *args]
    else:
        raise ValueError(layout)
    return Child(probe(python, "workload", *args), env, fresh_state=layout == "boot-cold")


def exec_child(tree: Tree, ctx: Context) -> Child:
    """``vsite exec M -- python workload.py start``: the launcher's cost on top."""
    command = probe(ctx.empty_python, "workload", "start")
    return Child([*ctx.vsite_cli, "exec", str(tree.manifest), "--", *command], ctx.cli_env)


# -- workloads -------------------------------------------------------------------------


def spread(n: int, k: int) -> list[int]:
    """``min(n, k)`` indexes spread evenly over ``range(n)``."""
    k = min(n, k)
    return [i * n // k for i in range(k)]


Workload = tuple[list[str], str]  # the probe's argv after its name, the expected check


def _start(tree: Tree) -> Workload:
    return ["start"], "0"


def _imports(tree: Tree) -> Workload:
    chosen = spread(tree.n, 50)
    return ["imports", *map(package_name, chosen)], repr(sum(chosen))


def _failed(tree: Tree) -> Workload:
    return ["failed"], "200"


def _metadata(tree: Tree) -> Workload:
    pins = [f"bench-dist-{i:04d}==1.0.{i}" for i in spread(tree.n, 50)]
    expected = (len(pins), sum(1 for i in range(tree.n) if has_entry_point(i)))
    return ["metadata", EP_GROUP, *pins], repr(expected)


def _namespace(tree: Tree) -> Workload:
    portions = tree.namespace_portions
    expected = sum(int(p.rsplit("_", 1)[1]) for p in portions)
    return ["namespace", NAMESPACE, *portions], repr(expected)


#: name -> (description, maker(tree) -> (probe arguments, expected check repr))
WORKLOADS: dict[str, tuple[str, Callable[[Tree], Workload]]] = {
    "imports": ("start + import 50 packages (200 modules)", _imports),
    "failed": ("start + 200 failed imports", _failed),
    "metadata": ("start + 50 metadata.version() + entry_points(group=)", _metadata),
    "start": ("start only", _start),
    "namespace": ("start + import every portion of a namespace package", _namespace),
}
