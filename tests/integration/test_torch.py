"""torch 2.14.1 and its ~29 distributions, one root per wheel, under ``vsite exec``.

The wheels come from ``pip download torch==2.14.1`` (the local wheel store) into a cache
outside the repository; each is installed with ``pip install --no-deps --no-compile
--target ROOT`` into its own root, built in a temporary sibling and renamed into place so
an interrupted run never leaves half a root. The first run installs several GB; later
runs reuse the cache. ``VSITE_TORCH_CACHE`` moves the cache; ``python
tests/integration/test_torch.py`` fills it ahead of a test run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.real_roots import install_target

pytestmark = [
    pytest.mark.realwheels,
    pytest.mark.slow,
    pytest.mark.skipif(
        sys.platform != "linux" or platform.machine() != "x86_64",
        reason="torch 2.14.1's CUDA wheel set is for linux x86_64",
    ),
    pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the cached wheels are cp311"),
]

TORCH = "torch==2.14.1"
CACHE = Path(
    os.environ.get("VSITE_TORCH_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsite-tests"
)
WHEELS = CACHE / "torch-wheels"
ROOTS = CACHE / "torch-roots"
FLAT = CACHE / "torch-flat"


def _pip(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def download_wheels() -> list[Path]:
    """The torch set's wheels (downloaded once; skip when the store doesn't have them)."""
    stamp = WHEELS / ".complete"
    if not stamp.exists():
        WHEELS.mkdir(parents=True, exist_ok=True)
        result = _pip("download", TORCH, "-d", str(WHEELS))
        if result.returncode != 0:
            pytest.skip(f"cannot download {TORCH}: {result.stderr.strip()[-300:]}")
        stamp.write_text("\n".join(sorted(p.name for p in WHEELS.glob("*.whl"))) + "\n")
    names = stamp.read_text().split()
    wheels = [WHEELS / name for name in names]
    if not any(name.startswith("torch-2.14.1-") for name in names) or not all(
        w.exists() for w in wheels
    ):
        pytest.skip(f"the {TORCH} wheel set in {WHEELS} is incomplete")
    return wheels


def install_roots(wheels: list[Path]) -> list[Path]:
    """One root per wheel, in the wheels' (sorted, torch first) order."""
    roots = []
    for wheel in sorted(wheels, key=lambda w: (not w.name.startswith("torch-"), w.name)):
        root = ROOTS / wheel.name[: -len(".whl")]
        install_target(root, [wheel], timeout=1800)
        roots.append(root)
    return roots


def install_flat(wheels: list[Path]) -> Path:
    """All wheels in one ``--target`` directory: the flat site-packages to compare with."""
    return install_target(FLAT, wheels, timeout=1800)


# The dynamic loader run directly can ignore /etc/ld.so.cache, where this machine lists a
# system CUDA (/usr/local/cuda-*/lib): with it hidden, only the wheels can serve CUDA.
LOADER = "/lib64/ld-linux-x86-64.so.2"


def hidden_system_cuda() -> list[str]:
    """The prefix that runs a program without ld.so.cache (so without a system CUDA)."""
    return [LOADER, "--inhibit-cache"] if os.path.exists(LOADER) else []


