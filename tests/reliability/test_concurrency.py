"""Concurrency (SPEC §4: "any number of processes may activate the same manifest at once").

32 processes activate one manifest with native code on a cold cache, released at once;
a process killed with SIGKILL at any point of building leaves nothing the next one
trips over; 8 threads of one process import different packages of the site at once.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest
from tests.children import child_env
from tests.conftest import SysState
from tests.reliability.conftest import native_manifest
from vsite.native.gc import collect_garbage

ACTIVATE = """
import json, sys
sys.stdin.read()  # the start line: every process waits until the test closes stdin
import vsite
handle = vsite.activate(sys.argv[1])
import relnat0, relnat1, relnat2, relpure
kinds = [relnat0.KIND, relnat1.KIND, relnat2.KIND, relpure.WHO]
print(json.dumps({"farm": handle.farm.path, "created": handle.farm.created, "kinds": kinds}))
"""


def _spawn(code: str, manifest: Path, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, str(manifest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(VSITE_DIR=str(state)),
    )


def _go(child: subprocess.Popen[str]) -> None:
    """Close the child's stdin: its start line."""
    assert child.stdin is not None
    child.stdin.close()
    child.stdin = None  # communicate() then leaves it alone


def _finish(child: subprocess.Popen[str]) -> dict[str, object]:
    out, err = child.communicate(timeout=120)  # a guard against hangs, not a timing
    assert child.returncode == 0, err
    assert err == ""
    return json.loads(out)  # type: ignore[no-any-return]


