"""The environment shell: a venv-shaped directory whose site-packages is vsite's site.

To the tools that inspect their environment (pip, jupyter, coverage, debuggers, editors,
``python -m venv``), a site must look like a venv created without system site packages
that holds the manifest's distributions. The shell gives them one, made with the
stdlib's own :class:`venv.EnvBuilder` (no pip)::

    DIR/pyvenv.cfg        home, include-system-site-packages, version (+ vsite-manifest)
    DIR/bin/python*       links to the interpreter, as a venv's; bin/activate* the same
    DIR/lib/pythonX.Y/site-packages/_vsite.pth
                          one line: boots the site while ``site`` reads this directory,
                          before any later .pth or sitecustomize
    DIR/bin/NAME          a launcher per console_scripts/gui_scripts entry point
    DIR/share/..., DIR/etc/..., DIR/include/site/pythonX.Y/NAME
                          links to the wheels' data and headers

CPython's venv start-up then does the rest: ``sys.prefix`` is DIR, the interpreter's own
site-packages and the user site stay out (unless ``system_site``), ``sys.executable``
is ``DIR/bin/python`` so children started with ``env={}``, ``-E`` or ``-I`` keep the
site, and ``pip install -e .`` of the user's project lands in the real, empty
site-packages. The packages themselves are never copied or linked: the import hook
resolves them from the roots.

Data files: a root named ``site-packages`` whose parent also holds ``data/``,
``include/`` or ``bin/`` (a store entry; rules_python's wheel repositories too) has them
as its wheel's data, headers and scripts schemes. Data merges under DIR as one
directory would hold it (first root wins a file; a whole directory is one link when a
single root has it). Launchers are written from entry points, never copied from a
root's ``bin/`` (those name the Python that unpacked the wheel); other scripts are
copied with a ``#!python`` shebang pointed at DIR's python, else linked.

Tooling path: stdlib only, like the CLI around it.
"""

from __future__ import annotations

import os
import sys

from vsite.tools.scripts import Script, console_scripts, interpreter, venv_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vsite.index import SiteIndex

__all__ = [
    "BOOT_PTH",
    "MANIFEST_KEY",
    "exec_shell",
    "is_shell_of",
    "is_vsite_shell",
    "make_shell",
]

BOOT_PTH = "_vsite.pth"
MANIFEST_KEY = "vsite-manifest"
#: What this module wrote into a shell besides EnvBuilder's own files (removed first
#: when the shell is made again, so a script or data file that left the site goes too).
_RECORD = ".vsite-env.json"
#: The manifest a complete shell was made for: written last, removed first.
_MADE_FOR = ".vsite-env-manifest"
#: Held while the shell is made: concurrent makes of one DIR take turns.
_LOCK = ".vsite-env.lock"
#: Bumped when the shell's layout changes: exec's cached shells are made again.
#: 3: exec's shells hold a lock file (``vsite gc`` removes those no process uses).
_FORMAT = 3


def _create_venv(target: str, executable: str, *, system_site: bool) -> None:
    """``python -m venv --without-pip`` of ``executable`` (not necessarily the running
    interpreter: vsite may itself run in a venv) at ``target``; an existing one is
    brought up to date, its site-packages kept."""
    import venv  # logging, subprocess, sysconfig...: only when a shell is made

    if TYPE_CHECKING:
        from types import SimpleNamespace
        from typing import Any

    class Builder(venv.EnvBuilder):
        def ensure_directories(self, env_dir: Any) -> SimpleNamespace:
            context = super().ensure_directories(env_dir)
            context.executable = executable
            context.python_dir, context.python_exe = os.path.split(executable)
            return context

    Builder(system_site_packages=system_site, symlinks=True, with_pip=False).create(target)


def make_shell(
    index: SiteIndex, target: str, *, system_site: bool = False, held: bool = False
) -> str:
    """Write (or bring up to date) the environment shell of ``index``'s manifest at
    ``target``; return its ``bin/python``. What the user added (``pip install -e``
    into its site-packages) stays; what an earlier make wrote is replaced.

    ``held``: every process started from it holds it (``vsite exec``'s shells, which
    ``vsite gc`` removes once none does; see :mod:`vsite.tools.shell_gc`)."""
    from vsite.errors import EnvironmentShellError  # not on exec's path: only a make's

    manifest = index.source
    if not os.path.isabs(manifest):
        raise EnvironmentShellError("an environment needs a manifest file", manifest=manifest)
    target = os.path.abspath(target)
    base = os.path.realpath(interpreter())
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, _LOCK), "a") as lock:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # two makes of one DIR: one after the other
            return _make_shell(index, target, manifest, base, version, system_site, held)
    except OSError as exc:
        raise EnvironmentShellError(
            f"cannot write the environment {target}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else ""),
            manifest=manifest,
        ) from None


