"""``vsite run``: the site active in THIS process, then Python's own ways of running code.

``sys.argv``, ``sys.path[0]`` and ``__main__`` are set as ``python`` sets them for
``-m MODULE``, ``-c CODE``, ``-`` (stdin) and ``SCRIPT`` (a file, or a directory or zip
file holding ``__main__.py``); the ``.pth`` files of the site run before the program's
``sys.path[0]`` is inserted, as ``site`` runs before it at interpreter start-up. An
uncaught exception prints its traceback (without vsite's own frames) through
``sys.excepthook`` and gives exit status 1; ``SystemExit`` gives its code.

The environment vsite is installed in stays visible after the virtual site, as the
interpreter's own site-packages are for ``python``; ``vsite exec`` hides it. The
program's environment gets ``VSITE_MANIFEST`` and the boot directory on ``PYTHONPATH``,
as under ``vsite exec``, so the Python processes it starts (``subprocess``,
``multiprocessing`` workers) see the same site.
"""

from __future__ import annotations

import os
import sys

from vsite.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType, TracebackType

__all__ = ["run"]

_USAGE = "run needs -m MODULE, -c CODE, - or SCRIPT"


def run(manifest: str, args: list[str]) -> int:
    """Activate ``manifest`` and run ``args`` like ``python ARGS``; return the exit code.

    UsageError when ``args`` name nothing to run; the errors of activation as they come.
    """
    if not args:
        raise UsageError(_USAGE)
    first = args[0]
    if first in ("-m", "-c") and len(args) < 2:
        raise UsageError(f"{first} needs an argument")
    if first.startswith("-") and first not in ("-m", "-c", "-"):
        raise UsageError(f"unknown option {first!r}: {_USAGE}")
    # Python inserts sys.path[0] after site ran: take vsite's own out first, activate
    # (so .pth lines that insert at 0 land where they would), then put the program's in.
    had_path0 = bool(sys.path) and not (getattr(sys.flags, "safe_path", 0) or sys.flags.isolated)
    own_path0 = sys.path.pop(0) if had_path0 else None
    from vsite.activation import activate

    try:
        handle = activate(manifest)
    except BaseException:
        if own_path0 is not None:
            sys.path.insert(0, own_path0)
        raise
    _inherit(handle.index.source)
    try:
        if first == "-c":
            sys.argv = ["-c", *args[2:]]
            _add_path0("", had_path0)
            main = _fresh_main()
            _register_command(args[1])
            _exec(_compile(args[1], "<string>"), main)
        elif first == "-m":
            sys.argv = ["-m", *args[2:]]
            _add_path0(os.getcwd(), had_path0)
            _fresh_main()
            _run_module_as_main(args[1], alter_argv=True)
        elif first == "-":
            sys.argv = list(args)
            _add_path0("", had_path0)
            main = _fresh_main()
            _exec_file(_compile(sys.stdin.buffer.read(), "<stdin>"), main, "<stdin>")
        else:
            return _run_path(first, args, had_path0)
    except SystemExit as exc:
        return _exit_code(exc.code)
    except BaseException as exc:  # Reported as python reports an uncaught exception.
        return _uncaught(exc)
    return 0


def _inherit(manifest: str) -> None:
    """Python processes this program starts boot the same site, as under ``vsite exec``."""
    from vsite._startup import ENV_MANIFEST, boot_pythonpath

    os.environ[ENV_MANIFEST] = manifest
    os.environ["PYTHONPATH"] = boot_pythonpath(os.environ.get("PYTHONPATH"))


