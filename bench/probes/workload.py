"""Child: one workload of the layouts section, under whatever layout started it.

    workload.py [--activate MANIFEST] WORKLOAD ARG...

``--activate``: the ``api`` layout, ``vsite.activate(MANIFEST)`` first (vsite imported
from ``PYTHONPATH``). The workloads, and the check each one reports (bench/workloads.py
gives them their arguments and the value every layout must report):

- ``start``: nothing; 0.
- ``imports PKG...``: import each PKG's submodules a, b and c; the sum of PKG.NUMBER.
- ``failed``: 200 imports of missing modules; how many raised ImportError.
- ``metadata GROUP DIST==VERSION...``: ``importlib.metadata.version`` of each DIST, then
  the entry points of GROUP; (versions that matched, entry points found).
- ``namespace NAMESPACE PORTION...``: import each portion; the sum of their PORTION.
"""

from __future__ import annotations

import os
import sys

from measured import report  # its import starts the clock (os, sys: loaded at start-up)


def start(args: list[str]) -> object:
    return 0


def imports(packages: list[str]) -> object:
    for package in packages:
        for sub in ("a", "b", "c"):
            __import__(f"{package}.{sub}")
    return sum(sys.modules[package].NUMBER for package in packages)


def failed(args: list[str]) -> object:
    count = 0
    for k in range(200):
        try:
            __import__(f"nosuchmod_{k:03d}")
        except ImportError:
            count += 1
    return count


def metadata(args: list[str]) -> object:
    import importlib.metadata

    group, *pins = args
    matched = 0
    for pin in pins:
        name, _, version = pin.partition("==")
        matched += importlib.metadata.version(name) == version
    if sys.version_info >= (3, 10):
        found = importlib.metadata.entry_points(group=group)
    else:
        found = importlib.metadata.entry_points().get(group, ())
    return (matched, len(found))


def namespace(args: list[str]) -> object:
    name, *portions = args
    for portion in portions:
        __import__(f"{name}.{portion}")
    return sum(sys.modules[f"{name}.{portion}"].PORTION for portion in portions)


WORKLOADS = {
    "start": start,
    "imports": imports,
    "failed": failed,
    "metadata": metadata,
    "namespace": namespace,
}


def activate(manifest: str) -> None:
    import vsite

    # An installed vsite sits in site-packages, on sys.path anyway: the source directory
    # PYTHONPATH added to import it from goes again, so later lookups do not pay for it.
    sys.path.remove(os.environ["PYTHONPATH"])
    vsite.activate(manifest)


def main(argv: list[str]) -> None:
    if argv[0] == "--activate":
        activate(argv[1])
        argv = argv[2:]
    workload, *args = argv
    report(WORKLOADS[workload](args))


if __name__ == "__main__":
    main(sys.argv[1:])
