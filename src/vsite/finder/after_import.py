"""Run a callback right after a module is first imported, with the stdlib loading it.

vsite adapts two modules it never imports itself: ``sysconfig`` (the roots as install
locations, :mod:`vsite.finder.install_schemes`) and pip's uninstaller (never the
site's files, :mod:`vsite.finder.pip_guard`). Importing them at start-up to patch them
would cost every process; instead the site's metadata finder, which is on
``sys.meta_path`` ahead of PathFinder anyway, keeps the names waiting
(:meth:`vsite.finder.meta_finder.DistributionFinder.call_after`: one dict lookup per
import) and, when one is imported, hands it to :func:`spec_then_call` here: the
module's spec from the finders after it, its loader wrapped so the callback runs once
the module is executed, the module's own loader put back then. This module is loaded
only at that moment, not at start-up. Runtime path: stdlib only.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Optional  # local annotations: never evaluated

    Callback = Callable[[ModuleType], None]

__all__ = ["later_spec", "spec_then_call"]


def spec_then_call(
    owner: object,
    name: str,
    path: "Sequence[str] | None",
    target: "ModuleType | None",
    callback: "Callback",
) -> "ModuleSpec | None":
    """The spec of ``name`` from the meta-path finders after ``owner``, its loader set to
    call ``callback(module)`` once the module has run; None when they find nothing."""
    spec = later_spec(owner, name, path, target)
    if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
        spec.loader = _ThenCall(spec.loader, callback)  # type: ignore[assignment]
    return spec


def later_spec(
    owner: object, name: str, path: "Sequence[str] | None", target: "ModuleType | None"
) -> "ModuleSpec | None":
    """The spec the meta-path finders after ``owner`` give ``name`` (None: none does)."""
    later = False
    for finder in list(sys.meta_path):
        if not later:
            later = finder is owner
            continue
        find_spec = getattr(finder, "find_spec", None)
        spec: Optional[ModuleSpec] = None if find_spec is None else find_spec(name, path, target)
        if spec is not None:
            return spec
    return None


class _ThenCall:
    """Runs the module's own loader, puts it back on the module, then calls back."""

    def __init__(self, loader: "Any", callback: "Callback") -> None:
        self.loader = loader
        self.callback = callback

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        module: Optional[ModuleType] = self.loader.create_module(spec)
        return module

    def exec_module(self, module: "ModuleType") -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.callback(module)
