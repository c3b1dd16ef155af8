"""Synthetic trees for the benchmarks: N roots, the same files in one flat directory.

Each root holds one distribution: ``bench_dist_NNNN-1.0.NNNN.dist-info`` (METADATA,
RECORD with real hashes, entry_points.txt for every 10th root) and a package
``benchpkg_NNNN`` of ``__init__`` plus 3 submodules. Every 20th root (5%) also
contributes a portion ``nsbench/portion_NNNN.py`` to the PEP 420 namespace package
``nsbench``.

Three interpreters, all ``venv --without-pip`` of one base Python (so nothing from a
global site-packages leaks in, and each layout's site dir sits where ``site`` puts it):

- ``flat``: a venv whose site-packages IS the union of the roots (the reference);
- ``naive``: a venv whose site-packages holds one ``.pth`` listing every root, so all
  roots are on ``sys.path`` right after site-packages;
- ``vsite``: an empty venv (shared by all N); vsite puts its entry before its
  site-packages, in-process (``vsite.activate``) or through the boot path.

Two manifests of the same roots: ``manifest.json`` (foreign roots, verified at start)
and ``manifest-immutable.json`` (``"immutable": true``: vsite never stats the roots at
start). Both are written again whenever their bytes differ, so an older tree gets the
second one without a rebuild.

Trees are rebuilt when the generator, N or the base Python changed (a stamp file).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["GENERATOR", "Tree", "base_venv", "ensure_tree", "venv_python"]

GENERATOR = 4  # bump when the layout below changes
HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "trees"
EP_GROUP = "vsite_bench.plugins"
NAMESPACE = "nsbench"


class Tree:
    """Paths of one generated tree of ``n`` roots."""

    def __init__(self, base: Path, n: int) -> None:
        self.n = n
        self.dir = base / f"n{n}"
        self.roots_dir = self.dir / "roots"
        self.manifest = self.dir / "manifest.json"
        self.immutable_manifest = self.dir / "manifest-immutable.json"
        self.flat_venv = self.dir / "venv-flat"
        self.naive_venv = self.dir / "venv-naive"

    def root(self, i: int) -> Path:
        return self.roots_dir / f"r{i:04d}"

    @property
    def roots(self) -> list[Path]:
        return [self.root(i) for i in range(self.n)]

    @property
    def packages(self) -> list[str]:
        return [package_name(i) for i in range(self.n)]

    @property
    def dists(self) -> list[str]:
        return [dist_name(i) for i in range(self.n)]

    @property
    def entry_point_count(self) -> int:
        return sum(1 for i in range(self.n) if has_entry_point(i))

    @property
    def namespace_portions(self) -> list[str]:
        return [f"portion_{i:04d}" for i in range(self.n) if has_portion(i)]


def package_name(i: int) -> str:
    return f"benchpkg_{i:04d}"


def dist_name(i: int) -> str:
    return f"bench_dist_{i:04d}"


def has_entry_point(i: int) -> bool:
    return i % 10 == 0


def has_portion(i: int) -> bool:
    return i % 20 == 0


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3.*/site-packages"))
    if len(found) != 1:
        raise RuntimeError(f"cannot find site-packages in {venv}")
    return found[0]


def _module(text: str) -> bytes:
    return text.encode("utf-8")


def _root_files(i: int) -> dict[str, bytes]:
    """Relative path -> content of root ``i`` (the dist-info RECORD is added after)."""
    pkg = package_name(i)
    dist = dist_name(i)
    files: dict[str, bytes] = {
        f"{pkg}/__init__.py": _module(f'"""Benchmark package {i}."""\n\nNUMBER = {i}\n'),
    }
    for sub in ("a", "b", "c"):
        files[f"{pkg}/{sub}.py"] = _module(
            f'"""{pkg}.{sub}"""\n\nVALUE = {i}\n\n\n'
            f"def main() -> int:\n    return VALUE\n\n\n"
            f"class Thing:\n    def __init__(self) -> None:\n        self.value = VALUE\n"
        )
    if has_portion(i):
        files[f"{NAMESPACE}/portion_{i:04d}.py"] = _module(f"PORTION = {i}\n")
    info = f"{dist}-1.0.{i}.dist-info"
    files[f"{info}/METADATA"] = _module(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.{i}\n"
        f"Summary: Synthetic distribution {i} for vsite benchmarks\nRequires-Python: >=3.9\n"
    )
    files[f"{info}/WHEEL"] = _module(
        "Wheel-Version: 1.0\nGenerator: vsite-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/INSTALLER"] = b"vsite-bench\n"
    files[f"{info}/top_level.txt"] = _module(f"{pkg}\n")
    if has_entry_point(i):
        files[f"{info}/entry_points.txt"] = _module(
            f"[{EP_GROUP}]\nplugin_{i:04d} = {pkg}.a:main\n\n"
            f"[console_scripts]\nbench-{i:04d} = {pkg}.b:main\n"
        )
    record = []
    for rel, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = _module("\n".join(record) + "\n")
    return files


def _write(base: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _make_venv(python: str, venv: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)


def _stamp(python: str, n: int) -> str:
    return json.dumps({"generator": GENERATOR, "python": python, "n": n})


def base_venv(base: Path, python: str) -> Path:
    """The empty venv the vsite layouts run in (shared by every N)."""
    venv = base / "venv-empty"
    stamp = venv / "bench-stamp.json"
    if not (stamp.exists() and stamp.read_text() == _stamp(python, 0)):
        _make_venv(python, venv)
        stamp.write_text(_stamp(python, 0))
    return venv


def _write_manifests(tree: Tree) -> None:
    """The verified and the immutable manifest, rewritten only when their bytes differ
    (a rewrite would only change the file's identity, not what vsite caches by)."""
    roots = [f"roots/{root.name}" for root in tree.roots]
    for path, extra in ((tree.manifest, {}), (tree.immutable_manifest, {"immutable": True})):
        text = json.dumps({"vsite": 1, **extra, "roots": roots}, indent=1)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def ensure_tree(base: Path, n: int, python: str, *, fresh: bool = False) -> tuple[Tree, bool]:
    """Build (or reuse) the tree of ``n`` roots; return it and whether it was rebuilt."""
    tree = Tree(base, n)
    stamp = tree.dir / "bench-stamp.json"
    if not fresh and stamp.exists() and stamp.read_text() == _stamp(python, n):
        _write_manifests(tree)
        return tree, False
    if tree.dir.exists():
        shutil.rmtree(tree.dir)
    tree.roots_dir.mkdir(parents=True)
    _make_venv(python, tree.flat_venv)
    _make_venv(python, tree.naive_venv)
    flat = site_packages(tree.flat_venv)
    for i in range(n):
        files = _root_files(i)
        _write(tree.root(i), files)
        _write(flat, files)  # no two roots share a file: the flat union is a plain copy
    naive = site_packages(tree.naive_venv)
    (naive / "vsite_bench_roots.pth").write_text(
        "".join(f"{root}\n" for root in tree.roots), encoding="utf-8"
    )
    _write_manifests(tree)
    stamp.write_text(_stamp(python, n))
    return tree, True


if __name__ == "__main__":  # python bench/trees.py N...: build trees only
    for arg in sys.argv[1:]:
        built, rebuilt = ensure_tree(DEFAULT_DIR, int(arg), sys.executable)
        print(built.dir, "rebuilt" if rebuilt else "up to date")
