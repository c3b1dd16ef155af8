"""Read one root once: its top-level listing, distributions and ``.pth`` files."""

from __future__ import annotations

import os

from vsite._names import dist_name_from_dir

__all__ = ["RootScan", "scan_root"]


class RootScan:
    """What one root directory holds at its top level."""

    __slots__ = ("dists", "listing", "mtime", "path", "pth")

    def __init__(
        self,
        path: str,
        listing: dict[str, bool],
        mtime: int,
        dists: list[tuple[str, str]],
        pth: list[str],
    ) -> None:
        self.path = path
        self.listing = listing  # name -> is a directory
        self.mtime = mtime
        self.dists = dists  # (canonical name, metadata dir name), sorted by dir name
        self.pth = pth  # .pth file names


def scan_root(path: str, mtime: int | None = None) -> RootScan:
    """List ``path`` once; OSError propagates for the caller to attribute.

    ``mtime``: the root's, when the caller has just taken it (saves a ``stat``).
    """
    listing: dict[str, bool] = {}
    dists: list[tuple[str, str]] = []
    pth: list[str] = []
    if mtime is None or mtime < 0:
        mtime = os.stat(path).st_mtime_ns
    with os.scandir(path) as entries:
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            listing[name] = is_dir
            if is_dir:
                canonical = dist_name_from_dir(name)
                if canonical is not None:
                    dists.append((canonical, name))
            elif name.endswith(".pth"):
                pth.append(name)
    dists.sort(key=lambda item: item[1])
    return RootScan(path, listing, mtime, dists, pth)
