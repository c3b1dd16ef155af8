"""torch 2.14.1 and its ~29 distributions, one root per wheel, under ``vsite exec``.

The wheels come from ``pip download torch==2.14.1`` (the local wheel store) into a cache
outside the repository; each is installed with ``pip install --no-deps --no-compile
--target ROOT`` into its own root, built in a temporary sibling and renamed into place so
an interrupted run never leaves half a root. The first run installs several GB; later
runs reuse the cache. ``VSITE_TORCH_CACHE`` (else ``VSITE_TESTS_CACHE``) moves the cache;
``python -m tests.integration.test_torch`` fills it ahead of a test run. When the wheels
or the loader that hides the system's CUDA cannot be had, the tests skip, or fail in
required mode (tests/conftest.py). ``bench/torch_import.py`` times ``import torch``.
"""

from __future__ import annotations

import json
import os
import platform
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from tests import real_roots
from tests.conftest import require_or_skip
from tests.real_roots import install_target, pip_download

TORCH = "torch==2.14.1"
WHEELS_PYTHON = (3, 11)  # the cached wheels are cp311
CACHE = Path(os.environ.get("VSITE_TORCH_CACHE") or real_roots.CACHE)
WHEELS = CACHE / "torch-wheels"
ROOTS = CACHE / "torch-roots"
FLAT = CACHE / "torch-flat"


def download_wheels() -> list[Path]:
    """The torch set's wheels, downloaded once."""
    stamp = WHEELS / ".complete"
    if not stamp.exists():
        pip_download(WHEELS, TORCH, timeout=1800)
        stamp.write_text("\n".join(sorted(p.name for p in WHEELS.glob("*.whl"))) + "\n")
    names = stamp.read_text().split()
    wheels = [WHEELS / name for name in names]
    if not any(name.startswith("torch-2.14.1-") for name in names) or not all(
        w.exists() for w in wheels
    ):
        require_or_skip(f"the {TORCH} wheel set in {WHEELS} is incomplete; delete it to retry")
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
    if not os.path.exists(LOADER):
        require_or_skip(
            f"{LOADER} is missing: without it the system's ld.so.cache (and any CUDA it"
            " lists) cannot be hidden, so the wheels' libraries would prove nothing"
        )
    return [LOADER, "--inhibit-cache"]


class TorchSite:
    """The cached roots, their manifest, the flat directory, and how to run probes.

    Every probe runs with no LD_LIBRARY_PATH / CUDA_HOME and without ld.so.cache: any
    CUDA library must come from the wheels."""

    def __init__(
        self, roots: list[Path], manifest: Path, flat: Path, state: Path, loader: list[str]
    ) -> None:
        self.roots = roots
        self.manifest = manifest
        self.flat = flat
        self.state = state
        self.loader = loader

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
        command += [*self.loader, sys.executable, "-c", code]
        return _run(command, self.env(**env))

    def plain(self, code: str, path: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
        """``python -c CODE`` with ``path`` as PYTHONPATH (the naive and flat layouts)."""
        command = [*self.loader, sys.executable, "-c", code]
        return _run(command, self.env(PYTHONPATH=os.pathsep.join(map(str, path)), **env))


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=600
    )


@pytest.fixture(scope="module")
def torch_site(tmp_path_factory: pytest.TempPathFactory) -> TorchSite:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("torch 2.14.1's CUDA wheel set is for linux x86_64")
    if sys.version_info[:2] != WHEELS_PYTHON:
        pytest.skip("the cached wheels are cp311")
    loader = hidden_system_cuda()  # before downloading GBs that would prove nothing
    wheels = download_wheels()
    roots = install_roots(wheels)
    flat = install_flat(wheels)
    base = tmp_path_factory.mktemp("torch")
    manifest = base / "manifest.json"
    manifest.write_text(json.dumps({"vsite": 1, "roots": [str(r) for r in roots]}, indent=1))
    return TorchSite(roots, manifest, flat, base / "state", loader)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


_PT_LOAD, _PT_DYNAMIC, _DT_STRTAB, _DT_SONAME = 1, 2, 5, 14


