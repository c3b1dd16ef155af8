"""Run the site's ``.pth`` files in site order with the running interpreter's rules.

Each file goes through ``site.addpackage`` itself, so comment/blank lines, ``import``
lines executed in a frame whose local ``sitedir`` is the file's root, relative path
lines, stderr error reports and the hidden-file check are exactly the interpreter's.
The one rule that lives in ``site.addsitedir`` instead (skipping dot-files) is applied
here per interpreter release, as it changed in patch releases.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["run_pth_files", "skips_dot_files"]

# gh-113659: addsitedir skips ".*.pth" from these patch releases on (3.13.0 onward).
_DOT_FILTER_SINCE = {(3, 8): 19, (3, 9): 19, (3, 10): 14, (3, 11): 8, (3, 12): 2}


def skips_dot_files(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> bool:
    """Whether this interpreter's ``site.addsitedir`` ignores ``.pth`` files named ``.*``."""
    since = _DOT_FILTER_SINCE.get((version[0], version[1]))
    if since is None:
        return version[:2] >= (3, 13)
    return version[2] >= since


def run_pth_files(pth: Sequence[tuple[str, str]]) -> None:
    """Process ``(file name, root)`` pairs, already in site order, like ``addsitedir``."""
    if not pth:
        return
    import site

    known_paths = _known_paths(site)
    skip_dots = skips_dot_files()
    for name, root in pth:
        if skip_dots and name.startswith("."):
            continue
        # One shared known_paths set: N roots cost N lookups, not N re-scans of sys.path.
        site.addpackage(root, name, known_paths)


def _known_paths(site: object) -> set[str]:
    import os

    makepath = site.makepath  # type: ignore[attr-defined]
    known: set[str] = set()
    for entry in sys.path:
        try:
            if os.path.exists(entry):
                known.add(makepath(entry)[1])
        except TypeError:
            continue
    return known
