"""``vsite gc``'s part for the per-user bytecode cache: drop what no source can use.

The cache (:mod:`vsite.finder.bytecode`) mirrors each source's real directory:
``<cache>/<real dir>/<stem>.<cache tag>[.opt-N].pyc``. An entry whose source (``.py`` or
``.pyw`` in that directory) is gone can never be read again: the stdlib stats the source
before it looks at bytecode. That is what a removed store entry or a deleted checkout
leaves behind, so this removes exactly those, the temporary files of writers killed
mid-write, and the directories left empty. Bytecode of a source that still exists stays,
stale or not: the next import validates it and rewrites it.
"""

from __future__ import annotations

import os
import re
import time

from vsite._fs import remove_stale
from vsite._paths import check_private_dir
from vsite.finder.bytecode import default_cache_dir

__all__ = ["TEMP_GRACE", "CacheSweep", "collect_bytecode"]

#: Seconds a writer's temporary file is left alone: it may be being written right now.
TEMP_GRACE = 60.0

# <stem>.<tag>[.opt-N].pyc, as cache_from_source names it; the tag has no dot. The
# stem is the shortest that fits, so ``m.cpython-311.opt-1.pyc`` is m's, not a module's
# named ``m.cpython-311``.
_PYC = re.compile(r"(?P<stem>.+?)\.[^.]+(?:\.opt-[0-9]+)?\.pyc")
# write_atomic's temporaries: <target>.<pid>.<thread>.tmp
_TEMP = re.compile(r".+\.pyc\.[0-9]+\.[0-9a-f]+\.tmp")
_SOURCE_SUFFIXES = (".py", ".pyw")


class CacheSweep:
    """What :func:`collect_bytecode` did: counts, and the cache it looked at."""

    __slots__ = ("directory", "kept", "refused", "removed")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.removed = 0  # bytecode files (and stale temporaries) removed
        self.kept = 0  # bytecode files whose source exists
        self.refused: str | None = None  # why the cache was not looked at, if it was not


def collect_bytecode(directory: str | None = None, *, now: float | None = None) -> CacheSweep:
    """Remove the cached bytecode of sources that no longer exist (see the module doc).

    A cache directory that is not private (a symlink, someone else's, writable by
    others) is not walked: what is in it is not vsite's to delete.
    """
    base = os.path.abspath(directory or default_cache_dir())
    sweep = CacheSweep(base)
    try:
        check_private_dir(base)
    except FileNotFoundError:
        return sweep  # nothing was ever cached
    except OSError as exc:  # FarmError is one: refused
        sweep.refused = str(exc)
        return sweep
    now = time.time() if now is None else now
    # Bottom-up, never following links: a directory is removed once emptied.
    for dirpath, _, filenames in os.walk(base, topdown=False):
        source_dir = os.sep + os.path.relpath(dirpath, base) if dirpath != base else os.sep
        for name in filenames:
            path = os.path.join(dirpath, name)
            if _TEMP.fullmatch(name):
                if remove_stale(path, TEMP_GRACE, now):
                    sweep.removed += 1
                continue
            match = _PYC.fullmatch(name)
            if match is None:
                continue  # not the cache's: left alone
            stem = os.path.join(source_dir, match["stem"])
            if any(os.path.exists(stem + suffix) for suffix in _SOURCE_SUFFIXES):
                sweep.kept += 1
            elif _unlink(path):
                sweep.removed += 1
        if dirpath != base:
            try:
                os.rmdir(dirpath)  # only when empty
            except OSError:
                pass
    return sweep


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:  # gone already (another gc got there first), or not ours to remove
        return False
    return True
