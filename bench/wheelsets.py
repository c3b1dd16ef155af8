"""The wheel sets of the envsetup section: the files to install and how to check them.

``n<N>``: N small synthetic wheels holding the roots of ``trees.py`` (METADATA, WHEEL,
RECORD with hashes), built once under ``bench/trees/envsetup/n<N>/`` and byte-identical
on rebuild (the store keys on the file). ``torch``: the wheels already downloaded for the
native tests (``~/.cache/vsite-tests/torch-wheels``), used in place, or the reason why
not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

from trees import _root_files, dist_name, package_name
from workloads import spread

__all__ = ["TORCH_WHEELS", "WheelSet", "synthetic_wheels", "torch_wheels"]

GENERATOR = 1  # bump when the synthetic wheels change
TORCH_WHEELS = Path.home() / ".cache" / "vsite-tests" / "torch-wheels"


class WheelSet:
    """Wheel files to install, where their store lives, and how to check an environment."""

    def __init__(self, name: str, wheels: list[Path], home: Path, *, persistent: bool) -> None:
        self.name = name
        self.wheels = wheels
        self.home = home  # store/, first.json, uv-warmed live here
        self.persistent = persistent  # keep the store between runs (a rebuild is slow)
        self.wheel_dir = wheels[0].parent
        self.dists = [_wheel_dist(path) for path in wheels]
        self.top_level = "benchpkg_0000"

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def size_mib(self) -> float:
        return sum(path.stat().st_size for path in self.wheels) / 2**20

    def check(self) -> tuple[list[str], str]:
        """``probes/environment.py``'s check arguments, and the value it must print."""
        pairs = [self.dists[i] for i in spread(len(self.dists), 50)]
        args = ["--check", self.top_level, *(name for name, _ in pairs)]
        return args, repr(([version for _, version in pairs], True))


def _wheel_dist(path: Path) -> tuple[str, str]:
    name, version = path.name.split("-")[:2]
    return name.replace("_", "-"), version


def _record_line(rel: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}"


def _write_wheel(path: Path, files: dict[str, bytes]) -> None:
    """A wheel with fixed timestamps, so the same content gives the same file (store key)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, data in files.items():
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def synthetic_wheels(base: Path, n: int, *, fresh: bool = False) -> WheelSet:
    """N wheels holding the roots of ``trees.py`` (built once, reused while unchanged)."""
    home = base / "envsetup" / f"n{n}"
    wheel_dir = home / "wheels"
    stamp = home / "wheels-stamp.json"
    want = json.dumps({"generator": GENERATOR, "n": n})
    if fresh or not (stamp.exists() and stamp.read_text() == want):
        if wheel_dir.exists():
            shutil.rmtree(wheel_dir)
        wheel_dir.mkdir(parents=True)
        for i in range(n):
            files = _root_files(i)
            info = next(rel.split("/")[0] for rel in files if rel.endswith(".dist-info/METADATA"))
            # An installer writes INSTALLER and RECORD itself; a wheel carries RECORD only.
            files = {
                rel: data
                for rel, data in files.items()
                if rel not in (f"{info}/INSTALLER", f"{info}/RECORD")
            }
            record = [_record_line(rel, data) for rel, data in files.items()]
            files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
            _write_wheel(wheel_dir / f"{dist_name(i)}-1.0.{i}-py3-none-any.whl", files)
        stamp.write_text(want)
    wheels = sorted(wheel_dir.glob("*.whl"))
    found = WheelSet(f"n{n}", wheels, home, persistent=False)
    found.top_level = package_name(n - 1)
    return found


def torch_wheels(base: Path, wheel_dir: Path, python_tag: str) -> WheelSet | str:
    """The torch set, or why it is skipped."""
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not any(path.name.startswith("torch-") for path in wheels):
        return f"no torch wheel in {wheel_dir}"
    torch = next(path for path in wheels if path.name.startswith("torch-"))
    if f"-{python_tag}-" not in torch.name:
        return f"{torch.name} is not for this interpreter ({python_tag})"
    found = WheelSet("torch", wheels, base / "envsetup" / "torch", persistent=True)
    found.top_level = "torch"
    return found