class TorchSite:
    """The cached roots, their manifest, the flat directory, and how to run probes.

    Every probe runs with no LD_LIBRARY_PATH / CUDA_HOME and, where the loader can be
    run directly, without ld.so.cache: any CUDA library must come from the wheels."""

    def __init__(self, roots: list[Path], manifest: Path, flat: Path, state: Path) -> None:
        self.roots = roots
        self.manifest = manifest
        self.flat = flat
        self.state = state

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "CUDA_HOME", "CUDA_PATH")
            and not key.startswith("VSITE_")
        }
        env["VSITE_DIR"] = str(self.state)
        env.update(extra)
        return env

    def vsite_exec(self, code: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``vsite exec MANIFEST -- python -c CODE`` with the system CUDA hidden."""
        command = [sys.executable, "-m", "vsite", "exec", str(self.manifest), "--"]
        command += [*hidden_system_cuda(), sys.executable, "-c", code]
        return _run(command, self.env(**env))

    def plain(self, code: str, path: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
        """``python -c CODE`` with ``path`` as PYTHONPATH (the naive and flat layouts)."""
        command = [*hidden_system_cuda(), sys.executable, "-c", code]
        return _run(command, self.env(PYTHONPATH=os.pathsep.join(map(str, path)), **env))


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=600
    )


@pytest.fixture(scope="module")
def torch_site(tmp_path_factory: pytest.TempPathFactory) -> TorchSite:
    wheels = download_wheels()
    roots = install_roots(wheels)
    flat = install_flat(wheels)
    base = tmp_path_factory.mktemp("torch")
    manifest = base / "manifest.json"
    manifest.write_text(json.dumps({"vsite": 1, "roots": [str(r) for r in roots]}, indent=1))
    return TorchSite(roots, manifest, flat, base / "state")


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


MAPPED = """
def mapped():
    # path -> (device, inode) of every file mapped into this process
    found = {}
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                found[fields[5].strip()] = (fields[3], fields[4])
    return found
"""


def test_torch_computes_with_rtld_global_under_vsite_exec(torch_site: TorchSite) -> None:
    code = MAPPED + textwrap.dedent("""
        import json, os, torch, vsite
        result = torch.ones(3) @ torch.ones(3)
        farm = vsite.activation.active().farm.path
        maps = mapped()
        print(json.dumps({
            "result": float(result),
            "torch_file": torch.__file__,
            "farm": farm,
            "cudart": sorted({maps[p] for p in maps if "libcudart.so" in os.path.basename(p)}),
            "cudart_paths": sorted(p for p in maps if "libcudart.so" in os.path.basename(p)),
            "nvidia_mapped": sorted(p for p in maps if "/nvidia/" in p or "/cuda" in p),
        }))
    """)
    out = _json(torch_site.vsite_exec(code, TORCH_USE_RTLD_GLOBAL="1"))
    assert out["result"] == 3.0
    assert out["torch_file"] == os.path.join(out["farm"], "torch", "__init__.py")
    assert len(out["cudart"]) == 1, out["cudart_paths"]  # one libcudart.so.13, one inode
    # The kernel names mapped files by their real path: every CUDA library comes from a
    # wheel root, none from a system CUDA.
    roots = str(ROOTS) + os.sep
    assert out["nvidia_mapped"], "no CUDA library mapped: the test proves nothing"
    assert all(path.startswith(roots) for path in out["nvidia_mapped"]), out["nvidia_mapped"]


def test_naive_layout_fails_with_rtld_global(torch_site: TorchSite) -> None:
    code = "import torch; print(torch.ones(3) @ torch.ones(3))"
    naive = torch_site.plain(code, torch_site.roots, TORCH_USE_RTLD_GLOBAL="1")
    assert naive.returncode != 0
    assert "cannot open shared object file" in naive.stderr
    # ... and the flat --target directory of the same wheels works.
    flat = torch_site.plain(code, [torch_site.flat], TORCH_USE_RTLD_GLOBAL="1")
    assert flat.returncode == 0, flat.stderr[-3000:]
    assert "tensor(3.)" in flat.stdout


LOAD_ALL = """
import ctypes, glob, json, os, sys
site = sys.argv[1] if len(sys.argv) > 1 else None
sites = [site] if site else sys.path
loaded, failed = [], {}
for entry in sites:
    for path in sorted(glob.glob(os.path.join(entry, "nvidia", "**", "*.so*"), recursive=True)):
        rel = os.path.relpath(path, entry)
        try:
            ctypes.CDLL(path)
            loaded.append(rel)
        except OSError as exc:
            failed[rel] = str(exc).rpartition(path + ": ")[2].partition(":")[0]
print(json.dumps({"loaded": loaded, "failed": failed}))
"""


def test_every_nvidia_library_loads_by_full_farm_path(torch_site: TorchSite) -> None:
    """Each wheel library loads by its farm path (RTLD_LOCAL: only its own rpaths help);
    the only failures are libraries needing something no wheel ships (MPI, InfiniBand
    verbs, libfabric, UCX plugins), exactly as in the flat directory."""
    code = "import sys, vsite; sys.argv[1:] = [vsite.activation.active().farm.path]\n" + LOAD_ALL
    farm = _json(torch_site.vsite_exec(code))
    flat = _json(_flat_load(torch_site))
    shipped = {os.path.basename(p) for p in farm["loaded"]} | {
        os.path.basename(p) for p in farm["failed"]
    }
    assert len(farm["loaded"]) >= 30
    assert farm == flat
    assert not set(farm["failed"].values()) & shipped, farm["failed"]
    # Each library from its own root (the naive layout) misses sonames other wheels ship.
    naive = _json(torch_site.plain(LOAD_ALL, torch_site.roots))
    missing = set(naive["failed"].values()) & shipped
    assert "libnvJitLink.so.13" in missing, naive["failed"]


def _flat_load(torch_site: TorchSite) -> subprocess.CompletedProcess[str]:
    command = [*hidden_system_cuda(), sys.executable, "-c", LOAD_ALL, str(torch_site.flat)]
    return _run(command, torch_site.env())


PATHFINDER = """
import json
import cuda.pathfinder as pathfinder
found = {}
for name in ("cudart", "cublas", "nvJitLink", "cusparse", "cudnn", "nccl", "nvrtc"):
    try:
        lib = pathfinder.load_nvidia_dynamic_lib(name)
        found[name] = [lib.abs_path, lib.found_via]
    except Exception as exc:
        found[name] = [None, type(exc).__name__]
print(json.dumps(found))
"""


def test_cuda_pathfinder_finds_the_wheel_libraries(torch_site: TorchSite) -> None:
    if not any(r.name.startswith("cuda_pathfinder-") for r in torch_site.roots):
        pytest.skip("cuda-pathfinder is not in the resolved torch set")
    code = "import vsite; print(vsite.activation.active().farm.path)\n" + PATHFINDER
    result = torch_site.vsite_exec(code)
    farm = result.stdout.split("\n", 1)[0]
    found = _json(result)
    for name, (path, via) in found.items():
        assert via == "site-packages", (name, path, via)
        assert path.startswith(farm + os.sep), (name, path)
    # With the roots merely on sys.path, pathfinder finds none of them.
    naive = _json(torch_site.plain(PATHFINDER, torch_site.roots))
    assert all(path is None for path, _ in naive.values()), naive


TIMED_IMPORT = """
import time
start = time.perf_counter()
import torch
print(time.perf_counter() - start)
"""


def test_report_farm_and_import_time(torch_site: TorchSite, tmp_path: Path) -> None:
    """Prints (no assertion on time): the farm's link count, the time to create it, and
    ``import torch`` through vsite vs the flat --target directory, alternating."""
    create = textwrap.dedent(f"""
        import json, time, vsite
        start = time.perf_counter()
        handle = vsite.activate({str(torch_site.manifest)!r})
        print(json.dumps({{"seconds": time.perf_counter() - start,
                          "created": handle.farm.created,
                          "links": handle.farm.plan.link_count,
                          "dirs": len(handle.farm.plan.dirs),
                          "staged": len(handle.farm.plan.staged)}}))
    """)
    fresh = tmp_path / "fresh-state"
    cold = _json(_run([sys.executable, "-c", create], torch_site.env(VSITE_DIR=str(fresh))))
    warm = _json(_run([sys.executable, "-c", create], torch_site.env(VSITE_DIR=str(fresh))))
    assert (cold["created"], warm["created"]) == (True, False)
    assert cold["links"] == warm["links"] > 0

    from vsite._startup import BOOT_DIR, ENV_MANIFEST

    vsite_env = torch_site.env(PYTHONPATH=BOOT_DIR, **{ENV_MANIFEST: str(torch_site.manifest)})
    flat_env = torch_site.env(PYTHONPATH=str(torch_site.flat))
    command = [sys.executable, "-c", TIMED_IMPORT]
    for env in (vsite_env, flat_env):  # warm the page cache and bytecode of both
        _json_float(_run(command, env))
    pairs = []
    for _ in range(5):
        pairs.append((_json_float(_run(command, vsite_env)), _json_float(_run(command, flat_env))))
    ratios = sorted(v / f for v, f in pairs)
    print(
        f"\n[torch farm] {cold['staged']} staged entries, {cold['links']} links, "
        f"{cold['dirs']} real dirs; created in {cold['seconds']:.3f} s "
        f"(activation with the farm reused: {warm['seconds']:.3f} s)"
        f"\n[import torch] vsite/flat ratio per pair: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f"; median {ratios[len(ratios) // 2]:.3f}"
        f"; vsite {min(v for v, _ in pairs):.3f} s, flat {min(f for _, f in pairs):.3f} s (best)"
    )


def _json_float(result: subprocess.CompletedProcess[str]) -> float:
    assert result.returncode == 0, result.stderr[-3000:]
    return float(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # pre-warm the cache: python tests/integration/test_torch.py
    _wheels = download_wheels()
    print(len(install_roots(_wheels)), "roots;", install_flat(_wheels))
