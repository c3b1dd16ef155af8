"""``vsite gc``: remove the environment shells of ``vsite exec`` that no process uses.

``vsite exec`` makes one shell per manifest content, interpreter and option under
``STATE/envs/<key>`` and reuses it; a manifest that changes (a new build, a new pin)
leaves the old shell behind. Each is a handful of small files per distribution
(launchers, data links), so without collection they pile up for good.

A shell is in use while a process holds the shared ``flock`` on its ``.vsite-lock``
(:mod:`vsite._farm_lock`, as for farms): every Python started from it holds it from its
``.pth`` for life, and the ``vsite exec`` that reuses it holds it up to the exec, after
touching the lock file's mtime. The command exec'd may be no Python (``sh -c 'sleep 9;
python ...'``): so a shell is removed only when its exclusive lock can be taken AND
its last use is at least :data:`GRACE` old (or ``--older-than``). It is renamed aside
while locked, so an exec that comes after finds it gone and makes a new one. Shells of
an older vsite, without a lock file, go once :data:`LOCKLESS_AGE` passed since they
were made. Tooling path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from vsite._farm_lock import lock_exclusive
from vsite.native.gc import collect, listing

__all__ = ["GRACE", "LOCKLESS_AGE", "collect_shells"]

#: Seconds since a shell's last use before it may go, whatever ``older_than`` says: a
#: command ``vsite exec`` started may run a while before it starts a Python from it.
GRACE = 3600.0
#: Seconds since an older vsite's shell (no lock file: nothing can hold it) was made.
LOCKLESS_AGE = 7 * 86400.0
_KEY_LENGTH = 16  # hex digits of exec_shell's key


def collect_shells(base: str | None = None, *, older_than: float = 0.0) -> list[str]:
    """Remove the exec shells under ``base`` (default: ``STATE/envs``) that no process
    holds and that were last used at least ``max(older_than, GRACE)`` seconds ago, with
    their creation locks and leftovers of interrupted removals; return what went."""
    base, names = listing(base, "envs")
    now = time.time()
    removed = []
    for name in names:
        path = os.path.join(base, name)
        if name.startswith(".gc-"):
            shutil.rmtree(path, ignore_errors=True)  # a removal cut short
        elif _is_key(name) and _collect(path, max(older_than, GRACE), now):
            removed.append(path)
    return removed


def _collect(path: str, older_than: float, now: float) -> bool:
    """Remove the shell at ``path`` as a farm is removed (:func:`vsite.native.gc.collect`:
    no process holds it, it is old enough, renamed aside while locked), and only while
    no exec is making it: under its creation lock, which then goes too."""
    creation = f"{path}.lock"  # exec_shell holds it while it makes the shell
    try:
        making = os.open(creation, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        if not lock_exclusive(making) or not collect(
            path, older_than, now, without_lock=LOCKLESS_AGE
        ):
            return False
        # Unlinked while locked: an exec waiting on it then finds no shell and makes one
        # (two such makes of one directory take turns on the shell's own lock).
        with contextlib.suppress(OSError):
            os.unlink(creation)
        return True
    finally:
        os.close(making)


def _is_key(name: str) -> bool:
    return len(name) == _KEY_LENGTH and all(c in "0123456789abcdef" for c in name)