def elf_soname(path: str) -> str | None:
    """DT_SONAME of a 64-bit little-endian ELF file; None when it has none or is not one.

    Reads only the headers, the dynamic section and the name (tests/native_builders.py's
    ``dynamic_tags`` reads the whole file: CUDA libraries run to hundreds of MB)."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
            if head[:4] != b"\x7fELF" or head[4:6] != b"\x02\x01":
                return None
            (phoff,) = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            file.seek(phoff)
            table = file.read(phentsize * phnum)
            loads, dynamic = [], None
            for at in range(0, phentsize * phnum, phentsize):
                kind, _, offset, vaddr, _, size = struct.unpack_from("<IIQQQQ", table, at)
                if kind == _PT_LOAD:
                    loads.append((vaddr, offset, size))
                elif kind == _PT_DYNAMIC:
                    dynamic = (offset, size)
            if dynamic is None:
                return None
            file.seek(dynamic[0])
            section = file.read(dynamic[1])
            tags = dict(struct.iter_unpack("<qQ", section[: len(section) // 16 * 16]))
            if _DT_STRTAB not in tags or _DT_SONAME not in tags:
                return None
            strtab = tags[_DT_STRTAB]
            file.seek(next(o + strtab - v for v, o, n in loads if v <= strtab < v + n))
            file.seek(tags[_DT_SONAME], os.SEEK_CUR)
            return file.read(4096).partition(b"\0")[0].decode("utf-8", "surrogateescape")
    except (OSError, struct.error, StopIteration):
        return None


def shipped_sonames(roots: Iterable[Path]) -> set[str]:
    """The DT_SONAME of every shared library the roots hold (file names differ: the cupti
    wheel ships libcupti.so and libcupti.so.2026.2.0, both libcupti.so.13). Extension
    modules have none: the import system loads them by path, not by soname."""
    libraries = (
        str(path)
        for root in roots
        for path in root.rglob("*.so*")
        if path.is_file() and (path.name.endswith(".so") or ".so." in path.name)
    )
    return {soname for soname in map(elf_soname, libraries) if soname is not None}


def wheel_mapping_problems(
    mapped: Iterable[tuple[str, str, str]],
    shipped: set[str],
    allowed: Iterable[str],
    soname_of: Callable[[str], str | None] = elf_soname,
) -> tuple[dict[str, list[str]], list[str]]:
    """(soname -> mapped paths, problems) for the mapped files whose soname a wheel ships.

    ``mapped`` holds (path, device, inode) per mapped file, as /proc/PID/maps names them
    (real paths); a problem is such a file outside every ``allowed`` directory (a distro
    or system copy), or a soname mapped from more than one file."""
    prefixes = tuple(os.path.join(os.path.realpath(p), "") for p in allowed)
    paths: dict[str, list[str]] = {}
    inodes: dict[str, set[tuple[str, str]]] = {}
    problems = []
    for path, device, inode in sorted(set(mapped)):
        soname = soname_of(path)
        if soname is None or soname not in shipped:
            continue
        paths.setdefault(soname, []).append(path)
        inodes.setdefault(soname, set()).add((device, inode))
        if not path.startswith(prefixes):
            problems.append(f"{soname}: {path} is outside the roots and the farm")
    problems += [
        f"{soname}: {len(inodes[soname])} files mapped: {found}"
        for soname, found in paths.items()
        if len(inodes[soname]) > 1
    ]
    return paths, problems


def test_wheel_mapping_problems_name_a_system_copy_and_a_second_file() -> None:
    def soname_of(path: str) -> str | None:
        if path.endswith(".cpython-311-x86_64-linux-gnu.so"):
            return None  # extension modules: same names in several packages, no soname
        return "libcudart.so.13" if "libcudart" in path else os.path.basename(path)

    mapped = [
        ("/roots/nvidia-cublas/nvidia/cublas/lib/libcublas.so.13", "fd:01", "11"),
        ("/roots/nvidia-cublas/nvidia/cublas/lib/libcublas.so.13", "fd:01", "11"),
        ("/farm/nvidia/cublas/lib/libcublasLt.so.13", "fd:01", "12"),
        ("/roots/other/nvidia/cublas/lib/libcublasLt.so.13", "fd:01", "13"),
        ("/usr/lib/x86_64-linux-gnu/libcudart.so.13.0.96", "fd:01", "14"),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "fd:01", "15"),
        ("/roots/a/cuda/bindings/driver.cpython-311-x86_64-linux-gnu.so", "fd:01", "16"),
        ("/roots/a/cuda/bindings/_bindings/driver.cpython-311-x86_64-linux-gnu.so", "fd:01", "17"),
    ]
    shipped = {"libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13"}
    paths, problems = wheel_mapping_problems(mapped, shipped, ["/roots", "/farm"], soname_of)
    assert sorted(paths) == sorted(shipped)
    assert problems == [
        "libcudart.so.13: /usr/lib/x86_64-linux-gnu/libcudart.so.13.0.96 is outside the"
        " roots and the farm",
        "libcublasLt.so.13: 2 files mapped: ['/farm/nvidia/cublas/lib/libcublasLt.so.13',"
        " '/roots/other/nvidia/cublas/lib/libcublasLt.so.13']",
    ]
    # A prefix is a directory: /roots-old is not under /roots.
    mapped = [("/roots-old/libcublas.so.13", "fd:01", "11")]
    assert wheel_mapping_problems(mapped, shipped, ["/roots"], soname_of)[1]


MAPPED = """
def mapped():
    # (path, device, inode) of every file mapped into this process
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                found.add((fields[5].strip(), fields[3], fields[4]))
    return sorted(found)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no /proc/self/maps")
