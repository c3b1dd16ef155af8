"""Child: the cost of one ``find_spec`` on a site's path-entry finder, hits and misses.

    lookup.py vsite MANIFEST PACKAGE...   vsite's SiteFinder of the activated manifest
    lookup.py flat SITE_DIR PACKAGE...    the stdlib FileFinder of a flat site-packages

Reports "HIT,MISS": seconds per lookup, the fastest of 24 timed chunks of 500 lookups
(3 passes over 4,000 names cycling through the PACKAGEs; 4,000 missing names).
"""

from __future__ import annotations

import sys
import time
from typing import Protocol

from measured import report  # its import starts the child's clock


class Finder(Protocol):
    def find_spec(self, name: str) -> object: ...


def finder(kind: str, where: str) -> Finder:
    if kind == "vsite":
        import vsite

        hook = vsite.activate(where).path_hook
        assert hook is not None
        site: Finder = hook.site
        return site
    file_finder: Finder = sys.path_hooks[-1](where)  # the stdlib's FileFinder hook
    return file_finder


def best(found: Finder, names: list[str]) -> float:
    fastest = float("inf")
    for _ in range(3):
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            started = time.perf_counter()
            for name in chunk:
                found.find_spec(name)
            fastest = min(fastest, (time.perf_counter() - started) / len(chunk))
    return fastest


def main(kind: str, where: str, packages: list[str]) -> None:
    found = finder(kind, where)
    hits = (packages * (4000 // len(packages) + 1))[:4000]
    misses = [f"nosuchmod_{k:04d}" for k in range(4000)]
    assert all(found.find_spec(name) is not None for name in packages)
    assert found.find_spec("nosuchmod_0000") is None
    report(f"{best(found, hits)!r},{best(found, misses)!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
