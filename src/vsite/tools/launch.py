"""``vsite exec``: the environment a COMMAND runs in with the site active.

Two mechanisms, both set up here, so every Python the command starts has the site:

- the environment shell (:mod:`vsite.tools.shell`) of the manifest goes first on
  ``PATH`` (and in ``VIRTUAL_ENV``, as ``bin/activate`` would set it): ``python``, the
  site's console scripts (``jupyter``, ``pytest``...) and ``sys.executable`` of what they
  start are the shell's, isolated from the interpreter's own site-packages like a venv;
- ``VSITE_MANIFEST`` + vsite's boot directory on ``PYTHONPATH`` for any other Python the
  command names by path. Those boot the site from ``sitecustomize``, after their own
  ``site`` ran: their site-packages stay visible, after the site's (what in-process
  activation does too), and ``-I``/``-E``/``-S`` skip the boot (see
  :func:`isolating_option`). ``VSITE_SINCE`` keeps a venv created inside the site from
  booting it (:mod:`vsite._startup`).

A nested ``vsite exec`` of another manifest replaces the outer site: its shell replaces
the outer one on ``PATH`` and its manifest the outer one in ``VSITE_MANIFEST``.
"""

from __future__ import annotations

import os
import time

from vsite._startup import ENV_MANIFEST, ENV_SINCE, boot_pythonpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vsite.index import SiteIndex

__all__ = ["exec_environment", "isolating_option"]

# Interpreter options that take a value, attached or as the next argument.
_VALUE_OPTIONS = "WX"
#: What each option that keeps the boot hook from running does.
OUTSIDE = {
    "I": "isolated mode ignores PYTHONPATH",
    "E": "ignores PYTHON* environment variables",
    "S": "does not import site",
}


def exec_environment(
    manifest: str, environ: dict[str, str], *, system_site: bool = False
) -> dict[str, str]:
    """The environment for ``vsite exec MANIFEST``'s COMMAND, from ``environ``.

    Validates the manifest (VsiteError for an unusable one, before anything runs) and
    builds or verifies its persistent index and farm, so the first child starts warm:
    no cold build's modules (json, hashlib...) in the program's process.
    """
    from vsite.index_cache import load_or_build
    from vsite.tools.shell import exec_shell, is_vsite_shell

    index = load_or_build(os.path.abspath(manifest))
    if not _farm_made(index):
        warm_farm(index)
    source = index.source
    system_site = system_site or index.system_site_packages
    shell = exec_shell(index, system_site=system_site)
    env = dict(environ)
    outer = env.get("VIRTUAL_ENV")
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    if outer and is_vsite_shell(outer):  # a nested exec replaces the outer site
        path = [p for p in path if os.path.abspath(p) != os.path.join(outer, "bin")]
    env["PATH"] = os.pathsep.join([os.path.join(shell, "bin"), *path])
    env["VIRTUAL_ENV"] = shell
    env.pop("PYTHONHOME", None)  # as bin/activate does: it would override pyvenv.cfg
    env[ENV_MANIFEST] = source
    env[ENV_SINCE] = str(time.time_ns())
    env["PYTHONPATH"] = boot_pythonpath(env.get("PYTHONPATH"))
    return env


def warm_farm(index: SiteIndex) -> None:
    """Make (or verify) the site's farm before a process starts with the site (``vsite
    install``, ``vsite env``): its first start then finds it ready, and tools that read
    the site's entry before any start (editors given the environment) see the view."""
    from vsite.activation import farm_for

    try:
        farm_for(index, None)
    except OSError:  # no safe per-user directory (a FarmError): the start says so
        pass


def _farm_made(index: SiteIndex) -> bool:
    """Whether the farm of the index's saved plan is there (its marker holds its key):
    then the child checks and holds it, and this launch loads none of the activation
    (~1 ms of every exec). Anything else is left to :func:`warm_farm`."""
    from vsite._farm_lock import links_intact, resolves, saved_farm_key

    key = saved_farm_key(index.plans.get("symlink"))
    if key is None or os.environ.get("VSITE_LINK_MODE"):
        return False
    from vsite._paths import state_dir

    try:
        farm = os.path.join(state_dir("farms"), key)
    except OSError:  # no safe directory for one: warm_farm's case
        return False
    return links_intact(farm, key, (), (), resolves)  # the marker only


def isolating_option(command: list[str]) -> str | None:
    """The first of ``-I``/``-E``/``-S`` given to a ``python*`` COMMAND named by path.

    Only ``-S`` keeps the shell's own ``python`` (found on ``PATH``) out of the site, as
    it keeps a venv's python out of its site-packages.
    """
    if not os.path.basename(command[0]).startswith("python"):
        return None
    args = iter(command[1:])
    for arg in args:
        if arg == "--" or arg == "-" or not arg.startswith("-"):
            return None  # a script (or stdin) follows: the rest are its arguments
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                next(args, None)
            continue
        for position, flag in enumerate(arg[1:], start=2):
            if flag in OUTSIDE:
                return flag
            if flag in "cm":
                return None  # code or a module name, then its arguments
            if flag in _VALUE_OPTIONS:
                if position == len(arg):
                    next(args, None)
                break
    return None
