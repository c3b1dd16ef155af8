"""Read-only roots (SPEC §3: "Never write inside a root. Roots may be read-only").

Roots made read-only with ``chmod -R a-w`` activate and import; a listing of every path
in them (kind, size, mtime, mode) is the same before and after. Root itself may write
anywhere, so the listing, not a permission error, is what proves nothing was written;
the run as the roots' owner (nobody) keeps bytecode writing on, as a user's would be.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import stat
import sys
from pathlib import Path

from tests.builders import make_root, write_manifest
from tests.reliability._support import (
    VSITE,
    as_other_user,
    listing,
    owned_by_nobody,
    require_root,
    run,
    warm_for_other_user,
)
from tests.reliability.conftest import native_manifest


def _site(base: Path, extension: bytes) -> tuple[Path, list[Path]]:
    """A native root, a pure root, and a root with a .pth file and metadata to read."""
    manifest = native_manifest(base, extension)
    extra = make_root(
        base,
        "relro",
        {"relro_pkg": {"__init__.py": "", "sub.py": "Y = 2\n"}},
        pth={"relro.pth": "import relro_pkg.sub\n"},
        entry_points={"console_scripts": {"relro": "relro_pkg:main"}},
    )
    roots = [base / "relnative", base / "relpure", extra]
    return write_manifest(manifest, roots), roots


def _chmod_a_minus_w(roots: list[Path]) -> None:
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                mode = os.lstat(path).st_mode
                os.chmod(path, stat.S_IMODE(mode) & ~0o222)
        root.chmod(stat.S_IMODE(root.stat().st_mode) & ~0o222)


def _use_the_site(manifest: Path) -> dict[str, object]:
    """Activate, import everything, read metadata, check, deactivate: what vsite can do."""
    import vsite
    import vsite.tools.check

    handle = vsite.activate(manifest)
    found: dict[str, object] = {}
    for name in ("relnat0", "relpure", "relro_pkg", "relro_pkg.sub"):
        found[name] = getattr(importlib.import_module(name), "__file__", None)
    found["farm"] = handle.farm.path if handle.farm is not None else None
    found["version"] = importlib.metadata.version("relro")
    found["scripts"] = [ep.name for ep in importlib.metadata.distribution("relro").entry_points]
    found["check ok"] = vsite.tools.check.check(vsite.Manifest.load(manifest)).ok
    importlib.invalidate_caches()
    vsite.deactivate(purge=True)
    return found


def test_read_only_roots_of_their_owner_activate_and_are_never_written(
    shared_tmp: Path, extension_bytes: bytes
) -> None:
    require_root()
    manifest, roots = _site(shared_tmp, extension_bytes)
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), 65534, 65534)
        os.chown(root, 65534, 65534)
    _chmod_a_minus_w(roots)
    state = owned_by_nobody(shared_tmp / "nobody") / "vsite"
    warm_for_other_user()
    before = listing(*roots)

    def owner() -> dict[str, object]:
        os.environ["VSITE_DIR"] = str(state)
        sys.dont_write_bytecode = False  # the import system may try: only vsite must not
        return _use_the_site(manifest)

    found = as_other_user(owner)
    assert isinstance(found, dict)
    assert found["relpure"] == str(roots[1] / "relpure" / "__init__.py")
    assert str(found["relnat0"]).startswith(str(state))  # through the farm
    assert found["version"] == "1.0"
    assert "relro" in found["scripts"]
    assert found["check ok"]
    assert listing(*roots) == before


def test_read_only_roots_on_the_command_line_are_never_written(
    tmp_path: Path, extension_bytes: bytes
) -> None:
    manifest, roots = _site(tmp_path / "site", extension_bytes)
    _chmod_a_minus_w(roots)
    before = listing(*roots)
    code = "import relnat0, relpure, relro_pkg.sub; print(relnat0.KIND)"
    for args in (
        ["run", str(manifest), "-c", code],
        ["exec", str(manifest), "--", sys.executable, "-c", code],
        ["check", str(manifest)],
        ["index", str(manifest)],  # writes its sidecar next to the manifest, not in a root
    ):
        result = run([*VSITE, *args])
        assert result.returncode == 0, (args, result.stderr)
        if args[0] != "check" and args[0] != "index":
            assert result.stdout == "native\n"
    assert listing(*roots) == before
