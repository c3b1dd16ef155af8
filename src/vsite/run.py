"""``vsite run``: the site active in THIS process, then Python's own ways of running code.

``sys.argv``, ``sys.path[0]`` and ``__main__`` are set as ``python`` sets them for
``-m MODULE``, ``-c CODE`` and ``SCRIPT``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["run"]


def run(manifest: str, args: list[str]) -> int:
    """Activate ``manifest`` and run ``args`` like ``python ARGS``; return the exit code."""
    from vsite.activation import activate

    if not args:
        sys.stderr.write("vsite: error: run needs -m MODULE, -c CODE or SCRIPT\n")
        return 2
    activate(manifest)
    import runpy

    first = args[0]
    try:
        if first == "-m":
            if len(args) < 2:
                sys.stderr.write("vsite: error: -m needs a module name\n")
                return 2
            sys.argv = [args[1], *args[2:]]  # runpy replaces argv[0] with the file path
            _set_path0(os.getcwd())
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif first == "-c":
            if len(args) < 2:
                sys.stderr.write("vsite: error: -c needs code\n")
                return 2
            sys.argv = ["-c", *args[2:]]
            _set_path0("")
            main = sys.modules["__main__"]
            namespace = {"__name__": "__main__", "__builtins__": __builtins__}
            main.__dict__.clear()
            main.__dict__.update(namespace)
            exec(compile(args[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(args)
            _set_path0(os.path.dirname(os.path.abspath(first)))
            runpy.run_path(first, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 0


def _set_path0(entry: str) -> None:
    # sys.path[0] is vsite's own script directory; python would put the code's there.
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.insert(0, entry)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