def _leftovers(state: Path) -> list[str]:
    """Temporary files and directories anywhere under ``state``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(state):
        for name in dirnames + filenames:
            if name.startswith((".tmp-", ".stale-", ".gc-")) or name.endswith(".tmp"):
                found.append(os.path.join(dirpath, name))
    return found


def test_32_processes_activating_one_native_manifest_on_a_cold_cache(
    tmp_path: Path, extension_bytes: bytes
) -> None:
    manifest = native_manifest(tmp_path, extension_bytes, packages=3)
    state = tmp_path / "state"
    children = [_spawn(ACTIVATE, manifest, state) for _ in range(32)]
    for child in children:  # all are started before any may go
        _go(child)
    results = [_finish(child) for child in children]
    assert all(r["kinds"] == ["native", "native", "native", "pure"] for r in results)
    farms = {r["farm"] for r in results}
    assert len(farms) == 1
    (farm,) = farms
    assert os.listdir(state / "farms") == [os.path.basename(str(farm))]  # exactly one farm
    assert len(os.listdir(state / "index")) == 1  # and one cached index
    assert _leftovers(state) == []
    assert sum(bool(r["created"]) for r in results) == 1  # built once, renamed in once
    # The next process finds both warm: it builds nothing.
    again = _spawn(ACTIVATE, manifest, state)
    _go(again)
    assert _finish(again)["created"] is False


# Where a build may be killed: each stops the process there, says so, and waits.
STOPS = {
    "linking": (
        "import vsite.native.farm as farm\n"
        "real = farm._linker\n"
        "def linker(mode):\n"
        "    link = real(mode)\n"
        "    def stop(target, dest):\n"
        "        link(target, dest)\n"
        "        stop_here('linking')\n"
        "    return stop\n"
        "farm._linker = linker\n"
    ),
    "before-rename": (
        "import vsite.native.farm as farm\n"
        "real = farm._build\n"
        "def build(*args):\n"
        "    fd = real(*args)\n"
        "    stop_here('before-rename')\n"
        "farm._build = build\n"
    ),
    "writing-the-index": (
        "import vsite.index_write as writer\n"
        "real = writer.encode\n"
        "def encode(index):\n"
        "    real(index)\n"
        "    stop_here('writing-the-index')\n"
        "writer.encode = encode\n"
    ),
    "holding-the-farm": "",
}

# Each stop names its stage, so a patch that no longer reaches its stage (a renamed
# function) stops only at the end, says "holding-the-farm", and fails the test.
KILLED = """
import sys, time
def stop_here(stage):
    print("stopped", stage, flush=True)
    time.sleep(3600)
{stop}
import vsite
vsite.activate(sys.argv[1])
import relnat0
stop_here("holding-the-farm")
"""


@pytest.mark.parametrize("stage", list(STOPS))
def test_a_process_killed_while_building_leaves_nothing_that_breaks_the_next(
    tmp_path: Path, extension_bytes: bytes, stage: str
) -> None:
    manifest = native_manifest(tmp_path, extension_bytes, packages=3)
    state = tmp_path / "state"
    victim = _spawn(KILLED.format(stop=STOPS[stage]), manifest, state)
    assert victim.stdout is not None
    stopped = victim.stdout.readline()
    if stopped != f"stopped {stage}\n":
        victim.kill()  # before reading its stderr: it may be asleep at another stop
        _, errors = victim.communicate(timeout=60)
        pytest.fail(f"the victim did not stop at {stage!r} (it said {stopped!r}):\n{errors}")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    after = _spawn(ACTIVATE, manifest, state)
    _go(after)
    result = _finish(after)
    assert result["kinds"] == ["native", "native", "native", "pure"]
    # What the killed process left is garbage to collect, never part of a farm in use.
    farms = state / "farms"
    old = time.time() - 3600  # gc leaves a build younger than a minute alone
    for dirpath, dirnames, filenames in os.walk(farms):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (old, old), follow_symlinks=False)
    collect_garbage(str(farms), older_than=0)
    remaining = os.listdir(farms)
    assert remaining in ([], [os.path.basename(str(result["farm"]))])
    assert _leftovers(state) == [] or stage == "writing-the-index"
    if stage == "writing-the-index":  # a temp file named by the killed process' pid
        assert [Path(p).name for p in _leftovers(state)] == [
            name for name in os.listdir(state / "index") if name.endswith(f".{victim.pid}.tmp")
        ]


# -- threads ----------------------------------------------------------------------------


def _thread_site(base: Path, extension: bytes) -> tuple[Path, dict[str, str]]:
    """Eight packages, one per thread: native, pure, namespace across roots, nested."""
    native_manifest(base, extension, packages=3)
    one = make_root(base, "relthr1", {
        "relthr_ns": {"a": {"__init__.py": "WHO = 'ns.a'\n"}},
        "relthr_pkg": {"__init__.py": "", "deep": {"__init__.py": "", "leaf.py": "WHO = 'leaf'\n"}},
        "relthr_mod.py": "WHO = 'mod'\n",
    })  # fmt: skip
    two = make_root(base, "relthr2", {
        "relthr_ns": {"b": {"__init__.py": "WHO = 'ns.b'\n"}},
        "relthr_pkg": {"extra.py": "WHO = 'extra'\n"},
    })  # fmt: skip
    roots = [base / "relnative", base / "relpure", one, two]
    manifest = write_manifest(base / "manifest.json", roots)
    expected = {
        "relnat0": "native",
        "relnat1": "native",
        "relnat2": "native",
        "relthr_ns.a": "ns.a",
        "relthr_ns.b": "ns.b",
        "relthr_pkg.deep.leaf": "leaf",
        "relthr_pkg.extra": "extra",
        "relthr_mod": "mod",
    }
    return manifest, expected


def _load(name: str, barrier: threading.Barrier, results: dict[str, object]) -> None:
    barrier.wait()  # every thread imports at once
    try:
        module = importlib.import_module(name)
        results[name] = getattr(module, "KIND", None) or module.WHO
    except BaseException as exc:
        results[name] = exc


def test_8_threads_importing_different_packages_at_once(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes
) -> None:
    manifest, expected = _thread_site(tmp_path, extension_bytes)
    for _round in range(10):
        vsite.activate(manifest)
        barrier = threading.Barrier(len(expected))
        results: dict[str, object] = {}
        threads = [
            threading.Thread(target=_load, args=(name, barrier, results)) for name in expected
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert results == expected
        vsite.deactivate(purge=True)
        assert not any(name.startswith("relthr") for name in sys.modules)
