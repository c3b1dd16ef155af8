"""Console scripts of the site: run an entry point by name as a venv's bin/NAME would.

``vsite exec MANIFEST -- NAME ARGS`` falls back to these when no executable NAME is on
``PATH``. The entry point ``module:attr`` of the first distribution (site order) that
declares NAME in ``console_scripts`` or ``gui_scripts`` is called with ``sys.argv`` =
``[NAME, *ARGS]``, and its return value becomes the exit status, as a wheel
installer's generated script does (``sys.exit(func())``: ``None`` is 0, an int is
itself, anything else is printed to stderr and gives 1). The script runs on
:func:`interpreter`, so it sees the virtual site and that interpreter's own site, never
the environment vsite is installed in. Unlike ``bin/NAME`` there is no script file: the
current directory is not put on ``sys.path`` for it.
"""

from __future__ import annotations

import configparser
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vsite.index import SiteIndex

__all__ = ["Script", "find_script", "interpreter"]

_GROUPS = ("console_scripts", "gui_scripts")


class Script:
    """One ``console_scripts``/``gui_scripts`` entry point: ``module:attr``."""

    __slots__ = ("group", "name", "value")

    def __init__(self, name: str, value: str, group: str) -> None:
        self.name = name
        self.value = value
        self.group = group

    def runner_code(self) -> str:
        """Code for ``python -c`` that calls the entry point with argv[0] = its name."""
        module, _, attr = self.value.partition(":")
        attr = attr.split("[")[0].strip()
        return (
            "import sys, importlib\n"
            "sys.argv[:] = sys.argv[1:]\n"
            "if sys.path and sys.path[0] == '': del sys.path[0]\n"
            f"target = importlib.import_module({module.strip()!r})\n"
            f"for part in {attr!r}.split('.'):\n"
            "    target = getattr(target, part) if part else target\n"
            "sys.exit(target())\n"
        )


def find_script(index: SiteIndex, name: str) -> Script | None:
    """The first distribution (site order) that declares a script called ``name``."""
    for dist_info in index.dists.values():
        path = os.path.join(dist_info, "entry_points.txt")
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        for group in _GROUPS:
            if parser.has_option(group, name):
                return Script(name, parser.get(group, name), group)
    return None


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
    try:
        with open(os.path.join(sys.prefix, "pyvenv.cfg"), encoding="utf-8") as stream:
            for line in stream:
                key, sep, value = line.partition("=")
                if sep and key.strip().lower() == "home":
                    return value.strip()
    except OSError:
        pass
    return None
