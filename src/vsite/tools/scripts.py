"""Console scripts of the site, and the interpreter an environment shell is made on.

The environment shell (:mod:`vsite.tools.shell`) writes a launcher in ``bin/`` for each
``console_scripts``/``gui_scripts`` entry point listed here: the first distribution (site
order) that declares a name wins it, as the first root wins a file. The shell runs on
:func:`interpreter`, never on the environment vsite itself is installed in.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from vsite.index import SiteIndex

__all__ = ["Script", "console_scripts", "interpreter", "venv_config"]

_GROUPS = ("console_scripts", "gui_scripts")


class Script:
    """One ``console_scripts``/``gui_scripts`` entry point: ``module:attr``."""

    __slots__ = ("group", "name", "value")

    def __init__(self, name: str, value: str, group: str) -> None:
        self.name = name
        self.value = value
        self.group = group

    def __repr__(self) -> str:
        return f"Script({self.name!r}, {self.value!r}, {self.group!r})"

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str:
        """The callable's attribute path (``a.b``), extras (``[x]``) left out."""
        return self.value.partition(":")[2].split("[")[0].strip()


def console_scripts(index: SiteIndex) -> Iterator[Script]:
    """Every script entry point of the site, distributions in site order (a name
    declared twice: the first distribution's comes first)."""
    import configparser  # re and more: not on the path of an exec that finds its shell

    for dist_info in index.dists.values():
        path = os.path.join(dist_info, "entry_points.txt")
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        for group in _GROUPS:
            if parser.has_section(group):
                for name, value in parser.items(group):
                    script = Script(name, value, group)
                    if script.module and script.attr:  # else nothing to call
                        yield script


def interpreter() -> str:
    """The Python that runs a console script: the one running vsite, minus its venv.

    In a virtual environment ``sys.executable`` would put that environment's
    site-packages (vsite's own dependencies) on the script's ``sys.path``, so the base
    interpreter the environment was created from is used instead.
    """
    if sys.prefix == sys.base_prefix:
        return sys.executable
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    names = (f"python{version}", f"python{sys.version_info[0]}", "python")
    candidates: list[str] = []
    base = getattr(sys, "_base_executable", None)  # the real base from 3.11 on
    if base:
        candidates.append(base)
    home = _venv_home()
    if home:
        candidates.extend(os.path.join(home, name) for name in names)
    candidates.extend(os.path.join(sys.base_prefix, "bin", name) for name in names)
    venv = os.path.join(os.path.abspath(sys.prefix), "")
    for candidate in candidates:
        if not os.path.abspath(candidate).startswith(venv) and os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def _venv_home() -> str | None:
    """``home`` from the running venv's pyvenv.cfg: the base interpreter's directory."""
    return venv_config(sys.prefix).get("home")


def venv_config(directory: str) -> dict[str, str]:
    """The keys (lower-cased) and values of ``directory``'s pyvenv.cfg; empty without one."""
    values: dict[str, str] = {}
    try:
        with open(os.path.join(directory, "pyvenv.cfg"), encoding="utf-8") as stream:
            for line in stream:
                key, sep, value = line.partition("=")
                if sep:
                    values[key.strip().lower()] = value.strip()
    except OSError:
        pass
    return values
