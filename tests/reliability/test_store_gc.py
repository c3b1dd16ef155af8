"""``vsite store gc``: entries no registered environment uses go, never one in use.

Environments are registered by ``vsite install -o M``; a live process holds the store
entries of its site (a shared lock on a file listing them, vsite/store_holds.py), so an
environment whose manifest was rewritten or deleted under a running program keeps its
entries until the program exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.children import child_env
from tests.test_install import make_wheel
from vsite.errors import StoreError
from vsite.tools.install import install_command
from vsite.tools.install.collect import collect

VSITE = [sys.executable, "-m", "vsite"]


def entries(store: Path) -> set[str]:
    return {p.name for p in (store / "wheels").iterdir()}


def install(tmp_path: Path, store: Path, env: str, *names: str) -> tuple[Path, set[str]]:
    wheels = [
        make_wheel(tmp_path / "w", name, {f"{name}.py": f"NAME = {name!r}\n"}) for name in names
    ]
    manifest = tmp_path / env / "manifest.json"
    result = install_command(
        [os.fspath(w) for w in wheels], [], os.fspath(manifest), store_path=os.fspath(store)
    )
    return manifest, {os.path.basename(entry.path) for entry in result.entries}


def test_entries_of_a_deleted_environment_go_and_shared_ones_stay(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _, a = install(tmp_path, store, "a", "shared", "alpha")
    b_manifest, b = install(tmp_path, store, "b", "shared", "beta")
    assert len(entries(store)) == 3
    b_manifest.unlink()
    found = collect(os.fspath(store))
    only_b = b - a
    assert {os.path.basename(p) for p in found.removed} == only_b
    assert entries(store) == a
    assert found.dropped == [os.fspath(b_manifest)]
    assert [n for n in os.listdir(store / "wheels") if n.startswith(".")] == []
    # What stays still works.
    result = subprocess.run(
        [*VSITE, "run", os.fspath(tmp_path / "a" / "manifest.json"), "-c", "import shared, alpha"],
        capture_output=True, text=True, env=child_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_dry_run_removes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    manifest, made = install(tmp_path, store, "a", "alpha")
    manifest.unlink()
    found = collect(os.fspath(store), dry_run=True)
    assert {os.path.basename(p) for p in found.removed} == made
    assert entries(store) == made


def test_entries_a_live_process_uses_stay_until_it_exits(tmp_path: Path) -> None:
    store = tmp_path / "store"
    manifest, made = install(tmp_path, store, "a", "alpha")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    env = child_env(VSITE_DIR=os.fspath(state))
    code = "import sys, alpha; print('ready', flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [*VSITE, "run", os.fspath(manifest), "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    ) as program:  # fmt: skip
        assert program.stdout is not None
        assert program.stdout.readline() == "ready\n"
        manifest.unlink()  # the environment is gone; the program still runs on it
        os.environ["VSITE_DIR"], saved = os.fspath(state), os.environ.get("VSITE_DIR", "")
        try:
            held = collect(os.fspath(store))
            assert (held.removed, held.held) == ([], len(made))
            assert entries(store) == made
            program.communicate("", timeout=60)
            gone = collect(os.fspath(store))
        finally:
            os.environ["VSITE_DIR"] = saved
    assert {os.path.basename(p) for p in gone.removed} == made
    assert entries(store) == set()


def test_an_unreadable_registered_manifest_stops_the_collection(tmp_path: Path) -> None:
    store = tmp_path / "store"
    manifest, _made = install(tmp_path, store, "a", "alpha")
    other, _ = install(tmp_path, store, "b", "beta")
    other.unlink()
    manifest.write_text("{not json")
    with pytest.raises(StoreError, match=r"the registered environment .* cannot be read"):
        collect(os.fspath(store))
    assert len(entries(store)) == 2  # nothing removed, beta's entry included


def test_the_command_line_lists_what_it_removes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    manifest, made = install(tmp_path, store, "a", "alpha")
    manifest.unlink()
    argv = [*VSITE, "store", "gc", "--store", os.fspath(store)]
    dry = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {store / 'wheels' / made.pop()}" in dry.stdout
    assert len(entries(store)) == 1
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 store entries: 1 removed, 0 used by registered environments" in done.stdout
    assert entries(store) == set()
