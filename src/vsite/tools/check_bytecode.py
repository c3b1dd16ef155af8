"""``vsite check``'s bytecode survey: what the roots ship for this interpreter, and how
many modules the user's cache holds for the site. Informational, never a problem.

Tooling path.
"""

from __future__ import annotations

import os
import sys
from fnmatch import fnmatchcase

from vsite.finder.bytecode import default_cache_dir, is_fresh, read_bytecode, shipped_bytecode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vsite.manifest import Root

__all__ = ["BytecodeSurvey", "survey_bytecode"]

_METADATA_DIRS = (".dist-info", ".egg-info")


class BytecodeSurvey:
    """The bytecode this interpreter finds for the site's modules.

    ``missing``: ``{"pointer", "root", "modules", "without_bytecode"}`` for each root
    that ships bytecode for this interpreter's ``cache_tag`` for not every module;
    ``cached``: the modules of the site's roots in the per-user cache at ``cache_dir``.
    Not problems: a module without bytecode is compiled once per user (into the cache of
    :mod:`vsite.finder.bytecode`), not in every process; but a site whose roots ship none
    starts slower the first time, and ``vsite install`` would have compiled them.
    """

    __slots__ = ("cache_dir", "cache_tag", "cached", "missing")

    def __init__(self, cache_tag: str | None, cache_dir: str) -> None:
        self.cache_tag = cache_tag
        self.cache_dir = cache_dir
        self.missing: list[dict[str, str | int]] = []
        self.cached = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "cache_tag": self.cache_tag,
            "missing": self.missing,
            "user_cache": {"path": self.cache_dir, "modules": self.cached},
        }

    def lines(self) -> list[str]:
        """Human output: nothing when there is nothing to say."""
        lines = []
        if self.missing:
            lines.append(f"roots without {self.cache_tag} bytecode ({len(self.missing)}):")
            lines.extend(
                f"  {entry['pointer']}: {entry['without_bytecode']} of {entry['modules']} "
                f"modules (root {entry['root']})"
                for entry in self.missing
            )
        if self.missing or self.cached:
            lines.append(f"modules in the user bytecode cache: {self.cached} ({self.cache_dir})")
        return lines


def survey_bytecode(roots: list[Root]) -> BytecodeSurvey:
    """What bytecode ``roots`` ship for this interpreter, and what the user cache holds."""
    tag = sys.implementation.cache_tag
    survey = BytecodeSurvey(tag, default_cache_dir())
    for root in roots if tag is not None else ():
        modules, without = _shipped(root.path, tag)
        if without:
            survey.missing.append(
                {
                    "pointer": root.pointer,
                    "root": root.path,
                    "modules": modules,
                    "without_bytecode": without,
                }
            )
        # The cache mirrors each source's real path under its own directory.
        survey.cached += _cached(survey.cache_dir + os.path.realpath(root.path), tag)
    return survey


def _shipped(root: str, tag: str) -> tuple[int, int]:
    """How many modules ``root`` has, and how many of those lack bytecode for ``tag``."""
    modules = without = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.endswith(_METADATA_DIRS)]
        for name in filenames:
            if name.endswith(".py"):
                modules += 1
                source = os.path.join(dirpath, name)
                if not _usable(shipped_bytecode(source, tag), source):
                    without += 1
    return modules, without


def _cached(directory: str, tag: str) -> int:
    """The ``*.{tag}*.pyc`` files under ``directory`` (a root's part of the user cache)."""
    pattern = f"*.{tag}*.pyc"
    return sum(
        fnmatchcase(name, pattern) for _, _, filenames in os.walk(directory) for name in filenames
    )


def _usable(pyc: str, source: str) -> bool:
    """Whether the import system would take ``pyc`` for ``source`` (the runtime's test)."""
    data = read_bytecode(pyc)
    return data is not None and is_fresh(data, source)
