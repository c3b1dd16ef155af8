"""Child: vsite's persistent index, in one process; prints JSON.

    index_costs.py OUT_DIR LOADS BUILDS READER_MANIFEST [BUILD_MANIFEST...]

Reader: the fields of READER_MANIFEST's index (roots, top-level names and their
holders, root mtimes, distributions, .pth files, native names: plain tuples, lists,
dicts) serialized with marshal, json and pickle (vsite's own index file is sectioned,
its records marshalled); ``loads`` of each timed LOADS times, the order rotating; the
three files written to OUT_DIR as ``index.<reader>`` for fresh-process reads.
Build, per BUILD_MANIFEST, BUILDS times: ``build_index`` (scan every
root + merge), ``index_write.encode``, and ``index_cache.load`` (decode + verify).
"""

from __future__ import annotations

import json
import marshal
import pickle
import sys
import time
from pathlib import Path
from typing import Callable

from vsite import index_cache, index_write
from vsite.index import build_index
from vsite.manifest import Manifest

LOADERS: dict[str, Callable[[bytes], object]] = {
    "marshal": marshal.loads,
    "json": json.loads,
    "pickle": pickle.loads,
}


def readers(out_dir: Path, repeats: int, manifest: str) -> dict[str, object]:
    index = build_index(Manifest.load(manifest))
    fields = (
        tuple(index.roots),
        {name: list(holders) for name, holders in index.entries.items()},
        tuple(index.mtimes),
        dict(index.dists),
        tuple(index.pth),
        tuple(index.native),
    )
    blobs = {
        "marshal": marshal.dumps(fields),
        "json": json.dumps(fields, separators=(",", ":")).encode(),
        "pickle": pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL),
    }
    times: dict[str, list[float]] = {name: [] for name in LOADERS}
    names = list(LOADERS)
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            LOADERS[name](blobs[name])
            times[name].append(time.perf_counter() - started)
    files = {}
    for name, blob in blobs.items():
        path = out_dir / f"index.{name}"
        path.write_bytes(blob)
        files[name] = str(path)
    return {
        "sizes": {name: len(blob) for name, blob in blobs.items()},
        "loads": times,
        "files": files,
    }


def builds(manifest: str, repeats: int) -> dict[str, object]:
    loaded = Manifest.load(manifest)
    times: dict[str, list[float]] = {"build": [], "encode": [], "load": []}
    data = b""
    for _ in range(repeats):
        started = time.perf_counter()
        index = build_index(loaded)
        times["build"].append(time.perf_counter() - started)
        started = time.perf_counter()
        data = index_write.encode(index)
        times["encode"].append(time.perf_counter() - started)
        started = time.perf_counter()
        decoded = index_cache.load(manifest, data)
        times["load"].append(time.perf_counter() - started)
        assert decoded is not None
    return {**times, "bytes": len(data)}


def main(argv: list[str]) -> None:
    out_dir, loads, repeats, reader_manifest, *build_manifests = argv
    result = {
        "reader": readers(Path(out_dir), int(loads), reader_manifest),
        "builds": [builds(manifest, int(repeats)) for manifest in build_manifests],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
