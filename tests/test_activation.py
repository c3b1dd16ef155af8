"""activate()/deactivate(): a transaction on the import system, undone exactly.

These tests run in this process (the import system's state is what they inspect) and
restore it afterwards through the ``sys_state`` fixture.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vsite
import vsite.pth
from tests.builders import make_root, write_manifest
from tests.conftest import SysState
from vsite import ActivationError, Manifest, ManifestError, RootError
from vsite.activation import active


def _warm() -> None:
    """Fill lazy caches first, so a later comparison sees only what activation did."""
    importlib.util.find_spec("vsite_tests_no_such_module")


def _roots(tmp_path: Path) -> list[Path]:
    a = make_root(
        tmp_path,
        "act_a",
        {
            "act_mod.py": "WHO = 'a'",
            "act_ns": {"one.py": ""},
            "act_pkg": {"__init__.py": "", "sub.py": ""},
        },
        pth={"act_a.pth": "import act_pth_mod\nextra\n"},
    )
    (a / "extra").mkdir()
    b = make_root(
        tmp_path,
        "act_b",
        {"act_ns": {"two.py": ""}, "act_pkg": {"other.py": ""}, "act_pth_mod.py": ""},
    )
    return [a, b]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "manifest.json", list(_roots(tmp_path)))


def _import_site_modules() -> None:
    for name in ("act_mod", "act_ns.one", "act_ns.two", "act_pkg.sub", "act_pkg.other"):
        importlib.import_module(name)


# -- activation ------------------------------------------------------------------------------


def test_activate_makes_the_roots_importable_as_one_site(
    manifest: Path, tmp_path: Path, sys_state: SysState
) -> None:
    handle = vsite.activate(manifest)
    assert active() is handle
    assert handle.active
    assert handle.roots == (str(tmp_path / "act_a"), str(tmp_path / "act_b"))
    assert handle.manifest == Manifest.load(manifest)
    _import_site_modules()
    assert sys.modules["act_mod"].WHO == "a"
    assert "act_pth_mod" in sys.modules  # the .pth import line ran
    assert str(tmp_path / "act_a" / "extra") in sys.path  # and its path line
    assert repr(handle).startswith(f"<vsite.Handle {str(manifest)!r} active, 2 roots")


def test_site_entry_goes_before_the_interpreters_site_packages(
    manifest: Path, sys_state: SysState
) -> None:
    site_dirs = {os.path.abspath(p) for p in site.getsitepackages()}
    first_site = next(
        (n for n, p in enumerate(sys.path) if os.path.abspath(p) in site_dirs), len(sys.path)
    )
    handle = vsite.activate(manifest)
    assert sys.path.index(handle.site_path) == first_site


def test_activate_takes_a_manifest_object(tmp_path: Path, sys_state: SysState) -> None:
    roots = _roots(tmp_path)
    handle = vsite.activate(Manifest.from_roots(roots))
    assert handle.roots == tuple(str(r) for r in roots)
    import act_mod  # type: ignore[import-not-found]  # noqa: F401  # written by the test


def test_activate_is_idempotent_for_the_same_manifest(manifest: Path, sys_state: SysState) -> None:
    handle = vsite.activate(manifest)
    path, meta, hooks = list(sys.path), list(sys.meta_path), list(sys.path_hooks)
    assert vsite.activate(manifest) is handle
    assert vsite.activate(str(manifest)) is handle
    assert vsite.activate(Manifest.load(manifest)) is handle
    assert (sys.path, sys.meta_path, sys.path_hooks) == (path, meta, hooks)
    assert sys.path.count(handle.site_path) == 1


def test_another_manifest_while_one_is_active_is_refused_unchanged(
    manifest: Path, tmp_path: Path, sys_state: SysState
) -> None:
    handle = vsite.activate(manifest)
    other = write_manifest(tmp_path / "other.json", [make_root(tmp_path, "other_root")])
    before = SysState()
    with pytest.raises(ActivationError, match="another manifest is active") as caught:
        vsite.activate(other)
    assert caught.value.manifest == str(other)
    assert SysState().changes_since(before) == {}
    assert active() is handle


# -- failed activation is a no-op -------------------------------------------------------------


def _warm_vsite(tmp_path: Path) -> None:
    """Load vsite's own lazily imported modules (a first activation does)."""
    root = make_root(tmp_path / "warm", "warm_root", {"warm_mod.py": ""})
    vsite.activate(write_manifest(tmp_path / "warm" / "m.json", [root])).deactivate(purge=True)
    _warm()


def test_missing_roots_fail_before_any_change(tmp_path: Path, sys_state: SysState) -> None:
    good = make_root(tmp_path, "good", {"good_mod.py": ""})
    manifest = write_manifest(tmp_path / "m.json", [good, "gone", "also-gone"])
    _warm_vsite(tmp_path)
    before = SysState()
    getsitepackages = site.getsitepackages
    with pytest.raises(RootError) as caught:
        vsite.activate(manifest)
    assert [p.pointer for p in caught.value.problems] == ["/roots/1", "/roots/2"]
    assert caught.value.manifest == str(manifest)
    assert SysState().changes_since(before) == {}
    assert site.getsitepackages is getsitepackages
    assert active() is None


def test_invalid_manifest_fails_before_any_change(tmp_path: Path, sys_state: SysState) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"vsite": 1, "roots": [], "x": 1}), encoding="utf-8")
    _warm_vsite(tmp_path)
    before = SysState()
    with pytest.raises(ManifestError):
        vsite.activate(manifest)
    assert SysState().changes_since(before) == {}


