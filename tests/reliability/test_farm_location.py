"""Where the farm lives (SPEC §4): a per-user directory, created 0700, never one that
another user could have prepared.

The attacks are what another user of a shared temp directory can do before vsite first
runs: pre-create vsite's directory there as a symlink to a place they control, as their
own directory, or as one that is group- or world-writable. vsite must refuse it, never
follow it or write through it, and use the next safe candidate, or fail with one clear
line when there is none. Everything vsite creates is private: directories 0700 (farm
contents 0755 inside them), no file or directory writable by group or others, even when
the process runs with umask 0.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.builders import make_root, write_manifest
from tests.children import child_env
from tests.reliability._support import (
    NOBODY,
    VSITE,
    assert_one_line_error,
    listing,
    run,
)
from tests.reliability.conftest import native_manifest
from vsite import _paths
from vsite.errors import FarmError

PROBE = """
import json, os, sys
os.umask(int(sys.argv[2], 8))
import vsite
handle = vsite.activate(sys.argv[1])
import relnat0
print(json.dumps({"farm": handle.farm.path, "site": handle.site_path, "kind": relnat0.KIND}))
"""


def _activate(manifest: Path, env: dict[str, str], umask: int = 0o022) -> dict[str, str]:
    result = run([sys.executable, "-c", PROBE, str(manifest), oct(umask)[2:]], env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["kind"] == "native"
    return found  # type: ignore[no-any-return]


def _env(runtime: Path | None, tmpdir: Path) -> dict[str, str]:
    """No VSITE_DIR: vsite picks its base from the standard candidates."""
    env = child_env(TMPDIR=str(tmpdir))
    env.pop("VSITE_DIR", None)
    env.pop("XDG_RUNTIME_DIR", None)
    if runtime is not None:
        env["XDG_RUNTIME_DIR"] = str(runtime)
    return env


def _prepare(shared: Path, flaw: str) -> Path:
    """What the attacker leaves at ``shared/vsite`` (vsite's first candidate)."""
    planted = shared / "vsite"
    if flaw == "symlink":
        target = shared / "attacker-target"
        target.mkdir(mode=0o777)
        target.chmod(0o777)
        planted.symlink_to(target)
        if os.geteuid() == 0:  # the attacker's own; a symlink is refused whoever owns it
            os.chown(target, NOBODY, NOBODY)
            os.lchown(planted, NOBODY, NOBODY)
    elif flaw == "owned-by-another-user":
        planted.mkdir(mode=0o700)
        os.chown(planted, NOBODY, NOBODY)
    else:  # ours, but others may write into it
        planted.mkdir()
        planted.chmod(0o770 if flaw == "group-writable" else 0o777)
    return planted


@pytest.mark.parametrize(
    "flaw", ["symlink", "owned-by-another-user", "group-writable", "world-writable"]
)
def test_planted_farm_base_is_refused_and_the_next_safe_one_used(
    tmp_path: Path, extension_bytes: bytes, flaw: str
) -> None:
    if flaw == "owned-by-another-user" and os.geteuid() != 0:
        pytest.skip("only root can make a directory another user owns")
    manifest = native_manifest(tmp_path / "site", extension_bytes)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    planted = _prepare(shared, flaw)
    before = listing(shared)
    found = _activate(manifest, _env(shared, mine))
    safe = mine / f"vsite-{os.getuid()}"
    assert Path(found["farm"]).parent == safe / "farms"
    assert Path(found["site"]).parent in (safe, Path(found["farm"]).parent)
    assert listing(shared) == before  # nothing written in it, or through the link
    assert os.path.islink(planted) == (flaw == "symlink")


def test_no_safe_base_fails_native_activation_with_one_line(
    tmp_path: Path, extension_bytes: bytes
) -> None:
    manifest = native_manifest(tmp_path / "site", extension_bytes)
    target = tmp_path / "attacker-target"
    target.mkdir(mode=0o777)
    (tmp_path / "vsite").symlink_to(target)
    env = child_env(VSITE_DIR=str(tmp_path / "vsite"))  # the only candidate
    line = assert_one_line_error(
        run([*VSITE, "run", str(manifest), "-c", "import relnat0"], env=env)
    )
    assert f"refusing {tmp_path / 'vsite'}: it is a symlink" in line
    assert "no safe per-user directory for vsite" in line
    # A site without native code needs no farm: it activates without a view, writing
    # nowhere, and its metadata comes from vsite's finder instead.
    pure = write_manifest(tmp_path / "pure.json", [tmp_path / "site" / "relpure"])
    code = (
        "import importlib.metadata as m, relpure; "
        "print(relpure.WHO, [d.metadata['Name'] for d in m.distributions()].count('relpure'))"
    )
    result = run([*VSITE, "run", str(pure), "-c", code], env=env)
    assert (result.returncode, result.stdout) == (0, "pure 1\n"), result.stderr
    assert os.listdir(target) == []


def test_base_swapped_for_a_symlink_after_first_use_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "vsite"
    monkeypatch.setenv("VSITE_DIR", str(base))
    assert _paths.state_dir("farms") == str(base / "farms")
    target = tmp_path / "attacker-target"
    target.mkdir(mode=0o777)
    base.rename(tmp_path / "moved-away")
    base.symlink_to(target)
    with pytest.raises(FarmError, match="it is a symlink"):
        _paths.state_dir("farms")
    assert os.listdir(target) == []


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_everything_vsite_creates_is_private_even_under_umask_0(
    tmp_path: Path, extension_bytes: bytes, mode: str
) -> None:
    manifest = native_manifest(tmp_path / "site", extension_bytes)
    make_root(tmp_path / "site", "relpth", pth={"relpth.pth": "import relpure\n"})
    roots = [tmp_path / "site" / name for name in ("relnative", "relpure", "relpth")]
    manifest = write_manifest(manifest, roots)
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    env = _env(None, mine)
    env["VSITE_LINK_MODE"] = mode
    found = _activate(manifest, env, umask=0)
    base = mine / f"vsite-{os.getuid()}"
    farm = Path(found["farm"])
    private = {base, base / "farms", base / "index", farm}
    entries = listing(base)
    assert {Path(p) for p, (kind, *_) in entries.items() if kind == "d"} >= private
    assert any(Path(p).parent == base / "index" for p in entries)  # the index was cached
    for path, (kind, _size, _mtime, st_mode) in entries.items():
        if kind == "l":
            continue  # a symlink's own mode means nothing; its target is in a root
        assert st_mode & (stat.S_IWGRP | stat.S_IWOTH) == 0, (path, oct(st_mode))
        if Path(path) in private:
            assert stat.S_IMODE(st_mode) == 0o700, (path, oct(st_mode))
        if Path(path).is_relative_to(farm) and kind == "d":
            assert stat.S_IMODE(st_mode) in (0o700, 0o755), (path, oct(st_mode))
