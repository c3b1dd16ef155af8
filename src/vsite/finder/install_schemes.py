"""The site's roots as install locations, where tools ask ``sysconfig`` for them.

Tools tell library code from the user's own by location: coverage (no ``--source``)
skips files under any ``sysconfig`` install scheme's ``purelib``/``platlib`` (of every
scheme name), after ``os.path.realpath``; debuggers' "just my code" skips files under
``site.getsitepackages()`` (see :mod:`vsite.activation`). In a venv every package file
is under those; in a site, the files are in the roots (and the farm, whose links
resolve into the roots), so each root is registered as one more scheme,
``<os.name>_vsite_<n>``, a copy of the default scheme with those two paths changed
(``stdlib`` and the rest stay, so nothing else moves). Roots of a vsite store share one
scheme: the store's ``wheels/`` directory holds nothing but roots. vsite's own package
gets one too: its finder's frames are not the user's code either.

``sysconfig`` is not imported for this (it costs ~0.7 ms, and most programs never
import it): when it is not imported yet, a one-shot finder first on ``sys.meta_path``
waits for it, lets the stdlib's own loader run it, registers the schemes and steps
aside. Runtime path: stdlib only.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

__all__ = ["SchemeRegistration", "scheme_paths"]

_PREFIX = f"{os.name}_vsite_"
_VSITE_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scheme_paths(roots: Sequence[str]) -> list[str]:
    """The directories to register for ``roots``: one per root, one per vsite store.

    No system call: at thousands of roots a ``realpath`` each would cost more than the
    rest of a start (coverage resolves the paths it is given itself). A store's roots
    are recognised by their shape, ``.../wheels/<sha256>/site-packages``.
    """
    paths: list[str] = []
    seen: set[str] = set()
    for root in roots:
        wheel, name = os.path.split(root)
        wheels, digest = os.path.split(wheel)
        if name == "site-packages" and len(digest) == 64 and os.path.basename(wheels) == "wheels":
            root = wheels  # STORE/wheels: roots only
        if root not in seen:
            seen.add(root)
            paths.append(root)
    return paths


class SchemeRegistration:
    """Schemes for ``roots`` in ``sysconfig``, now or when it is first imported."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = roots
        self.watch: _SysconfigWatch | None = None

    def install(self) -> None:
        module = sys.modules.get("sysconfig")
        if module is not None:
            self._register(module)
        else:
            self.watch = _SysconfigWatch(self._register)
            sys.meta_path.insert(0, self.watch)

    def uninstall(self) -> None:
        if self.watch is not None and self.watch in sys.meta_path:
            sys.meta_path.remove(self.watch)
        self.watch = None
        schemes = getattr(sys.modules.get("sysconfig"), "_INSTALL_SCHEMES", None)
        if isinstance(schemes, dict):
            for name in [n for n in schemes if isinstance(n, str) and n.startswith(_PREFIX)]:
                del schemes[name]

    def _register(self, module: ModuleType) -> None:
        schemes = getattr(module, "_INSTALL_SCHEMES", None)
        default = _default_scheme(module)
        if not isinstance(schemes, dict) or default not in schemes:
            return  # another sysconfig than CPython's: nothing to add to
        # vsite's own package too: its finder runs inside the program's imports and, where
        # vsite is installed (another venv, a checkout), is no install location either.
        paths = [*scheme_paths(self.roots), _VSITE_PACKAGE]
        for number, path in enumerate(paths):
            scheme = dict(schemes[default])
            literal = path.replace("{", "{{").replace("}", "}}")  # paths are templates
            scheme["purelib"] = scheme["platlib"] = literal
            schemes[f"{_PREFIX}{number}"] = scheme


def _default_scheme(module: ModuleType) -> str | None:
    for name in ("get_default_scheme", "_get_default_scheme"):  # 3.10+, 3.9
        function = getattr(module, name, None)
        if function is not None:
            try:
                return str(function())
            except Exception:
                return None
    return None


class _SysconfigWatch:
    """First on ``sys.meta_path`` until ``sysconfig`` is imported: then calls back."""

    def __init__(self, callback: Callable[[ModuleType], None]) -> None:
        self.callback = callback

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "sysconfig":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot; also keeps the search below from recursing
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = None if find_spec is None else find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenRegister(spec.loader, self.callback)  # type: ignore[assignment]
                return spec
        return None


class _ThenRegister:
    """Runs the stdlib's loader, puts it back on the module, then registers."""

    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.callback = callback

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.callback(module)