def _run_path(script: str, args: list[str], had_path0: bool) -> int:
    """``python SCRIPT``: a directory or zip file runs its ``__main__``, else the file."""
    import pkgutil

    sys.argv = list(args)
    path = os.path.abspath(script)
    if pkgutil.get_importer(path) is not None:
        # A directory or zip file: python always inserts it, even with safe_path.
        _add_path0(path, True)
        _fresh_main()
        _run_module_as_main("__main__", alter_argv=False)
        return 0
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        sys.stderr.write(
            f"vsite: error: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}\n"
        )
        return 2
    _add_path0(os.path.dirname(os.path.realpath(path)), had_path0)
    from importlib.machinery import SourceFileLoader, SourcelessFileLoader
    from importlib.util import MAGIC_NUMBER

    main = _fresh_main()
    if data[:4] == MAGIC_NUMBER:
        import marshal

        code = marshal.loads(data[16:])
        main.__loader__ = SourcelessFileLoader("__main__", path)
    else:
        code = _compile(data, path)
        main.__loader__ = SourceFileLoader("__main__", path)
    _exec_file(code, main, path)
    return 0


def _compile(source: str | bytes, filename: str) -> CodeType:
    # dont_inherit: this module's __future__ imports must not leak into the program.
    code: CodeType = compile(source, filename, "exec", dont_inherit=True)
    return code


def _register_command(source: str) -> None:
    """Python 3.13+ keeps ``-c`` source in linecache, so its tracebacks show the lines."""
    if sys.version_info >= (3, 13):
        import linecache

        lines = [line + "\n" for line in source.splitlines()]
        linecache.cache["<string>"] = (len(source), None, lines, "<string>")


def _exec(code: CodeType, main: ModuleType) -> None:
    exec(code, main.__dict__)


def _exec_file(code: CodeType, main: ModuleType, filename: str) -> None:
    # As python runs a file (or stdin): __file__ and __cached__ only while it runs.
    namespace = main.__dict__
    namespace["__file__"] = filename
    namespace["__cached__"] = None
    try:
        exec(code, namespace)
    finally:
        namespace.pop("__file__", None)
        namespace.pop("__cached__", None)


def _run_module_as_main(name: str, *, alter_argv: bool) -> None:
    # What python's own -m calls (Modules/main.c): same __main__, argv[0], messages.
    import runpy

    runner = getattr(runpy, "_run_module_as_main", None)
    if runner is None:  # pragma: no cover - present from 2.7 to 3.14
        runpy.run_module(name, run_name="__main__", alter_sys=alter_argv)
        return
    runner(name, alter_argv)


def _fresh_main() -> ModuleType:
    """A new ``__main__`` as the interpreter makes it at start-up, in ``sys.modules``.

    A new module rather than the running one cleared: the launcher that started vsite
    (a console script, ``runpy``) still needs its globals when ``run`` returns.
    """
    import builtins
    import types
    from importlib.machinery import BuiltinImporter

    main = types.ModuleType("__main__")
    main.__loader__ = BuiltinImporter
    if sys.version_info < (3, 14):
        main.__annotations__ = {}
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    return main


def _add_path0(entry: str, wanted: bool) -> None:
    if wanted:
        sys.path.insert(0, entry)


def _uncaught(exc: BaseException) -> int:
    """Report ``exc`` as the interpreter does for an uncaught exception; the exit code."""
    # The default hook prints exc.__traceback__, whatever traceback it is given.
    tb = _without_vsite_frames(exc.__traceback__)
    exc.__traceback__ = tb
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc
    sys.excepthook(type(exc), exc, tb)
    if isinstance(exc, KeyboardInterrupt):
        return _die_by_sigint()
    return 1


def _without_vsite_frames(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and _is_vsite_frame(tb.tb_frame.f_globals.get("__name__")):
        tb = tb.tb_next
    return tb


def _is_vsite_frame(name: object) -> bool:
    return isinstance(name, str) and (name == "vsite" or name.startswith("vsite."))


def _die_by_sigint() -> int:
    # Like python: after the traceback, end by SIGINT so the shell sees an interrupt.
    try:
        import signal

        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        pass
    return 128 + 2  # pragma: no cover - the signal ends the process first


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
