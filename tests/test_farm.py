"""The farm on disk (SPEC section 4): layout, content addressing, rebuilds, modes, gc."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.builders import make_root, write_manifest, write_tree
from vsite import _farm_lock, _paths
from vsite._farm_lock import hold
from vsite.errors import FarmError
from vsite.index import build_index
from vsite.manifest import Manifest
from vsite.native.farm import (
    LOCK,
    MARKER,
    Farm,
    FarmPlan,
    ensure_farm,
    plan_farm,
    resolve_link_mode,
)
from vsite.native.gc import collect_garbage

SO = b"\x7fELF not really"  # the farm decides by name; nothing here is loaded


def two_roots(tmp_path: Path) -> list[str]:
    """A torch-like root and two nvidia-like roots sharing ``ns/cu/lib``."""
    torchish = make_root(tmp_path, "tpkg", {
        "tpkg": {
            "__init__.py": "",
            "_C.so": SO,
            "lib": {"libtcore.so": SO, "README": "x"},
            "nn": {"__init__.py": "", "modules": {"linear.py": ""}},
            "data": {"a.txt": "a"},
        },
    })  # fmt: skip
    cu_a = make_root(tmp_path, "cu-a", {
        "ns": {"cu": {
            "lib": {"liba.so.13": SO, "libcommon.so.1": b"first"},
            "include": {"a.h": ""},
            "share": {"doc.txt": ""},
        }},
    })  # fmt: skip
    cu_b = make_root(tmp_path, "cu-b", {
        "ns": {"cu": {
            "lib": {"libb.so.13": SO, "libcommon.so.1": b"second"},
            "include": {"b.h": ""},
        }},
    })  # fmt: skip
    return [str(torchish), str(cu_a), str(cu_b)]


def built(tmp_path: Path, mode: str = "symlink", hold: bool = True) -> tuple[list[str], str]:
    roots = two_roots(tmp_path / "roots")
    farm = ensure_farm(plan_farm(roots, ["tpkg", "ns"], mode), farms_dir(tmp_path), hold=hold)
    return roots, farm.path


def tree(path: str) -> dict[str, str]:
    """Every entry under ``path``: 'dir', 'link -> target' or 'file'."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                found[rel] = "link -> " + os.readlink(full)
            elif os.path.isdir(full):
                found[rel] = "dir"
            else:
                found[rel] = "file"
    return found


def farms_dir(tmp_path: Path) -> str:
    """The farms' base, as ``state_dir("farms")`` makes it."""
    base = tmp_path / "farms"
    base.mkdir(mode=0o700, exist_ok=True)
    return str(base)


# -- layout -------------------------------------------------------------------------


def test_real_directories_exactly_down_to_those_holding_shared_objects(tmp_path: Path) -> None:
    roots, farm = built(tmp_path)
    torchish, cu_a, _ = roots
    found = tree(farm)
    dirs = sorted(rel for rel, kind in found.items() if kind == "dir")
    # ns/cu/include comes from two roots: merged for real although it holds no library.
    assert dirs == ["ns", "ns/cu", "ns/cu/include", "ns/cu/lib", "tpkg", "tpkg/lib"]
    # Pure single-root subtrees are ONE directory link, not walked further.
    assert found["tpkg/nn"] == f"link -> {torchish}/tpkg/nn"
    assert found["tpkg/data"] == f"link -> {torchish}/tpkg/data"
    assert found["ns/cu/share"] == f"link -> {cu_a}/ns/cu/share"
    assert "tpkg/nn/modules" not in found
    # Files in real directories are links, shared object or not.
    assert found["tpkg/_C.so"] == f"link -> {torchish}/tpkg/_C.so"
    assert found["tpkg/lib/README"] == f"link -> {torchish}/tpkg/lib/README"
    assert set(found) - {MARKER, LOCK} == {
        "ns", "ns/cu", "ns/cu/include", "ns/cu/include/a.h", "ns/cu/include/b.h",
        "ns/cu/lib", "ns/cu/lib/liba.so.13", "ns/cu/lib/libb.so.13",
        "ns/cu/lib/libcommon.so.1", "ns/cu/share",
        "tpkg", "tpkg/__init__.py", "tpkg/_C.so", "tpkg/lib", "tpkg/lib/README",
        "tpkg/lib/libtcore.so", "tpkg/nn", "tpkg/data",
    }  # fmt: skip


