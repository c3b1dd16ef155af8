"""Interpreter start-up activation from the environment (``VSITE_MANIFEST``).

On the boot path: imports nothing beyond what activation itself needs.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BOOT_DIR", "ENV_MANIFEST", "activate_from_environment", "boot_pythonpath"]

ENV_MANIFEST = "VSITE_MANIFEST"
BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")


def activate_from_environment() -> None:
    """Activate ``$VSITE_MANIFEST`` if set; on failure, say why on stderr and exit 2.

    Carrying on without the site would run the program against the wrong packages,
    so a manifest that cannot be activated stops the interpreter, with one line on
    stderr and no traceback, before the program's first line runs.
    """
    manifest = os.environ.get(ENV_MANIFEST)
    if not manifest:
        return
    from vsite.activation import activate
    from vsite.errors import VsiteError, one_line

    try:
        activate(manifest)
    except VsiteError as exc:
        sys.stderr.write(f"vsite: error: cannot activate the virtual site: {one_line(exc)}\n")
        sys.stderr.flush()
        os._exit(2)


def boot_pythonpath(previous: str | None) -> str:
    """``PYTHONPATH`` with the boot directory first, once (nested ``vsite exec``)."""
    if not previous:
        return BOOT_DIR
    rest = [entry for entry in previous.split(os.pathsep) if entry != BOOT_DIR]
    return os.pathsep.join([BOOT_DIR, *rest]) if rest else BOOT_DIR
