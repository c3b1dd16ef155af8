"""Child: a new environment of the envsetup section, activated and/or checked.

    environment.py [--activate MANIFEST] [--check TOP DIST...]

``--activate``: ``vsite.activate(MANIFEST)`` (vsite imported from ``PYTHONPATH``).
``--check``: print the versions of the DISTs and whether the top-level package TOP is
found, the value every layout's environment must print.
"""

from __future__ import annotations

import sys


def check(top: str, dists: list[str]) -> None:
    import importlib.metadata
    import importlib.util

    versions = [importlib.metadata.version(name) for name in dists]
    print(repr((versions, importlib.util.find_spec(top) is not None)))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--activate"]:
        import vsite

        vsite.activate(argv[1])
        argv = argv[2:]
    if argv[:1] == ["--check"]:
        check(argv[1], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
