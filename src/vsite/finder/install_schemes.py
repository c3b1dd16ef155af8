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
import it): activation registers the schemes when it is first imported
(:mod:`vsite.finder.after_import`, from the metadata finder). Runtime path: stdlib only.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

__all__ = ["register_schemes", "scheme_paths", "unregister_schemes"]

_PREFIX = f"{os.name}_vsite_"
_VSITE_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scheme_paths(roots: Sequence[str]) -> list[str]:
    """The directories to register for ``roots``: one per root, one per vsite store.

    No system call: at thousands of roots a ``realpath`` each would cost more than the
    rest of a start (coverage resolves the paths it is given itself). A store's roots
    are recognised by their shape, ``.../wheels/<sha256>/site-packages``.
    """
    from vsite.store_holds import store_entry

    paths: list[str] = []
    seen: set[str] = set()
    for root in roots:
        entry = store_entry(root)
        if entry is not None:
            root = os.path.dirname(entry)  # STORE/wheels: roots only
        if root not in seen:
            seen.add(root)
            paths.append(root)
    return paths


def register_schemes(module: ModuleType, roots: Sequence[str]) -> None:
    """Add a scheme per directory of :func:`scheme_paths` (and vsite's own package) to
    ``module`` (``sysconfig``)."""
    schemes = getattr(module, "_INSTALL_SCHEMES", None)
    default = _default_scheme(module)
    if not isinstance(schemes, dict) or default not in schemes:
        return  # another sysconfig than CPython's: nothing to add to
    # vsite's own package too: its finder runs inside the program's imports and, where
    # vsite is installed (another venv, a checkout), is no install location either.
    paths = [*scheme_paths(roots), _VSITE_PACKAGE]
    for number, path in enumerate(paths):
        scheme = dict(schemes[default])
        literal = path.replace("{", "{{").replace("}", "}}")  # paths are templates
        scheme["purelib"] = scheme["platlib"] = literal
        schemes[f"{_PREFIX}{number}"] = scheme


def unregister_schemes() -> None:
    schemes = getattr(sys.modules.get("sysconfig"), "_INSTALL_SCHEMES", None)
    if isinstance(schemes, dict):
        for name in [n for n in schemes if isinstance(n, str) and n.startswith(_PREFIX)]:
            del schemes[name]


def _default_scheme(module: ModuleType) -> str | None:
    for name in ("get_default_scheme", "_get_default_scheme"):  # 3.10+, 3.9
        function = getattr(module, name, None)
        if function is not None:
            try:
                return str(function())
            except Exception:
                return None
    return None
