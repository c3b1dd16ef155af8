"""The ``vsite`` command line: the only place that prints and picks exit codes.

The commands' logic lives in the modules beside this one and returns data or raises
VsiteError; this module reports it. Exit codes: a command's own for ``exec``/``run``;
0 clean, 1 problems found, 2 unusable manifest or usage error for the rest. (``vsite
run`` reports the program's own uncaught exception as ``python`` does, from
:mod:`vsite.tools.run`: that output is the program's, not vsite's.)
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import TextIO

__all__ = ["Progress", "main"]

EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "exec":
        # The launch path of every program run with the site: no argparse (its import
        # and the parser cost more than the rest of exec), see _exec_argv.
        parsed = _exec_argv(args[1:])
        if parsed is not None:
            return _guarded(_exec, *parsed)
    parser = _parser()
    if args and args[0] == "run":
        return _run(parser, args[1:])
    options = parser.parse_args(args)
    return _guarded(options.func, options)


def _guarded(command: Callable[..., int], *args: object) -> int:
    """``command(*args)``; a VsiteError is one line on stderr and exit 2.

    vsite.errors is loaded only when something was raised: ``exec``, the launch of every
    program run with the site, has no other use for it (~0.5 ms of an exec here).
    """
    try:
        return command(*args)
    except Exception as exc:
        from vsite.errors import VsiteError, one_line

        if not isinstance(exc, VsiteError):
            raise
        _error(one_line(exc))
        return EXIT_UNUSABLE


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="vsite",
        description="Use many per-wheel install roots as ONE site-packages.",
    )
    from vsite import __version__

    parser.add_argument("--version", action="version", version=f"vsite {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    exec_ = commands.add_parser(
        "exec",
        help="run COMMAND with the site active in every Python process it starts",
        description="Run COMMAND with the virtual site active in every Python process it "
        "starts. The manifest's environment (a venv-shaped shell: python, the site's "
        "console scripts) goes first on PATH, and vsite's boot hook into the environment "
        "for any other Python COMMAND names by path. `python` is then isolated from the "
        "interpreter's own site-packages like a venv's; a Python named by path keeps its "
        "own after the site's, and one started with -S (or -I, -E) skips the hook "
        "(vsite warns when COMMAND is one).",
    )
    exec_.add_argument(
        "--system-site-packages",
        action="store_true",
        help="keep the interpreter's own site-packages (after the site's)",
    )
    exec_.add_argument("manifest")
    exec_.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    exec_.set_defaults(func=_exec_options)

    env = commands.add_parser(
        "env",
        help="write an environment (a venv-shaped shell) for a manifest",
        description="Write a venv-shaped directory whose site-packages is the manifest's "
        "site: bin/python, bin/activate, a launcher per console script, links to the "
        "wheels' data files. No package file is copied or linked: vsite's import hook "
        "resolves them. `vsite install -o DIR/manifest.json` writes one in DIR.",
    )
    env.add_argument("manifest")
    env.add_argument("-o", "--output", required=True, metavar="DIR")
    env.add_argument(
        "--system-site-packages",
        action="store_true",
        help="keep the interpreter's own site-packages (after the site's)",
    )
    env.set_defaults(func=_env)

    commands.add_parser(
        "run",
        help="run Python in-process with the site active: [-m MODULE | -c CODE | SCRIPT] [ARGS]",
        add_help=False,
    )

    index = commands.add_parser(
        "index",
        help="pre-build the index next to the manifest (for immutable roots)",
        description="Write MANIFEST.vsite-index beside the manifest. It is trusted on the "
        "manifest's bytes alone (roots are not re-checked), which suits build systems "
        "whose roots never change after they are built. Delete it if roots change.",
    )
    index.add_argument("manifest")
    index.set_defaults(func=_index)

    check = commands.add_parser("check", help="validate a manifest and report problems")
    check.add_argument("manifest")
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.set_defaults(func=_check)

    install = commands.add_parser(
        "install",
        help="unpack wheels into the shared store (each once) and write a manifest",
        description="Unpack wheel files, the wheels pip downloads for REQUIREMENTs, or the "
        "wheels a lock file (pylock.toml, PEP 751: `pip lock`, `uv export --format "
        "pylock.toml`) selects for this interpreter, each once into a content-addressed "
        "store; roots already there are reused. A lock is installed as it is (no resolver "
        "runs), its roots in the order of its packages; every hash it records, or that a "
        "requirements file gives with --hash, is checked before anything is unpacked. Each "
        "root is byte-compiled for this interpreter, as pip does (a reused root that holds "
        "no bytecode of this interpreter gets it, where the store can be written).",
    )
    install.add_argument("items", nargs="*", metavar="WHEEL|REQUIREMENT|pylock.toml")
    install.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE")
    install.add_argument("-o", "--output", required=True, metavar="MANIFEST")
    install.add_argument("--store", help="store directory (default: ~/.cache/vsite/store)")
    install.add_argument("--no-deps", action="store_true", help="do not resolve dependencies")
    install.add_argument(
        "-f",
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of wheels to take them from first (repeatable)",
    )
    install.add_argument(
        "--offline",
        action="store_true",
        help="fetch nothing: only wheels in the store (by the hash a lock or --hash pins), "
        "in --find-links directories, or local files; all missing ones are named at once",
    )
    install.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="an extra of the lock file to install (repeatable)",
    )
    install.add_argument(
        "--group",
        action="append",
        default=None,
        metavar="NAME",
        help="a dependency group of the lock file to install (repeatable; default: the "
        "lock's default-groups)",
    )
    install.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="write no bytecode (modules are then compiled once per user, at first import)",
    )
    # Compiling became the default; old scripts that still ask for it keep working.
    install.add_argument("--compile", dest="compile", action="store_true", help=argparse.SUPPRESS)
    install.add_argument(
        "--no-env",
        dest="env",
        action="store_false",
        help="write only the manifest, no environment beside it",
    )
    install.add_argument(
        "--system-site-packages",
        action="store_true",
        help="the environment keeps the interpreter's own site-packages (after the site's)",
    )
    install.set_defaults(func=_install, compile=True)

    gc = commands.add_parser(
        "gc",
        help="delete native farms and exec environments no process uses, and cached "
        "bytecode of removed sources",
        description="Delete the symlink farms under vsite's per-user state directory that "
        "no running process holds (each process holds its farm for its lifetime, so a farm "
        "in use is never removed), and the leftovers of interrupted builds. With "
        "--older-than, only farms last used at least that many seconds ago. Also delete "
        "the per-user bytecode cache's files whose source no longer exists (a collected "
        "store entry, a deleted checkout). And the environments `vsite exec` made under "
        "the same directory that no process holds and that were last used an hour ago or "
        "more (or --older-than, if longer).",
    )
    gc.add_argument("--older-than", type=float, default=0.0, metavar="SECONDS", help="default: 0")
    gc.set_defaults(func=_gc)

    store = commands.add_parser(
        "store", help="check the shared store of unpacked wheels, or collect its garbage"
    )
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    verify = store_commands.add_parser(
        "verify",
        help="check every store entry's files against its wheel's RECORD hashes",
        description="Check every entry of the store: each recorded file present and of its "
        "size, each file's content against its wheel's RECORD hash, this interpreter's "
        "bytecode against its source. One line per damaged entry, then a summary; exit 1 "
        "when an entry is damaged. The store keeps no wheel files: --repair removes a "
        "damaged entry whole, and the next `vsite install` of its wheel unpacks it again.",
    )
    verify.add_argument("--repair", action="store_true", help="remove damaged entries")
    verify.add_argument("--store", help="store directory (default: ~/.cache/vsite/store)")
    verify.set_defaults(func=_store_verify)
    store_gc = store_commands.add_parser(
        "gc",
        help="remove the entries no environment uses",
        description="Remove the store entries that no environment registered by vsite install "
        "lists (a registration whose manifest is gone is dropped) and that no running "
        "process of this user holds. Manifests written by hand or by vsite manifest are "
        "not registered: keep them out of a collected store.",
    )
    store_gc.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    store_gc.add_argument("--store", help="store directory (default: ~/.cache/vsite/store)")
    store_gc.set_defaults(func=_store_gc)

    manifest = commands.add_parser(
        "manifest",
        help="write a manifest listing existing per-wheel directories",
        description="Each DIR is a root, or holds the root in its site-packages subdir. "
        "Paths are written relative to the manifest's directory unless --absolute.",
    )
    manifest.add_argument("dirs", nargs="+", metavar="DIR")
    manifest.add_argument("-o", "--output", metavar="MANIFEST", help="default: stdout")
    manifest.add_argument("--absolute", action="store_true", help="write absolute paths")
    manifest.set_defaults(func=_manifest)
    return parser


def _exec_argv(args: list[str]) -> tuple[str, list[str], bool] | None:
    """``[--system-site-packages] MANIFEST [--] COMMAND...``; None for anything else
    (help, a typo): argparse then handles it and its errors."""
    system_site = False
    while args and args[0] == "--system-site-packages":
        system_site, args = True, args[1:]
    if not args or args[0].startswith("-"):
        return None
    manifest, command = args[0], args[1:]
    if command and command[0] == "--":
        command = command[1:]
    return manifest, command, system_site


def _exec_options(options: argparse.Namespace) -> int:
    command = list(options.command)
    if command and command[0] == "--":
        command = command[1:]
    return _exec(options.manifest, command, options.system_site_packages)


def _exec(manifest: str, command: list[str], system_site: bool) -> int:
    """``vsite exec MANIFEST -- COMMAND [ARGS...]``: replace this process with COMMAND.

    COMMAND runs with the manifest's environment shell first on ``PATH`` and the boot
    hook in its environment (:mod:`vsite.tools.launch`), so every Python process it
    starts (directly, through ``subprocess``, as a ``multiprocessing`` worker, or as a
    console script of the site found on ``PATH``) activates the same site at start-up.
    The manifest is validated first: an unusable one exits 2 before anything runs.

    The exit status and signals are COMMAND's own: the process is replaced, not waited
    for. ``127`` means COMMAND was not found, ``126`` that it could not be run.
    """
    if not command:
        _error("exec needs a command: vsite exec MANIFEST -- COMMAND [ARGS...]")
        return EXIT_UNUSABLE
    from vsite.tools.launch import exec_environment

    env = exec_environment(manifest, dict(os.environ), system_site=system_site)
    _warn_isolated(command, env)
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        _error(f"cannot run {command[0]!r}: {exc.strerror or exc}")
        return 127 if isinstance(exc, FileNotFoundError) else 126


def _warn_isolated(command: list[str], env: dict[str, str]) -> None:
    """A Python that will not boot the site (``-S``; ``-I``/``-E`` unless it is the
    environment's own python): say so on stderr."""
    from vsite.tools.launch import OUTSIDE, isolating_option

    flag = isolating_option(command)
    if flag is None:
        return
    if flag in "IE":
        import shutil

        found = shutil.which(command[0], path=env.get("PATH"))
        shell_bin = os.path.join(env["VIRTUAL_ENV"], "bin", "")
        if found is not None and os.path.abspath(found).startswith(shell_bin):
            return  # the shell's python boots the site from its .pth, not from PYTHONPATH
    sys.stderr.write(
        f"vsite: warning: {command[0]} -{flag} {OUTSIDE[flag]}; the virtual site "
        "will not be active in it (nor in the processes it starts)\n"
    )


def _run(parser: argparse.ArgumentParser, args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print("usage: vsite run MANIFEST [-m MODULE | -c CODE | SCRIPT] [ARGS...]")
        return 0 if args else EXIT_UNUSABLE
    from vsite.errors import VsiteError, one_line
    from vsite.tools.run import run

    try:
        return run(args[0], args[1:])
    except VsiteError as exc:
        _error(one_line(exc))
        return EXIT_UNUSABLE


def _index(options: argparse.Namespace) -> int:
    from vsite import index_cache, index_write
    from vsite.index import build_index
    from vsite.manifest import Manifest

    manifest = Manifest.load(options.manifest)
    index = build_index(manifest)
    if index.native:
        from vsite.native.farm import plan_farm, resolve_link_mode

        mode = resolve_link_mode(None)
        index.plans[mode] = plan_farm(index.roots, index.native, mode).to_data()
    target = index_cache.sidecar_path(manifest.source)
    index_write.store(index, target)
    if not os.path.exists(target):
        _error(f"cannot write {target}")
        return EXIT_UNUSABLE
    print(f"vsite: wrote {target} ({len(index.roots)} roots, {len(index.native)} staged)")
    return 0


def _check(options: argparse.Namespace) -> int:
    """``vsite check``: 0 clean, 1 problems found, 2 unusable manifest."""
    from vsite.errors import ManifestError, one_line
    from vsite.manifest import Manifest
    from vsite.tools.check import check, format_report, unusable_report

    try:
        manifest = Manifest.load(options.manifest)
    except ManifestError as exc:
        if options.json:
            _print_json(unusable_report(exc, options.manifest))
        else:
            _error(one_line(exc))
        return EXIT_UNUSABLE
    report = check(manifest)
    if options.json:
        _print_json(report.as_dict())
    else:
        sys.stdout.write(format_report(report))
    return 0 if report.ok else EXIT_PROBLEMS


def _print_json(document: dict[str, object]) -> None:
    import json

    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _install(options: argparse.Namespace) -> int:
    from vsite.tools.install import install_command

    result = install_command(
        options.items,
        options.requirement,
        options.output,
        store_path=options.store,
        compile_bytecode=options.compile,
        no_deps=options.no_deps,
        listener=Progress(0, sys.stdout),
        find_links=options.find_links,
        offline=options.offline,
        extras=options.extra,
        groups=options.group,
    )
    added = f", {result.bytecode_added} given bytecode" if result.bytecode_added else ""
    print(
        f"vsite: {len(result.entries)} roots ({result.unpacked} unpacked, {result.reused} "
        f"reused{added}) in {result.seconds:.1f} s; store {result.store}; "
        f"wrote {result.manifest}"
    )
    _warm(result.manifest)
    if options.env:
        _write_env(result.manifest, os.path.dirname(result.manifest), options.system_site_packages)
    return 0


def _warm(manifest: str) -> None:
    """Build the manifest's index and its farm (the view, native code staged) now, so
    that the first start after an install reads them instead of scanning every root."""
    from vsite.index_cache import load_or_build
    from vsite.tools.launch import warm_farm

    warm_farm(load_or_build(os.path.abspath(manifest)))


def _env(options: argparse.Namespace) -> int:
    _write_env(options.manifest, options.output, options.system_site_packages)
    return 0


def _write_env(manifest: str, directory: str, system_site: bool) -> None:
    from vsite.index_cache import load_or_build
    from vsite.manifest import Manifest
    from vsite.tools.shell import make_shell

    loaded = Manifest.load(manifest)
    index = load_or_build(loaded.source)
    python = make_shell(index, directory, system_site=system_site or loaded.system_site_packages)
    print(f"vsite: environment {os.path.abspath(directory)}: {python}")


def _gc(options: argparse.Namespace) -> int:
    from vsite.index_write import sweep_temporaries
    from vsite.native.gc import collect_garbage

    if options.older_than < 0:
        _error("--older-than must be 0 or more seconds")
        return EXIT_UNUSABLE
    removed = collect_garbage(older_than=options.older_than)
    for path in removed:
        print(f"removed {path}")
    swept = sweep_temporaries()
    extra = f", {swept} stale index temporaries" if swept else ""
    print(f"vsite: removed {len(removed)} farms{extra}")
    from vsite.tools.shell_gc import GRACE, collect_shells

    shells = collect_shells(older_than=options.older_than)
    for path in shells:
        print(f"removed {path}")
    print(
        f"vsite: removed {len(shells)} exec environments no process uses "
        f"(unused for {max(options.older_than, GRACE):.0f} s at least)"
    )
    from vsite.tools.cache_gc import collect_bytecode

    cache = collect_bytecode()
    if cache.refused is not None:
        print(f"vsite: bytecode cache not looked at: {cache.refused}")
    else:
        print(
            f"vsite: removed {cache.removed} cached bytecode files whose source is gone "
            f"({cache.kept} kept) from {cache.directory}"
        )
    return 0


def _store_gc(options: argparse.Namespace) -> int:
    """``vsite store gc [--dry-run]``: 0 (a StoreError is exit 2, one line)."""
    from vsite.tools.install.collect import collect
    from vsite.tools.install.store import default_store

    store = os.path.abspath(options.store or default_store())
    found = collect(store, dry_run=options.dry_run)
    verb = "would remove" if options.dry_run else "removed"
    for path in found.removed:
        print(f"{verb} {path}")
    for manifest in found.dropped:
        print(f"dropped the registration of {manifest} (the manifest is gone)")
    print(
        f"vsite: {found.entries} store entries: {len(found.removed)} {verb}, {found.kept} "
        f"used by registered environments, {found.held} held by running processes; "
        f"store {store}"
    )
    return 0


def _store_verify(options: argparse.Namespace) -> int:
    """``vsite store verify [--repair]``: 0 every entry sound, 1 any damaged or unread."""
    import time

    from vsite.tools.install.store import default_store
    from vsite.tools.install.verify import verify_store

    started = time.monotonic()
    store = os.path.abspath(options.store or default_store())
    counts = {"ok": 0, "damaged": 0, "unverified": 0}
    removed = 0
    from vsite.tools.install.collect import users

    used_by = users(store)
    for result in verify_store(store, repair=options.repair):
        counts[result.status] += 1
        removed += 1 if result.action == "removed" else 0
        if result.status != "ok":
            print(result.line(), flush=True)
            for manifest in used_by.get(os.path.realpath(result.path), []):
                print(f"  used by the environment {manifest}")
    total = sum(counts.values())
    summary = f"vsite: {total} store entries in {time.monotonic() - started:.1f} s: "
    summary += f"{counts['ok']} ok, {counts['damaged']} damaged"
    if options.repair and counts["damaged"]:
        summary += f" ({removed} removed)"
    if counts["unverified"]:
        summary += f", {counts['unverified']} not verified"
    print(f"{summary}; store {store}")
    return EXIT_PROBLEMS if counts["damaged"] or counts["unverified"] else 0


def _manifest(options: argparse.Namespace) -> int:
    """``vsite manifest``: write (or print) a manifest listing ``options.dirs``."""
    from vsite.tools.compose import manifest_text, roots_from_dirs, write_manifest

    roots = roots_from_dirs(options.dirs)
    text = manifest_text(roots, options.output, absolute=options.absolute)
    if options.output is None:
        sys.stdout.write(text)
    else:
        write_manifest(text, options.output)
        written = os.path.abspath(options.output)
        sys.stderr.write(f"vsite: wrote {written} ({len(roots)} roots)\n")
    return 0


def _error(message: str) -> None:
    sys.stderr.write(f"vsite: error: {message}\n")


class Progress:
    """``vsite install``'s progress: a bar on a terminal, one plain line per wheel
    otherwise (a :class:`vsite.tools.install.Listener`)."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._width = 0

    def resolving(self) -> None:
        self.stream.write("vsite: resolving requirements with pip download\n")
        self.stream.flush()

    def start(self, total: int) -> None:
        self.total = total

    def update(self, count: int, message: str) -> None:
        """Work under way (drawn on a terminal only)."""
        if self.tty:
            self._draw(count, message)

    def done(self, count: int, message: str) -> None:
        """One wheel finished."""
        if self.tty:
            self._draw(count, message)
        else:
            self.stream.write(f"[{count}/{self.total}] {message}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, count: int, message: str) -> None:
        import shutil

        columns = shutil.get_terminal_size((80, 24)).columns
        cells = 24
        filled = cells * count // max(self.total, 1)
        text = f"[{'#' * filled}{'-' * (cells - filled)}] {count}/{self.total} {message}"
        text = text[: max(columns - 1, 10)]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
