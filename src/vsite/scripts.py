"""Console scripts of the site: run an entry point by name as a venv's bin/NAME would."""

from __future__ import annotations

import configparser
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vsite.index import SiteIndex

__all__ = ["Script", "find_script"]

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