def test_shared_directory_is_merged_file_by_file_first_root_winning(tmp_path: Path) -> None:
    (_, cu_a, cu_b), farm = built(tmp_path)
    lib = Path(farm, "ns", "cu", "lib")
    assert os.readlink(lib / "liba.so.13") == f"{cu_a}/ns/cu/lib/liba.so.13"
    assert os.readlink(lib / "libb.so.13") == f"{cu_b}/ns/cu/lib/libb.so.13"
    assert (lib / "libcommon.so.1").read_bytes() == b"first"
    include = Path(farm, "ns", "cu", "include")
    assert sorted(os.listdir(include)) == ["a.h", "b.h"]


def test_every_link_target_is_absolute_even_from_a_relative_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_roots(tmp_path / "roots")
    write_manifest(tmp_path / "m.json", ["roots/tpkg", "roots/cu-a", "roots/cu-b"])
    monkeypatch.chdir(tmp_path)
    index = build_index(Manifest.load("m.json"))
    assert index.native == ("ns", "tpkg")
    monkeypatch.chdir("/")
    farm = ensure_farm(plan_farm(index.roots, index.native, "symlink"), farms_dir(tmp_path))
    links = [v[len("link -> ") :] for v in tree(farm.path).values() if v.startswith("link")]
    assert len(links) == farm.plan.link_count == 12
    assert all(os.path.isabs(target) and os.path.exists(target) for target in links)


def test_a_file_in_an_earlier_root_beats_a_directory_of_the_same_name(tmp_path: Path) -> None:
    first = write_tree(tmp_path / "r1", {"ns": {"x": {"lib": {"conf": "file", "l.so": SO}}}})
    second = write_tree(tmp_path / "r2", {"ns": {"x": {"lib": {"conf": {"c.txt": ""}}}}})
    plan = plan_farm([str(first), str(second)], ["ns"], "symlink")
    assert (os.path.join("ns", "x", "lib", "conf"), f"{first}/ns/x/lib/conf") in plan.file_links
    assert not any(rel.startswith("ns/x/lib/conf/") for rel, _ in plan.file_links)


def test_staged_single_file_is_linked_at_the_top(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {"mod.cpython-311-x86_64-linux-gnu.so": SO})
    plan = plan_farm([str(root)], ["mod.cpython-311-x86_64-linux-gnu.so"], "symlink")
    assert plan.dirs == []
    assert plan.file_links == [
        ("mod.cpython-311-x86_64-linux-gnu.so", f"{root}/mod.cpython-311-x86_64-linux-gnu.so")
    ]


def test_copy_mode_never_links_a_directory(tmp_path: Path) -> None:
    _, farm = built(tmp_path, "copy")
    assert not any(kind.startswith("link") for kind in tree(farm).values())
    assert Path(farm, "tpkg", "nn", "modules", "linear.py").is_file()


def test_hardlink_mode_shares_inodes_with_the_roots(tmp_path: Path) -> None:
    (torchish, *_), farm = built(tmp_path, "hardlink")
    mine = os.stat(os.path.join(farm, "tpkg", "lib", "libtcore.so"))
    assert os.path.samestat(mine, os.stat(os.path.join(torchish, "tpkg", "lib", "libtcore.so")))
    assert os.path.islink(os.path.join(farm, "tpkg", "nn"))  # pure subtrees stay one link