def _make_shell(
    index: SiteIndex,
    target: str,
    manifest: str,
    base: str,
    version: str,
    system_site: bool,
    held: bool,
) -> str:
    import json

    _forget_earlier(target)
    _create_venv(target, base, system_site=system_site)
    _add_config(target, manifest)
    written: list[str] = []
    site_packages = _site_packages(target, version)
    boot = os.path.join(site_packages, BOOT_PTH)
    if held:  # before the boot line that holds it
        from vsite._farm_lock import LOCK

        os.close(os.open(os.path.join(target, LOCK), os.O_RDONLY | os.O_CREAT, 0o600))
    _write(boot, _boot_line(manifest, version, held=held), 0o644)
    written.append(boot)
    python = os.path.join(target, "bin", f"python{version}")
    taken = set(os.listdir(os.path.join(target, "bin")))
    for script in console_scripts(index):
        if script.name in taken or os.sep in script.name:
            continue
        path = os.path.join(target, "bin", script.name)
        _write(path, launcher(script, python), 0o755)
        written.append(path)
        taken.add(script.name)
    written += _link_schemes(index, target, version, python, taken)
    _write(
        os.path.join(target, _RECORD),
        json.dumps({"format": _FORMAT, "manifest": manifest, "written": written}, indent=1),
        0o644,
    )
    _write(os.path.join(target, _MADE_FOR), manifest, 0o644)
    return os.path.join(target, "bin", "python")


def is_shell_of(directory: str, manifest: str) -> bool:
    """Whether ``directory`` is an environment shell made for the file ``manifest``."""
    return venv_config(directory).get(MANIFEST_KEY) == manifest


