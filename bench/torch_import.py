"""The torch set through vsite: the farm it needs, and ``import torch`` vs a flat directory.

    python bench/torch_import.py [--rounds N] [--cache DIR]

Uses the roots and the flat ``--target`` directory that tests/integration/test_torch.py
caches (``python -m tests.integration.test_torch`` fills the cache; ``--cache`` or
``VSITE_TORCH_CACHE``, else ``VSITE_TESTS_CACHE``, else ~/.cache/vsite-tests). Prints the
farm's size, the first activation (which builds the farm) and a second one (which reuses
it), then ``import torch`` under ``vsite exec``'s boot hook vs the flat directory on
PYTHONPATH: fresh processes, alternating, after one warm-up run of each. Ratios only
mean something side by side on one machine; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def default_cache() -> Path:
    base = os.environ.get("VSITE_TESTS_CACHE") or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsite-tests"
    )
    return Path(os.environ.get("VSITE_TORCH_CACHE") or base)


def probe_activate(manifest: str) -> None:
    """Child: activate the site once and report how long it took and what the farm holds."""
    import vsite

    start = time.perf_counter()
    handle = vsite.activate(manifest)
    seconds = time.perf_counter() - start
    farm = handle.farm
    assert farm is not None, "torch's site has native code: activation stages a farm"
    print(
        json.dumps(
            {
                "seconds": seconds,
                "created": farm.created,
                "links": farm.plan.link_count,
                "dirs": len(farm.plan.dirs),
                "staged": len(farm.plan.staged),
            }
        )
    )


def probe_import() -> None:
    """Child: the time ``import torch`` takes in this process."""
    start = time.perf_counter()
    import torch  # noqa: F401

    print(json.dumps({"seconds": time.perf_counter() - start}))


def child(args: list[str], env: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, __file__, *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    report: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def base_env(**extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "CUDA_HOME", "CUDA_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("VSITE_")}
    env.update(extra)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating pairs (default 5)")
    parser.add_argument("--cache", type=Path, default=None, help="the torch test cache")
    parser.add_argument("--probe", choices=("activate", "import"), help=argparse.SUPPRESS)
    parser.add_argument("manifest", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe == "activate":
        probe_activate(args.manifest)
        return 0
    if args.probe == "import":
        probe_import()
        return 0

    cache = args.cache or default_cache()
    roots = sorted(
        (cache / "torch-roots").iterdir(), key=lambda r: (not r.name.startswith("torch-"), r.name)
    )
    flat = cache / "torch-flat"
    if not roots or not flat.is_dir():
        print(f"no torch roots under {cache}: run python -m tests.integration.test_torch")
        return 2

    from vsite._startup import BOOT_DIR, ENV_MANIFEST

    with tempfile.TemporaryDirectory(prefix="vsite-torch-bench-") as tmp:
        manifest = Path(tmp) / "manifest.json"
        manifest.write_text(json.dumps({"vsite": 1, "roots": [str(r) for r in roots]}))
        state = {"VSITE_DIR": str(Path(tmp) / "state")}
        cold = child(["--probe", "activate", str(manifest)], base_env(**state))
        warm = child(["--probe", "activate", str(manifest)], base_env(**state))
        layouts = {
            "vsite": base_env(PYTHONPATH=BOOT_DIR, **{ENV_MANIFEST: str(manifest)}, **state),
            "flat": base_env(PYTHONPATH=str(flat)),
        }
        for env in layouts.values():  # warm the page cache and the bytecode of both
            child(["--probe", "import"], env)
        pairs = [
            tuple(child(["--probe", "import"], env)["seconds"] for env in layouts.values())
            for _ in range(args.rounds)
        ]
    ratios = sorted(v / f for v, f in pairs)
    print(
        f"[torch farm] {cold['staged']} staged entries, {cold['links']} links, "
        f"{cold['dirs']} real dirs; created in {cold['seconds']:.3f} s "
        f"(activation with the farm reused: {warm['seconds']:.3f} s)"
    )
    print(
        "[import torch] vsite/flat per pair: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f"; median {statistics.median(ratios):.3f}; best vsite "
        f"{min(v for v, _ in pairs):.3f} s, flat {min(f for _, f in pairs):.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