def test_link_mode_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSITE_LINK_MODE", "copy")
    assert resolve_link_mode(None) == "copy"
    assert resolve_link_mode("hardlink") == "hardlink"
    monkeypatch.setenv("VSITE_LINK_MODE", "auto")
    assert resolve_link_mode(None) == ("symlink" if sys.platform == "linux" else "hardlink")
    with pytest.raises(FarmError, match="unknown link mode 'junction'"):
        resolve_link_mode("junction")


# -- content addressing and trust ---------------------------------------------------------


def test_same_staged_set_maps_to_the_same_farm_reused_not_rebuilt(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    first = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base)
    before = os.stat(
        os.path.join(first.path, "ns", "cu", "lib", "liba.so.13"), follow_symlinks=False
    )
    second = ensure_farm(plan_farm(roots, ["ns", "tpkg", "ns"], "symlink"), base)
    after = os.stat(
        os.path.join(second.path, "ns", "cu", "lib", "liba.so.13"), follow_symlinks=False
    )
    assert (first.created, second.created) == (True, False)
    assert second.path == first.path
    assert os.path.samestat(before, after)
    assert os.listdir(base) == [os.path.basename(first.path)]  # no leftovers


def test_other_mode_or_other_roots_get_another_farm(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    keys = {
        plan_farm(roots, ["tpkg", "ns"], "symlink").key(),
        plan_farm(roots, ["tpkg", "ns"], "copy").key(),
        plan_farm(roots[:2], ["tpkg", "ns"], "symlink").key(),
        plan_farm(roots[1:], ["ns"], "symlink").key(),
    }
    assert len(keys) == 4


def test_cached_plan_round_trips_to_the_same_key(tmp_path: Path) -> None:
    plan = plan_farm(two_roots(tmp_path), ["tpkg", "ns"], "symlink")
    again = FarmPlan.from_data(plan.to_data())
    assert again.key() == plan.key()
    assert again.link_count == plan.link_count


def test_second_process_reuses_the_farm_of_the_first(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    manifest = write_manifest(tmp_path / "m.json", roots)
    probe = textwrap.dedent(f"""
        import vsite
        handle = vsite.activate({str(manifest)!r})
        print(handle.site_path == handle.farm.path, handle.farm.created, handle.farm.path)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSITE_", "PYTHONPATH"))}
    env["VSITE_DIR"] = str(tmp_path / "state")
    outputs = [
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert [out[:2] for out in outputs] == [["True", "True"], ["True", "False"]]
    assert outputs[0][2] == outputs[1][2]
    assert outputs[0][2].startswith(str(tmp_path / "state" / "farms") + os.sep)


@pytest.mark.parametrize("immutable", [False, True])
def test_a_start_follows_the_farm_links_of_verified_roots_only(
    tmp_path: Path, immutable: bool
) -> None:
    """A shared object removed deep inside a root leaves the index fresh (its top level
    did not change); the farm's link to it is followed at start for a verified root
    (the farm is made again), not for an immutable one, which promises no change."""
    roots = two_roots(tmp_path / "roots")
    manifest = write_manifest(tmp_path / "m.json", roots, immutable=immutable)
    probe = f"import vsite; print(vsite.activate({str(manifest)!r}).farm.created)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSITE_", "PYTHONPATH"))}
    env["VSITE_DIR"] = str(tmp_path / "state")

    def created() -> str:
        run = [sys.executable, "-c", probe]
        return subprocess.run(run, capture_output=True, text=True, env=env, check=True).stdout

    assert created() == "True\n"
    assert created() == "False\n"
    os.unlink(os.path.join(roots[2], "ns", "cu", "lib", "libb.so.13"))
    assert created() == ("False\n" if immutable else "True\n")


@pytest.mark.parametrize(
    "saved",
    [
        ((), "symlink", [], [], [], "0" * 32),  # an older vsite's shape: links decoded
        ((), "symlink", [], (), b"not marshal", "0" * 32),  # links damaged
        ("x",),
    ],
)
def test_a_saved_plan_of_another_shape_is_planned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: tuple[object, ...]
) -> None:
    from vsite.activation import farm_for
    from vsite.index_cache import load_or_build

    monkeypatch.setenv("VSITE_DIR", str(tmp_path / "state"))
    roots = two_roots(tmp_path / "roots")
    index = load_or_build(str(write_manifest(tmp_path / "m.json", roots)))
    index.plans = {"symlink": saved}
    farm = farm_for(index, None)
    assert farm is not None
    assert farm.created
    assert os.path.lexists(os.path.join(farm.path, "tpkg", "_C.so"))
    _farm_lock.release(farm.path)


def test_farm_with_a_dangling_link_is_rebuilt(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    farm = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
    link = os.path.join(farm.path, "ns", "cu", "lib", "libb.so.13")
    os.unlink(link)
    os.symlink(str(tmp_path / "gone" / "libb.so.13"), link)
    again = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
    assert again.created
    assert again.path == farm.path
    assert os.path.exists(link)
    assert os.listdir(base) == [os.path.basename(farm.path)]  # the stale one is gone


def test_farm_missing_a_link_or_dir_link_is_rebuilt(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    farm = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
    for rel in ("tpkg/lib/libtcore.so", "tpkg/nn"):
        os.unlink(os.path.join(farm.path, rel))
        again = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
        assert again.created
        assert os.path.lexists(os.path.join(farm.path, rel))


def warm_farm(tmp_path: Path) -> tuple[list[str], Farm]:
    """A built farm whose native part has many links (a CUDA-like lib directory) and a
    shared object staged alone at the top."""
    roots = two_roots(tmp_path / "roots")
    write_tree(Path(roots[0]) / "tpkg" / "lib", {f"libextra{n}.so": SO for n in range(40)})
    top = write_tree(tmp_path / "roots" / "top", {"mod.cpython-311-x86_64-linux-gnu.so": SO})
    roots.append(str(top))
    staged = ["tpkg", "ns", "mod.cpython-311-x86_64-linux-gnu.so"]
    return roots, ensure_farm(plan_farm(roots, staged, "symlink"), farms_dir(tmp_path), hold=False)


def warm_check(farm: Farm, changing: list[str] | None) -> bool:
    """The warm start's check of ``farm`` (as activation runs it from the saved plan)."""
    _staged, _mode, dirs, top, links, key = farm.plan.to_data()
    held = _farm_lock.hold_intact(farm.path, key, (dirs, top, links), changing)  # type: ignore[arg-type]
    _farm_lock.release(farm.path)
    return held


def stats_of(monkeypatch: pytest.MonkeyPatch, check: Callable[[], bool]) -> tuple[bool, int]:
    """``check()``'s result and how many stat/lstat calls it made."""
    calls = []

    def counted(real: Callable[..., os.stat_result]) -> Callable[..., os.stat_result]:
        def call(*args: Any, **kwargs: Any) -> os.stat_result:
            calls.append(args)
            return real(*args, **kwargs)

        return call

    for name in ("stat", "lstat"):
        monkeypatch.setattr(os, name, counted(getattr(os, name)))
    try:
        return check(), len(calls)
    finally:
        monkeypatch.undo()


def test_warm_check_of_immutable_roots_stats_directories_not_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots, farm = warm_farm(tmp_path)
    plan = farm.plan
    assert len(plan.file_links) > 40
    held, calls = stats_of(monkeypatch, lambda: warm_check(farm, []))
    # The directories, the one link at the top, the lock file: not a stat per link.
    assert held
    assert calls <= len(plan.dirs) + 3 < len(plan.file_links)
    held, calls = stats_of(monkeypatch, lambda: warm_check(farm, roots))  # all verified
    assert held
    assert calls >= len(plan.file_links) + len(plan.dir_links)


@pytest.mark.parametrize(
    "rel", ["tpkg/lib/libextra7.so", "ns/cu/lib/libb.so.13", "mod.cpython-311-x86_64-linux-gnu.so"]
)
def test_warm_check_notices_a_link_gone_from_a_farm_of_immutable_roots(
    tmp_path: Path, rel: str
) -> None:
    _, farm = warm_farm(tmp_path)
    os.unlink(os.path.join(farm.path, rel))
    assert not warm_check(farm, [])


def test_a_file_written_into_a_farm_directory_keeps_it_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package writing beside its modules (a JIT's cache) moves a directory's mtime:
    the links are then checked one by one, found whole, and the new mtime recorded."""
    _, farm = warm_farm(tmp_path)
    write_tree(Path(farm.path) / "tpkg", {"__pycache__": {"jit.nbi": b"x"}})
    held, slow = stats_of(monkeypatch, lambda: warm_check(farm, []))
    assert held
    assert slow > len(farm.plan.file_links)
    held, fast = stats_of(monkeypatch, lambda: warm_check(farm, []))
    assert held
    assert fast <= len(farm.plan.dirs) + 3


def test_warm_check_follows_the_links_into_verified_roots_only(tmp_path: Path) -> None:
    roots, farm = warm_farm(tmp_path)
    os.unlink(os.path.join(roots[2], "ns", "cu", "lib", "libb.so.13"))  # behind vsite's back
    assert not warm_check(farm, [roots[2]])
    assert not warm_check(farm, None)  # not known which roots change: every link
    # An immutable root promises this never happens: its links are not followed.
    assert warm_check(farm, [roots[0], roots[1]])


@pytest.mark.parametrize("marker", ["0" * 32 + "\n", "", None])
def test_farm_with_a_wrong_or_missing_marker_is_rebuilt(tmp_path: Path, marker: str | None) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    farm = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
    if marker is None:
        os.unlink(os.path.join(farm.path, MARKER))
    else:
        Path(farm.path, MARKER).write_text(marker)
    again = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
    assert again.created
    assert Path(farm.path, MARKER).read_text().split()[0] == os.path.basename(farm.path)


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_copied_or_hardlinked_file_whose_target_changed_is_rebuilt(
    tmp_path: Path, mode: str
) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    farm = ensure_farm(plan_farm(roots, ["tpkg", "ns"], mode), base, hold=False)
    target = Path(roots[1], "ns", "cu", "lib", "liba.so.13")
    target.unlink()  # a re-install writes a new file: a hard link keeps the old inode
    target.write_bytes(b"new contents, new size")
    again = ensure_farm(plan_farm(roots, ["tpkg", "ns"], mode), base, hold=False)
    assert again.created
    assert Path(farm.path, "ns", "cu", "lib", "liba.so.13").read_bytes() == target.read_bytes()


# -- the per-user base ------------------------------------------------------------------


def test_state_base_honours_vsite_dir_and_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two"):  # a later VSITE_DIR in the same process is honoured too
        monkeypatch.setenv("VSITE_DIR", str(tmp_path / name / "vsite"))
        farms = _paths.state_dir("farms")
        assert farms == str(tmp_path / name / "vsite" / "farms")
        for path in (farms, os.path.dirname(farms)):
            assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
    farm = ensure_farm(plan_farm(two_roots(tmp_path / "r"), ["ns"], "symlink"), farms)
    assert stat.S_IMODE(os.lstat(farm.path).st_mode) == 0o700


def test_state_base_is_recreated_when_removed_behind_vsite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VSITE_DIR", str(tmp_path / "vsite"))
    _paths.state_dir("farms")
    os.rmdir(tmp_path / "vsite" / "farms")
    os.rmdir(tmp_path / "vsite")
    assert _paths.state_dir("farms") == str(tmp_path / "vsite" / "farms")


@pytest.mark.parametrize("flaw", ["symlink", "writable"])
def test_state_base_refuses_a_symlink_or_a_directory_others_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flaw: str
) -> None:
    base = tmp_path / "vsite"
    if flaw == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        base.symlink_to(tmp_path / "elsewhere")
    else:
        base.mkdir()
        base.chmod(0o777)
    monkeypatch.setenv("VSITE_DIR", str(base))
    with pytest.raises(FarmError, match="refusing"):
        _paths.state_dir("farms")


# -- garbage collection ------------------------------------------------------------------


HOLDER = """
import sys
from vsite.native.farm import ensure_farm, plan_farm
farm = ensure_farm(plan_farm({roots!r}, ["tpkg", "ns"], "symlink"), {base!r})
print(farm.path, flush=True)
sys.stdin.read()  # hold the farm until the test closes our stdin
"""


def holder(roots: list[str], base: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(roots=roots, base=base)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def release(child: subprocess.Popen[str]) -> None:
    child.communicate(timeout=30)  # closes its stdin: the holder exits
    assert child.returncode == 0


def test_gc_removes_farms_no_process_holds(tmp_path: Path) -> None:
    _, farm = built(tmp_path, hold=False)
    base = os.path.dirname(farm)
    assert collect_garbage(base) == [farm]
    assert os.listdir(base) == []
    assert collect_garbage(base) == []


def test_gc_never_removes_a_farm_another_process_holds(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    child, path = holder(roots, base)
    try:
        assert os.path.isdir(path)
        assert collect_garbage(base) == []
        assert os.path.isfile(os.path.join(path, MARKER))
    finally:
        release(child)
    assert collect_garbage(base) == [path]


def test_gc_keeps_the_farm_this_process_holds(tmp_path: Path) -> None:
    _, farm = built(tmp_path)  # ensure_farm holds by default
    assert collect_garbage(os.path.dirname(farm)) == []
    assert hold(farm)


def test_gc_spares_farms_used_recently_when_asked(tmp_path: Path) -> None:
    _, farm = built(tmp_path, hold=False)
    base = os.path.dirname(farm)
    assert collect_garbage(base, older_than=3600) == []
    day_ago = time.time() - 86400
    os.utime(os.path.join(farm, LOCK), (day_ago, day_ago))
    assert collect_garbage(base, older_than=3600) == [farm]


def test_holding_a_farm_records_its_use(tmp_path: Path) -> None:
    roots, farm = built(tmp_path, hold=False)
    day_ago = time.time() - 86400
    os.utime(os.path.join(farm, LOCK), (day_ago, day_ago))
    child, path = holder(roots, os.path.dirname(farm))
    release(child)
    assert path == farm
    assert os.stat(os.path.join(farm, LOCK)).st_mtime > day_ago + 3600
    assert collect_garbage(os.path.dirname(farm), older_than=3600) == []


def test_a_farm_removed_by_gc_is_rebuilt_on_next_use(tmp_path: Path) -> None:
    roots, farm = built(tmp_path, hold=False)
    collect_garbage(os.path.dirname(farm))
    again = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), os.path.dirname(farm))
    assert again.created
    assert again.path == farm


def test_gc_removes_leftovers_of_interrupted_builds_and_removals(tmp_path: Path) -> None:
    base = tmp_path / "farms"
    old = time.time() - 3600
    for name in (".tmp-" + "a" * 32 + "-1-ff", ".stale-" + "b" * 32 + "-1", ".gc-" + "c" * 32):
        write_tree(base / name, {"x": {"y.so": SO}})
        os.utime(base / name, (old, old))
    write_tree(base / (".tmp-" + "d" * 32 + "-2-ff"), {"x": {}})  # a build just begun
    write_tree(base, {"notes.txt": "", "site-1234abcd": {}, "e" * 31: {}})  # not farms
    removed = {os.path.basename(p) for p in collect_garbage(str(base))}
    assert removed == {".tmp-" + "a" * 32 + "-1-ff", ".stale-" + "b" * 32 + "-1", ".gc-" + "c" * 32}
    assert sorted(os.listdir(base)) == sorted(
        [".tmp-" + "d" * 32 + "-2-ff", "notes.txt", "site-1234abcd", "e" * 31]
    )


def test_stale_farm_still_in_use_is_left_for_gc_until_its_holder_exits(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    child, path = holder(roots, base)
    try:
        os.unlink(os.path.join(path, "tpkg", "_C.so"))  # now stale: rebuilt on next use
        again = ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False)
        assert again.created
        assert again.path == path
        (stale,) = (name for name in os.listdir(base) if name.startswith(".stale-"))
        assert collect_garbage(base) == [path]  # the new farm: nobody holds it
    finally:
        release(child)
    assert collect_garbage(base) == [os.path.join(base, stale)]
    assert os.listdir(base) == []


def test_gc_of_a_missing_base_finds_nothing(tmp_path: Path) -> None:
    assert collect_garbage(str(tmp_path / "nothing")) == []


CONCURRENT = """
import sys
from vsite.native.farm import ensure_farm, plan_farm
sys.stdin.read()  # start line: every process waits for the test to close stdin
farm = ensure_farm(plan_farm({roots!r}, ["tpkg", "ns"], "symlink"), {base!r})
print(farm.created, farm.path)
"""


def test_concurrent_processes_share_one_farm_built_once(tmp_path: Path) -> None:
    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT.format(roots=roots, base=base)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
    outputs = []
    for child in children:
        assert child.stdout is not None
        assert child.stderr is not None
        with child.stdout, child.stderr:
            out, err = child.stdout.read(), child.stderr.read()
        assert child.wait(timeout=60) == 0, err
        outputs.append(out.split())
    assert sorted(created for created, _ in outputs) == ["False"] * 5 + ["True"]
    assert len({path for _, path in outputs}) == 1
    assert os.listdir(base) == [os.path.basename(outputs[0][1])]


@pytest.mark.parametrize("rebuilt_meanwhile", [False, True])
def test_a_farm_collected_while_waiting_for_its_lock_is_not_trusted(
    tmp_path: Path, rebuilt_meanwhile: bool
) -> None:
    """gc renames a farm aside under its exclusive lock. A process that opened the lock
    file just before must notice once it gets the lock, and hold the farm that is at the
    path then (built by itself, or by another process meanwhile), not the one going away;
    otherwise the next gc would remove a farm in use."""
    import fcntl
    import threading

    roots, farm = built(tmp_path, hold=False)
    base = os.path.dirname(farm)
    gc_fd = os.open(os.path.join(farm, LOCK), os.O_RDONLY)
    fcntl.flock(gc_fd, fcntl.LOCK_EX)  # what collect_garbage holds while it renames
    result: list[Farm] = []
    worker = threading.Thread(
        target=lambda: result.append(ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base))
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # blocked on the shared lock
    os.rename(farm, os.path.join(base, ".gc-moved"))
    if rebuilt_meanwhile:
        assert ensure_farm(plan_farm(roots, ["tpkg", "ns"], "symlink"), base, hold=False).created
    os.close(gc_fd)
    worker.join(30)
    (again,) = result
    assert again.created != rebuilt_meanwhile
    assert again.path == farm
    assert collect_garbage(base) == [os.path.join(base, ".gc-moved")]  # ours is held
    assert os.path.isfile(os.path.join(farm, MARKER))


def test_holding_something_that_is_not_a_farm_fails(tmp_path: Path) -> None:
    assert not hold(str(tmp_path))
    assert not hold(str(tmp_path / "missing"))


# -- the `vsite gc` command --------------------------------------------------------------


def _vsite(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VSITE_MANIFEST"}
    env["VSITE_DIR"] = str(state)
    env["VSITE_BYTECODE_DIR"] = str(state / "bytecode")  # gc sweeps it: never the user's
    return subprocess.run(
        [sys.executable, "-m", "vsite", *args], capture_output=True, text=True, env=env
    )


def _farm_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """gc's output about farms (the exec environments' and bytecode cache's last lines
    left out)."""
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("vsite: removed 0 cached bytecode files"), lines
    assert lines[-2].startswith("vsite: removed 0 exec environments"), lines
    return lines[:-2]


def test_gc_command_removes_unused_farms_and_spares_held_ones(tmp_path: Path) -> None:
    state = tmp_path / "state"
    roots = two_roots(tmp_path / "roots")
    manifest = write_manifest(tmp_path / "manifest.json", roots)
    # A process that activated the site and exited: its farm is no longer used.
    code = f"import vsite; print(vsite.activate({str(manifest)!r}).farm.path)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, env={**os.environ, "VSITE_DIR": str(state)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    unused = result.stdout.strip()
    farms = state / "farms"
    other_roots = two_roots(tmp_path / "other")
    child, held = holder(other_roots, str(farms))
    try:
        assert _farm_lines(_vsite("gc", "--older-than", "3600", state=state)) == [
            "vsite: removed 0 farms"  # both used within the hour
        ]
        result = _vsite("gc", state=state)
        assert result.returncode == 0, result.stderr
        assert _farm_lines(result) == [f"removed {unused}", "vsite: removed 1 farms"]
        assert not os.path.exists(unused)
        assert os.path.isfile(os.path.join(held, MARKER))  # in use: kept
    finally:
        release(child)
    assert _farm_lines(_vsite("gc", state=state))[-1] == "vsite: removed 1 farms"
    # The next activation rebuilds what gc removed.
    again = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, env={**os.environ, "VSITE_DIR": str(state)},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert os.path.isfile(os.path.join(again.stdout.strip(), MARKER))


def test_gc_command_sweeps_only_stale_index_temporaries(tmp_path: Path) -> None:
    state = tmp_path / "state"
    index = state / "index"
    index.mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    stale, fresh, kept = index / "x.marshal.123.tmp", index / "y.marshal.456.tmp", index / "z"
    for path in (stale, fresh, kept):
        path.write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(kept, (hour_ago, hour_ago))
    result = _vsite("gc", state=state)
    assert result.returncode == 0, result.stderr
    assert _farm_lines(result)[-1] == "vsite: removed 0 farms, 1 stale index temporaries"
    assert sorted(os.listdir(index)) == ["y.marshal.456.tmp", "z"]


def test_gc_command_refuses_a_state_directory_others_can_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    result = _vsite("gc", state=state)
    assert result.returncode == 2
    assert result.stderr.startswith("vsite: error: ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_farm_renamed_in_by_another_process_after_the_check_is_not_retired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race CI met: this process finds no intact farm, another one renames its
    complete farm into place, and only then would this one have looked whether anything
    was there: it must not take that farm for a stale one and replace it."""
    import vsite.native.farm as farm_module

    roots = two_roots(tmp_path / "roots")
    base = farms_dir(tmp_path)
    plan = plan_farm(roots, ["tpkg", "ns"], "symlink")
    real_intact = farm_module._intact
    theirs: list[int] = []

    def intact_then_a_concurrent_build(path: str, plan_: FarmPlan, key: str) -> bool:
        if not theirs:  # the first check: not there yet; the other process finishes now
            monkeypatch.setattr(farm_module, "_intact", real_intact)
            other = ensure_farm(plan_, base, hold=False)
            theirs.append(os.stat(other.path).st_ino)
            return False
        return real_intact(path, plan_, key)

    monkeypatch.setattr(farm_module, "_intact", intact_then_a_concurrent_build)
    mine = ensure_farm(plan, base, hold=False)
    assert mine.created is False
    assert os.stat(mine.path).st_ino == theirs[0]
    assert os.listdir(base) == [os.path.basename(mine.path)]