def exec_shell(index: SiteIndex, *, system_site: bool = False) -> str:
    """The shell ``vsite exec`` puts first on ``PATH``: made once per manifest content,
    interpreter and option under vsite's state directory, reused after; its directory.

    Concurrent ``vsite exec`` of one manifest make it once: the first takes a lock and
    the others wait for it, then find it complete.
    """
    import fcntl
    import zlib

    from vsite._farm_lock import hold
    from vsite._paths import state_dir

    # Two 32-bit checksums: hashlib (OpenSSL) would cost more than the rest of an exec.
    # A collision is caught below: the shell records the manifest it was made for.
    text = "\0".join(
        [
            str(_FORMAT),
            index.source,
            os.path.realpath(interpreter()),
            str(system_site),
            *index.dists.values(),
        ]
    ).encode("utf-8", "surrogateescape")
    content = index.content
    crc = zlib.crc32(content, zlib.crc32(text))
    adler = zlib.adler32(content, zlib.adler32(text))
    key = f"{crc:08x}{adler:08x}"
    envs = state_dir("envs")
    target = os.path.join(envs, key)
    # Held from here to the exec (the descriptor closes there; the command's Pythons
    # hold it from their own start): vsite gc takes no shell in use or just used.
    if hold(target) and _made_for(target, index.source):
        return target
    with open(os.path.join(envs, f"{key}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _made_for(target, index.source):
            make_shell(index, target, system_site=system_site, held=True)
        hold(target)
    return target


def _made_for(target: str, manifest: str) -> bool:
    """Whether a complete shell for ``manifest`` is at ``target``: its marker, written
    last, names it (plain text: json would cost an exec more than the check)."""
    try:
        with open(os.path.join(target, _MADE_FOR), encoding="utf-8") as stream:
            return stream.read() == manifest
    except OSError:
        return False


def launcher(script: Script, python: str) -> str:
    """A console-script launcher: POSIX sh that execs ``python`` on itself once, or
    says in one line that the interpreter behind the environment is gone.

    The second line is a shell command to sh and the start of a string to Python (as
    distlib's launchers for long shebangs do), so there is one file, run by one
    interpreter, with ``sys.argv[0]`` its own path, as a venv's ``bin/NAME``.
    """
    import shlex

    quoted = shlex.quote(python)
    gone = shlex.quote(
        f"vsite: {python} is gone (the interpreter behind this environment was removed "
        "or replaced): make the environment again with `vsite env`"
    )
    attr = script.attr
    return (
        "#!/bin/sh\n"
        f"''''[ -x {quoted} ] || {{ echo {gone} >&2; exit 127; }}; "
        f'exec {quoted} "$0" "$@" #\'\'\'\n'
        f"import sys\nfrom {script.module} import {attr.split('.')[0]}\n"
        'if __name__ == "__main__":\n'
        f"    sys.exit({attr}())\n"
    )


# -- pieces ---------------------------------------------------------------------------


def _boot_line(manifest: str, version: str, *, held: bool = False) -> str:
    """The ``.pth`` line: put vsite's boot directory first for a moment, boot the site
    (``_vsite_boot`` takes the directory back off ``sys.path``); ``held``: and hold the
    shell for the process's life."""
    from vsite._startup import BOOT_DIR

    # site reads a venv's site-packages twice (once as the venv's, once as a site dir of
    # PREFIXES, CPython 3.9-3.13): the second reading finds the site booted.
    hold = ", True" if held else ""
    return (
        "import sys; 'vsite._startup' in sys.modules or "
        f"sys.path.insert(0, {BOOT_DIR!r}) or "
        f"__import__('_vsite_boot').boot_shell({manifest!r}, {version!r}, sitedir{hold})\n"
    )


def _site_packages(target: str, version: str) -> str:
    return os.path.join(target, "lib", f"python{version}", "site-packages")


def _add_config(target: str, manifest: str) -> None:
    with open(os.path.join(target, "pyvenv.cfg"), "a", encoding="utf-8") as stream:
        stream.write(f"{MANIFEST_KEY} = {manifest}\n")


def _forget_earlier(target: str) -> None:
    """Remove what an earlier make of this shell wrote (launchers, data links)."""
    import json

    try:
        os.unlink(os.path.join(target, _MADE_FOR))
    except OSError:
        pass
    try:
        with open(os.path.join(target, _RECORD), encoding="utf-8") as stream:
            written = json.load(stream)["written"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for path in sorted(map(str, written), key=len, reverse=True):
        if not path.startswith(os.path.join(target, "")):
            continue  # a record that names something outside: not ours to remove
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            pass
    os.unlink(os.path.join(target, _RECORD))


def _write(path: str, text: str, mode: int) -> None:
    from vsite._fs import write_atomic

    write_atomic(path, text.encode("utf-8"), mode)


def _link_schemes(
    index: SiteIndex, target: str, version: str, python: str, taken: set[str]
) -> list[str]:
    """Data, headers and scripts of the roots' wheels, linked into the shell."""
    written: list[str] = []
    data: list[str] = []
    for root in index.roots:
        if os.path.basename(root) != "site-packages":
            continue
        wheel = os.path.dirname(root)
        if os.path.isdir(os.path.join(wheel, "data")):
            data.append(os.path.join(wheel, "data"))
        headers = os.path.join(wheel, "include")
        name = _dist_name(root)
        if name and os.path.isdir(headers):
            site_headers = os.path.join(target, "include", "site", f"python{version}")
            if not os.path.lexists(os.path.join(site_headers, name)):
                written += _makedirs(site_headers, target)
                os.symlink(headers, os.path.join(site_headers, name))
                written.append(os.path.join(site_headers, name))
        written += _copy_scripts(os.path.join(wheel, "bin"), target, python, taken)
    written += _merge(data, target, target)
    return written


def _dist_name(root: str) -> str | None:
    """The distribution name of the (first) ``*.dist-info`` in ``root``, as spelled."""
    try:
        names = sorted(n for n in os.listdir(root) if n.endswith(".dist-info"))
    except OSError:
        return None
    return names[0][: -len(".dist-info")].rpartition("-")[0] or None if names else None


def _copy_scripts(scripts: str, target: str, python: str, taken: set[str]) -> list[str]:
    """A wheel's ``.data/scripts`` that are not entry points: into ``bin/``."""
    written: list[str] = []
    try:
        names = sorted(os.listdir(scripts))
    except OSError:
        return written
    for name in names:
        if name in taken:
            continue  # an entry point's launcher (written above) or the venv's own
        source = os.path.join(scripts, name)
        path = os.path.join(target, "bin", name)
        with open(source, "rb") as stream:
            first = stream.readline()
            rest = stream.read()
        if first.startswith(b"#!") and b"python" in first.split(b"/")[-1]:
            # The installer pointed it at the Python that unpacked it: point it here.
            with open(path, "wb") as out:
                out.write(b"#!" + os.fsencode(python) + b"\n" + rest)
            os.chmod(path, 0o755)
        else:
            os.symlink(source, path)
        written.append(path)
        taken.add(name)
    return written


def _merge(sources: list[str], destination: str, top: str) -> list[str]:
    """Link the union of ``sources`` (directories, first wins) into ``destination``:
    a whole directory as one link where only one source has it."""
    written: list[str] = []
    names: dict[str, list[str]] = {}
    for source in sources:
        try:
            entries = sorted(os.listdir(source))
        except OSError:
            continue
        for name in entries:
            names.setdefault(name, []).append(os.path.join(source, name))
    for name, providers in names.items():
        path = os.path.join(destination, name)
        directories = [p for p in providers if os.path.isdir(p)]
        if os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path) and directories:
                written += _merge(directories, path, top)  # the shell's own bin/, lib/
            continue
        if len(directories) > 1 and os.path.isdir(providers[0]):
            os.mkdir(path)
            written.append(path)
            written += _merge(directories, path, top)
        else:
            os.symlink(providers[0], path)
            written.append(path)
    return written


def _makedirs(path: str, top: str) -> list[str]:
    made: list[str] = []
    while not os.path.isdir(path) and path != top:
        made.append(path)
        path = os.path.dirname(path)
    for directory in reversed(made):
        os.mkdir(directory)
    return made


def is_vsite_shell(directory: str) -> bool:
    """Whether ``directory`` is an environment shell made by vsite (of any manifest)."""
    return MANIFEST_KEY in venv_config(directory)
