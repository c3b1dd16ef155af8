"""``vsite install`` on a full file system (issue 14, point 3).

Each test mounts a small tmpfs (root only; skipped with the reason where mounting is
not permitted) for one of what ``vsite install`` writes: the store, the manifest's
directory (manifest and environment), vsite's state directory (``VSITE_DIR``: index
cache, farms). A full file system must fail with one ``vsite: error:`` line naming the
cause (exit 2, no traceback) and leave no partial store entry, farm, index or temp file
behind (every directory listed); with space again, the same install succeeds.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.reliability._install_support import (
    alpha_wheel,
    big_wheel,
    driven,
    fill,
    grow,
    in_env,
    install,
    install_env,
    keys,
    listing,
    many_modules_wheel,
    staged_wheel,
    store_problems,
    succeeded,
    temporaries,
    tmpfs,
    wheel_key,
)
from tests.reliability._support import assert_one_line_error

pytest.importorskip("installer")

ENOSPC = os.strerror(28)  # "No space left on device"


def _says(line: str, *parts: str) -> None:
    """The error ``line`` names every one of ``parts``."""
    missing = [part for part in parts if part not in line]
    assert missing == [], line


def _store_holds_only(store: Path, wanted: list[str]) -> None:
    """The store holds exactly the entries ``wanted``, each whole; nothing temporary."""
    assert store_problems(store, strict=True) == []
    assert keys(store) == sorted(wanted)
    assert temporaries(store) == []
    top = sorted(os.listdir(store)) if store.exists() else []
    assert set(top) <= {"wheels", "hashes", "locks", "environments"}, top


def test_a_wheel_too_big_for_the_store_fails_in_one_line_and_leaves_no_entry(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    small = many_modules_wheel(wheels, "small", modules=3)
    big = big_wheel(wheels, 3 << 20)  # 3 MiB of incompressible data: the wheel is as big
    env = install_env(tmp_path)
    manifest = tmp_path / "env" / "manifest.json"
    with tmpfs(tmp_path / "fs", "2m") as mount:
        store = mount / "store"
        failed = install([small, big], store, manifest, env)
        line = assert_one_line_error(failed)
        _says(line, ENOSPC)
        # Wheels unpack side by side: the line names the one that met the full disk
        # first, most often big, sometimes small (big had filled it meanwhile).
        assert big.name in line or small.name in line, line
        # The small wheel may have been unpacked meanwhile (whole); big never.
        assert wheel_key(big) not in keys(store)
        _store_holds_only(store, keys(store))
        assert set(keys(store)) <= {wheel_key(small)}
        assert not manifest.parent.exists()
        assert temporaries(tmp_path / "tmpdir", tmp_path / "state") == []

        grow(mount, "16m")
        succeeded(install([small, big], store, manifest, env))
        _store_holds_only(store, [wheel_key(small), wheel_key(big)])
        code = "import big, os; print(os.path.getsize(os.path.join(big.__path__[0], 'blob.bin')))"
        assert succeeded(in_env(manifest.parent, code, env)) == f"{3 << 20}\n"


def test_a_store_out_of_inodes_fails_in_one_line_and_leaves_no_entry(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    many = many_modules_wheel(wheels, "many", modules=40)
    env = install_env(tmp_path)
    manifest = tmp_path / "env" / "manifest.json"
    with tmpfs(tmp_path / "fs", "16m", inodes=24) as mount:  # 40 modules need more
        store = mount / "store"
        failed = install([many], store, manifest, env)
        _says(assert_one_line_error(failed), ENOSPC)
        _store_holds_only(store, [])
        assert not manifest.parent.exists()


# The file system fills up (another writer takes the space) at one exact point of the
# install: DRIVER's ``fill`` writes until ENOSPC just before the wrapped call.
FILL_POINTS = {
    # Every file of the wheel unpacked; its modules not yet compiled (their pycs and
    # then wheel.json find no space).
    "before-compiling": "import py_compile\naround(py_compile, 'compile', STAGE, action=fill)",
    # Unpacked and compiled; the entry's wheel.json not yet written.
    "before-the-entry-record": (
        "around(os, 'open', STAGE, action=fill, when=lambda path, *a, **k: "
        "os.path.basename(str(path)).startswith('wheel.json.'))"
    ),
}


@pytest.mark.parametrize("point", list(FILL_POINTS))
def test_a_store_filling_up_after_the_unpack_fails_in_one_line_and_leaves_no_entry(
    tmp_path: Path, point: str
) -> None:
    wheel = alpha_wheel(tmp_path / "wheels", 2)
    env = install_env(tmp_path)
    manifest = tmp_path / "env" / "manifest.json"
    with tmpfs(tmp_path / "fs", "4m") as mount:
        store = mount / "store"
        args = ["install", os.fspath(wheel), "--store", os.fspath(store), "-o", os.fspath(manifest)]
        failed = driven(point, FILL_POINTS[point], args, dict(env, VSITE_TEST_FILL=str(mount)))
        assert failed.returncode != -signal.SIGKILL
        assert f"vsite-test: filled at {point}\n" in failed.stdout, failed.stdout
        _says(assert_one_line_error(failed), ENOSPC)
        _store_holds_only(store, [])
        assert not manifest.parent.exists()

        (mount / "filler").unlink()
        succeeded(install([wheel], store, manifest, env))
        _store_holds_only(store, [wheel_key(wheel)])
        assert succeeded(in_env(manifest.parent, "import alpha; print(alpha.VERSION)", env)) == (
            "2\n"
        )


def test_a_full_manifest_directory_keeps_the_previous_manifest_and_environment(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    old, new = alpha_wheel(wheels, 1), alpha_wheel(wheels, 2)
    env = install_env(tmp_path)
    store = tmp_path / "store"
    with tmpfs(tmp_path / "fs", "1m") as mount:
        env_dir = mount / "env"
        manifest = env_dir / "manifest.json"
        succeeded(install([old], store, manifest, env))
        previous = manifest.read_bytes()
        before = listing(env_dir)
        fill(mount)

        failed = install([new], store, manifest, env)
        line = assert_one_line_error(failed)
        _says(line, str(manifest), "cannot write the manifest", ENOSPC)
        assert manifest.read_bytes() == previous  # byte-identical
        assert listing(env_dir) == before  # nothing added, nothing half-written
        code = "import alpha; print(alpha.VERSION)"
        assert succeeded(in_env(env_dir, code, env)) == "1\n"  # the previous environment
        _store_holds_only(store, [wheel_key(old), wheel_key(new)])  # whole entries only

        (mount / "filler").unlink()
        succeeded(install([new], store, manifest, env))
        assert succeeded(in_env(env_dir, code, env)) == "2\n"
        assert temporaries(mount, tmp_path / "state") == []


def test_a_manifest_directory_full_for_the_environment_fails_in_one_line(
    tmp_path: Path,
) -> None:
    wheel = alpha_wheel(tmp_path / "wheels", 2)
    env = install_env(tmp_path)
    store = tmp_path / "store"
    with tmpfs(tmp_path / "fs", "1m") as mount:
        env_dir = mount / "env"
        manifest = env_dir / "manifest.json"
        fill(mount, leave_blocks=1)  # room for the manifest, not for the environment

        failed = install([wheel], store, manifest, env)
        line = assert_one_line_error(failed)
        _says(line, f"cannot write the environment {env_dir}", ENOSPC)
        _store_holds_only(store, [wheel_key(wheel)])
        assert temporaries(mount, tmp_path / "state") == []

        (mount / "filler").unlink()
        succeeded(install([wheel], store, manifest, env))
        assert succeeded(in_env(env_dir, "import alpha; print(alpha.VERSION)", env)) == "2\n"
        assert temporaries(mount, tmp_path / "state") == []


def test_a_full_state_directory_leaves_no_index_or_farm_and_fails_activation_in_one_line(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    natty, alpha = staged_wheel(wheels), alpha_wheel(wheels, 2)
    store = tmp_path / "store"
    env_dir = tmp_path / "env"
    with tmpfs(tmp_path / "fs", "64k", mode=0o700) as mount:
        state = mount / "state"
        state.mkdir(mode=0o700)
        env = install_env(tmp_path, VSITE_DIR=str(state))
        fill(mount)

        # The index is a cache: the install succeeds without one.
        succeeded(install([natty, alpha], store, env_dir / "manifest.json", env))
        assert [p for p in listing(state) if not p.endswith("/")] == []  # no file at all
        _store_holds_only(store, [wheel_key(natty), wheel_key(alpha)])

        # Activating a site with a staged package builds its farm: there is no room.
        failed = in_env(env_dir, "import alpha", env)
        line = assert_one_line_error(failed)
        _says(line, "cannot build farm", ENOSPC)
        assert [p for p in listing(state) if not p.endswith("/")] == []  # no farm, no temp
        assert sorted(listing(state)) in (["index/"], ["farms/", "index/"])

        (mount / "filler").unlink()
        code = "import natty; print(natty.KIND, natty.__file__)"
        kind, origin = succeeded(in_env(env_dir, code, env)).split()
        assert kind == "staged"
        assert Path(origin).is_relative_to(state / "farms")
        assert temporaries(state) == []
