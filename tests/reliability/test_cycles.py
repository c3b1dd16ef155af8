"""Activate/deactivate cycles (SPEC §2: deactivate restores sys.path, sys.meta_path,
sys.path_hooks and sys.path_importer_cache as they were).

1,000 cycles of activate, import, ``deactivate(purge=True)`` over a site with native code
and a ``.pth`` file, and 1,000 failed activations, leave the import system's lists, the
importer cache, ``sys.modules`` and the process's open file descriptors the size they
were after the first cycle (which may fill lazy caches once); the lists are equal to
their state before any cycle.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest
from tests.conftest import SysState
from tests.reliability.conftest import native_manifest

CYCLES = 1000


def _open_fds() -> int:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count open file descriptors")
    return len(os.listdir("/proc/self/fd"))


def _sizes() -> dict[str, int]:
    return {
        "sys.path": len(sys.path),
        "sys.meta_path": len(sys.meta_path),
        "sys.path_hooks": len(sys.path_hooks),
        "sys.path_importer_cache": len(sys.path_importer_cache),
        "sys.modules": len(sys.modules),
        "open fds": _open_fds(),
    }


def _lists() -> tuple[list[object], ...]:
    return (list(sys.path), list(sys.meta_path), list(sys.path_hooks))


def _site(base: Path, extension: bytes) -> Path:
    native_manifest(base, extension)
    extra = make_root(
        base,
        "relcyc",
        {"relcyc_ns": {"x.py": ""}, "relcyc_dir": {}},
        pth={"relcyc.pth": "relcyc_dir\nimport relcyc_ns.x\n"},
    )
    return write_manifest(base / "manifest.json", [base / "relnative", base / "relpure", extra])


def _cycle(manifest: Path) -> None:
    handle = vsite.activate(manifest)
    import relnat0  # type: ignore[import-not-found]  # written by the test
    import relpure  # type: ignore[import-not-found]  # written by the test

    assert (relnat0.KIND, relpure.WHO) == ("native", "pure")
    assert "relcyc_ns.x" in sys.modules  # the .pth file ran
    handle.deactivate(purge=True)


def test_a_thousand_activate_deactivate_cycles_leave_no_growth(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes
) -> None:
    manifest = _site(tmp_path, extension_bytes)
    importlib.util.find_spec("vsite_reliability_no_such_module")  # fill lazy caches
    lists = _lists()
    _cycle(manifest)
    warm = _sizes()
    for _ in range(CYCLES):
        _cycle(manifest)
    assert _sizes() == warm
    assert _lists() == lists
    assert not any(name.startswith(("relnat", "relpure", "relcyc")) for name in sys.modules)


def test_a_thousand_failed_activations_leave_no_growth(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes
) -> None:
    """Failures at each stage: an unusable manifest, a missing root (both found before
    any change), and an undecodable .pth file (found while installing, then undone)."""
    good = _site(tmp_path / "good", extension_bytes)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"vsite": 1, "roots": [', encoding="utf-8")
    missing = write_manifest(tmp_path / "missing.json", [tmp_path / "good" / "relpure", "gone"])
    undecodable = make_root(tmp_path, "relundec", {"relundec.pth": b"import sys\n\xff\xfe\n"})
    roots = [tmp_path / "good" / name for name in ("relnative", "relpure", "relcyc")]
    late = write_manifest(tmp_path / "late.json", [*roots, undecodable])
    importlib.util.find_spec("vsite_reliability_no_such_module")
    lists = _lists()
    failures = [(bad_json, vsite.ManifestError), (missing, vsite.RootError)]
    failures.append((late, vsite.ActivationError))
    for manifest, error in failures:  # once each, to fill lazy caches
        with pytest.raises(error):
            vsite.activate(manifest)
    _cycle(good)
    warm = _sizes()
    for number in range(CYCLES):
        manifest, error = failures[number % len(failures)]
        with pytest.raises(error):
            vsite.activate(manifest)
    assert _sizes() == warm
    assert _lists() == lists
    assert vsite.activation.active() is None
