"""Interpreter start-up activation: from the environment (``vsite exec``) or a shell.

On the boot path: imports nothing beyond what activation itself needs.

``vsite exec`` exports ``VSITE_MANIFEST`` and ``VSITE_SINCE`` (when it started, in ns
since the epoch): every Python it starts boots the site, except one running in a
virtual environment created after that moment (``python -m venv nv`` inside the site:
a venv made inside a venv sees nothing of the outer one, and neither does this one).
An environment shell's own ``python`` boots its manifest from its ``.pth`` first, and
keeps it: the front door wins over an inherited ``VSITE_MANIFEST``.
"""

import os
import sys

__all__ = [
    "BOOT_DIR",
    "ENV_MANIFEST",
    "ENV_SINCE",
    "activate_from_environment",
    "activate_from_shell",
    "boot_pythonpath",
]

ENV_MANIFEST = "VSITE_MANIFEST"
ENV_SINCE = "VSITE_SINCE"
BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")

#: The manifest this process's environment shell activated at start-up, if any.
shell_manifest: "str | None" = None
#: The modules of vsite this start read from the boot bundle (see ``_vsite_boot``).
bundled: "tuple[str, ...]" = ()


def activate_from_environment() -> None:
    """Activate ``$VSITE_MANIFEST`` if set; on failure, say why on stderr and exit 2.

    Carrying on without the site would run the program against the wrong packages,
    so a manifest that cannot be activated stops the interpreter, with one line on
    stderr and no traceback, before the program's first line runs.
    """
    manifest = os.environ.get(ENV_MANIFEST)
    if not manifest or _venv_made_inside_the_site():
        return
    if shell_manifest is not None:
        return  # this is an environment shell's python: its own site stays
    _activate(manifest)


def activate_from_shell(
    manifest: str, site_packages: "str | None" = None, *, held: bool = False
) -> None:
    """Activate an environment shell's manifest (its ``.pth`` in ``site_packages``, the
    environment's own, which ranks first); exit 2 on failure. ``held``: hold the shell
    (``sys.prefix``) for this process's life, as a farm is held."""
    global shell_manifest
    _activate(manifest, overlay=site_packages)
    shell_manifest = manifest
    if held:
        from vsite._farm_lock import hold

        hold(sys.prefix)


def _activate(manifest: str, overlay: "str | None" = None) -> None:
    from vsite.activation import activate_with_overlay

    try:
        activate_with_overlay(manifest, link=None, overlay=overlay)
    except Exception as exc:
        from vsite.errors import VsiteError, one_line  # only now: a start has no error

        if not isinstance(exc, VsiteError):
            raise
        sys.stderr.write(f"vsite: error: cannot activate the virtual site: {one_line(exc)}\n")
        sys.stderr.flush()
        os._exit(2)


def _venv_made_inside_the_site() -> bool:
    """Whether this interpreter runs in a venv created after ``vsite exec`` started."""
    if sys.prefix == sys.base_prefix:
        return False
    since = os.environ.get(ENV_SINCE, "")
    if not since.isdigit():
        return False
    try:
        made = os.stat(os.path.join(sys.prefix, "pyvenv.cfg")).st_mtime_ns
    except OSError:
        return False
    return made >= int(since)


def boot_pythonpath(previous: "str | None") -> str:
    """``PYTHONPATH`` with the boot directory first, once (nested ``vsite exec``)."""
    if not previous:
        return BOOT_DIR
    rest = [entry for entry in previous.split(os.pathsep) if entry != BOOT_DIR]
    return os.pathsep.join([BOOT_DIR, *rest]) if rest else BOOT_DIR
