"""Run a callback right after a module is first imported, with the stdlib loading it.

vsite adapts two modules it never imports itself: ``sysconfig`` (the roots as install
locations, :mod:`vsite.finder.install_schemes`) and pip's uninstaller (never the
site's files, :mod:`vsite.finder.pip_guard`). Importing them at start-up to patch them
would cost every process; instead :class:`AfterImport` sits first on ``sys.meta_path``
until they are imported: it finds the module's spec with the finders after it, wraps
the loader so the callback runs once the module is executed, puts the module's own
loader back, and steps aside when nothing is left to watch. Its per-import cost is one
dict lookup. Runtime path: stdlib only.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import (
        Any,
        Optional,  # local annotations: never evaluated
    )

    Callback = Callable[[ModuleType], None]

__all__ = ["AfterImport"]


class AfterImport:
    """First on ``sys.meta_path`` while some module name has a callback waiting."""

    def __init__(self) -> None:
        self.waiting: dict[str, Callback] = {}

    def __repr__(self) -> str:
        return f"vsite.AfterImport({sorted(self.waiting)})"

    def call_after(self, name: str, callback: "Callback") -> None:
        """``callback(module)`` now if ``name`` is imported, else once it is."""
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
            return
        self.waiting[name] = callback
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        self.waiting.clear()
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        callback = self.waiting.pop(name, None)
        if callback is None:
            return None
        if not self.waiting and self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            spec: Optional[ModuleSpec] = (
                None if find_spec is None else find_spec(name, path, target)
            )
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenCall(spec.loader, callback)  # type: ignore[assignment]
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