def test_elf_soname_reads_a_mapped_library_and_declines_other_files(tmp_path: Path) -> None:
    probe: dict[str, Any] = {}
    exec(MAPPED, probe)
    libc = [path for path, _, _ in probe["mapped"]() if os.path.basename(path) == "libc.so.6"]
    if not libc:
        pytest.skip("this interpreter maps no libc.so.6 (not glibc)")
    assert elf_soname(libc[0]) == "libc.so.6"
    (tmp_path / "text.so").write_text("not an ELF file")
    assert elf_soname(str(tmp_path / "text.so")) is None
    assert elf_soname(str(tmp_path / "absent.so")) is None


@pytest.mark.realwheels
@pytest.mark.slow
def test_torch_computes_with_rtld_global_under_vsite_exec(torch_site: TorchSite) -> None:
    code = MAPPED + textwrap.dedent("""
        import json, torch, vsite
        result = torch.ones(3) @ torch.ones(3)
        print(json.dumps({
            "result": float(result),
            "torch_file": torch.__file__,
            "farm": vsite.activation.active().farm.path,
            "mapped": mapped(),
        }))
    """)
    out = _json(torch_site.vsite_exec(code, TORCH_USE_RTLD_GLOBAL="1"))
    assert out["result"] == 3.0
    assert out["torch_file"] == os.path.join(out["farm"], "torch", "__init__.py")
    # Every mapped file whose soname a wheel ships is one file (one inode per soname)
    # under the roots or the farm: none from a system CUDA or a distro directory.
    shipped = shipped_sonames(torch_site.roots)
    mapped = [tuple(entry) for entry in out["mapped"]]
    allowed = [*map(str, torch_site.roots), out["farm"]]
    paths, problems = wheel_mapping_problems(mapped, shipped, allowed)
    assert not problems, problems
    # ... and the check covered the CUDA runtime and its math libraries.
    assert {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"} <= set(paths), paths


@pytest.mark.realwheels
@pytest.mark.slow
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


@pytest.mark.realwheels
@pytest.mark.slow
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
    command = [*torch_site.loader, sys.executable, "-c", LOAD_ALL, str(torch_site.flat)]
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


@pytest.mark.realwheels
@pytest.mark.slow
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


if __name__ == "__main__":  # pre-warm the cache: python -m tests.integration.test_torch
    _wheels = download_wheels()
    print(len(install_roots(_wheels)), "roots;", install_flat(_wheels))