@pytest.mark.parametrize("failure", [RuntimeError("injected"), KeyboardInterrupt()])
def test_failure_during_install_restores_everything(
    manifest: Path, monkeypatch: pytest.MonkeyPatch, sys_state: SysState, failure: BaseException
) -> None:
    # Fail after the .pth files ran: they added a sys.path entry and imported a module.
    real = vsite.pth.run_pth_files

    def run_then_fail(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        assert "act_pth_mod" in sys.modules
        raise failure

    # A first activation loads vsite's own lazily imported modules.
    vsite.activate(manifest).deactivate(purge=True)
    sys.modules.pop("act_pth_mod", None)
    monkeypatch.setattr(vsite.pth, "run_pth_files", run_then_fail)
    _warm()
    before = SysState()
    getsitepackages = site.getsitepackages
    expected = ActivationError if isinstance(failure, Exception) else type(failure)
    with pytest.raises(expected) as caught:
        vsite.activate(manifest)
    if expected is ActivationError:
        assert caught.value.__cause__ is failure
        assert "injected" in str(caught.value)
    assert SysState().changes_since(before) == {}
    assert site.getsitepackages is getsitepackages
    assert active() is None


# -- deactivation ------------------------------------------------------------------------------


def test_deactivate_restores_path_finders_hooks_and_importer_cache(
    manifest: Path, sys_state: SysState
) -> None:
    vsite.activate(manifest).deactivate()  # load vsite's lazy imports
    sys.modules.pop("act_pth_mod", None)
    _warm()
    before = SysState()
    getsitepackages = site.getsitepackages
    handle = vsite.activate(manifest)
    _import_site_modules()
    vsite.deactivate()
    after = SysState()
    assert after.path == before.path
    assert after.meta_path == before.meta_path
    assert after.path_hooks == before.path_hooks
    assert after.path_importer_cache == before.path_importer_cache
    assert site.getsitepackages is getsitepackages
    assert active() is None
    assert not handle.active
    # Modules already imported stay...
    assert "act_ns.two" in sys.modules
    # ...but nothing new comes from the site.
    sys.modules.pop("act_pkg", None)
    sys.modules.pop("act_pkg.sub", None)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("act_pkg.sub")


def test_deactivate_with_purge_removes_every_site_module(
    manifest: Path, sys_state: SysState
) -> None:
    vsite.activate(manifest)
    _import_site_modules()
    site_modules = {
        "act_mod",
        "act_ns",
        "act_ns.one",
        "act_ns.two",
        "act_pkg",
        "act_pkg.sub",
        "act_pkg.other",
        "act_pth_mod",
    }
    assert site_modules <= set(sys.modules)
    others = set(sys.modules) - site_modules
    vsite.deactivate(purge=True)
    assert not site_modules & set(sys.modules)
    assert others <= set(sys.modules)  # nothing else was removed


def test_handle_deactivate_is_the_same_and_repeatable(manifest: Path, sys_state: SysState) -> None:
    handle = vsite.activate(manifest)
    handle.deactivate()
    path = list(sys.path)
    handle.deactivate()  # a no-op now
    vsite.deactivate()  # nothing active: a no-op
    assert sys.path == path
    assert "inactive" in repr(handle)


def test_activate_again_after_deactivate(manifest: Path, sys_state: SysState) -> None:
    first = vsite.activate(manifest)
    vsite.deactivate(purge=True)
    second = vsite.activate(manifest)
    assert second is not first
    assert second.active
    assert sys.path.count(second.site_path) == 1
    _import_site_modules()


# -- roots are never written -------------------------------------------------------------------


def _listing(roots: list[Path]) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for root in roots for path in sorted(root.rglob("*"))}


def test_activation_never_writes_inside_a_root(tmp_path: Path, sys_state: SysState) -> None:
    roots = _roots(tmp_path)
    before = _listing(roots)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # the import system's own caching is not vsite's
    try:
        vsite.activate(write_manifest(tmp_path / "m.json", list(roots)))
        _import_site_modules()
        importlib.invalidate_caches()
        vsite.deactivate(purge=True)
    finally:
        sys.dont_write_bytecode = dont_write
    assert _listing(roots) == before


# -- importing vsite changes nothing -----------------------------------------------------------

_IMPORT_PROBE = """
import json, site, sys
def state():
    return {
        "path": list(sys.path),
        "meta_path": [repr(f) for f in sys.meta_path],
        "path_hooks": [repr(h) for h in sys.path_hooks],
        "importer_cache": sorted(sys.path_importer_cache),
        "getsitepackages": site.getsitepackages.__module__,
        "modules": sorted(sys.modules),
    }
import importlib.util
importlib.util.find_spec("vsite_tests_no_such_module")
before = state()
import vsite, vsite.activation, vsite.manifest, vsite.errors
after = state()
new = [m for m in after.pop("modules") if m not in before["modules"]]
before.pop("modules")
new_files = {m: getattr(sys.modules[m], "__file__", None) for m in new}
print(json.dumps({"before": before, "after": after, "new": new_files}))
"""


def test_importing_vsite_changes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSITE_", "PYTHONPATH"))}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_IMPORT_PROBE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    data = json.loads(result.stdout)
    before, after = data["before"], data["after"]
    vsite_dir = os.path.dirname(vsite.__file__)
    # Importing vsite caches a finder for its own package directories, as any import does.
    added = [k for k in after["importer_cache"] if k not in before["importer_cache"]]
    assert all(k.startswith(vsite_dir) for k in added), added
    after["importer_cache"] = [k for k in after["importer_cache"] if k not in added]
    assert after == before
    # Only vsite itself and the standard library were imported: nothing from
    # site-packages (packaging, importlib_metadata...), so nothing of the site is shadowed.
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    for name, file in data["new"].items():
        if name == "vsite" or name.startswith("vsite."):
            assert file is not None
            assert file.startswith(vsite_dir)
        else:
            assert file is None or file.startswith(stdlib), (name, file)
