"""The persistent index: reused while the roots hold still, rebuilt when one changes.

Each test builds a site, lets one load write the cache, then checks whether the next
load reads it (``build_index`` must not run) or rebuilds it, and that what the site
shows afterwards is what a fresh scan shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vsite.index
from tests.builders import make_root, write_manifest
from vsite import index_cache
from vsite.index import SiteIndex


@pytest.fixture
def site(tmp_path: Path) -> Path:
    make_root(tmp_path, "a", {"alpha.py": "X = 'a'\n"})
    make_root(tmp_path, "b", {"beta": {"__init__.py": "X = 'b'\n"}})
    return write_manifest(tmp_path / "manifest.json", ["a", "b"])


class Builds:
    """Counts ``build_index`` calls made through ``index_cache.load_or_build``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = vsite.index.build_index

        def counting(manifest: object, *args: object) -> SiteIndex:
            self.count += 1
            return real(manifest, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(vsite.index, "build_index", counting)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    return Builds(monkeypatch)


def load(manifest: Path) -> SiteIndex:
    return index_cache.load_or_build(os.path.abspath(manifest))


def test_second_load_reads_the_cache_and_scans_nothing(site: Path, builds: Builds) -> None:
    first = load(site)
    second = load(site)
    assert builds.count == 1
    assert second.cache_file == first.cache_file is not None
    assert second.entries == first.entries
    assert second.dists == first.dists
    assert second.roots == first.roots


def test_a_cache_entry_is_private_to_the_user(site: Path) -> None:
    cache_file = load(site).cache_file
    assert cache_file is not None
    assert os.stat(cache_file).st_mode & 0o022 == 0
    assert os.stat(os.path.dirname(cache_file)).st_mode & 0o077 == 0


def test_a_change_to_any_of_many_roots_rebuilds_it(tmp_path: Path, builds: Builds) -> None:
    # Roots are verified a chunk at a time: a change past the first chunk counts too.
    names = [f"r{i:03d}" for i in range(260)]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.py").write_text("", encoding="utf-8")
    site = write_manifest(tmp_path / "manifest.json", names)
    load(site)
    load(site)
    assert builds.count == 1
    (tmp_path / names[-3] / "extra.py").write_text("", encoding="utf-8")
    assert "extra.py" in load(site).entries
    assert builds.count == 2


def test_a_root_dated_before_1970_stays_fresh(site: Path, builds: Builds) -> None:
    # A negative mtime (a build tool's zeroed or pre-epoch date) is recorded as its
    # two's complement: the verification must read it back equal, not rebuild each time.
    os.utime(site.parent / "a", ns=(0, -1_000_000_000))
    load(site)
    load(site)
    assert builds.count == 1


def test_a_module_added_at_the_top_of_a_root_rebuilds_it(site: Path, builds: Builds) -> None:
    load(site)
    (site.parent / "a" / "gamma.py").write_text("X = 'new'\n", encoding="utf-8")
    index = load(site)
    assert builds.count == 2
    assert "gamma.py" in index.entries


@pytest.mark.parametrize("change", ["removed", "replaced", "upgraded"])
def test_a_distribution_removed_replaced_or_upgraded_rebuilds_it(
    site: Path, builds: Builds, change: str
) -> None:
    load(site)
    root = site.parent / "b"
    if change == "removed":  # the root's dist-info and package are gone
        shutil.rmtree(root)
        root.mkdir()
    elif change == "replaced":  # another directory at the same path (new inode)
        shutil.rmtree(root)
        make_root(site.parent, "b", {"beta": {"__init__.py": "X = 'b2'\n"}}, version="1.0")
    else:  # pip install --upgrade into the root: the dist-info is renamed
        shutil.rmtree(root / "b-1.0.dist-info")
        make_root(site.parent, "b", {}, version="2.0")
    index = load(site)
    assert builds.count == 2
    expected = {
        "removed": set(),
        "replaced": {"b-1.0.dist-info"},
        "upgraded": {"b-2.0.dist-info"},
    }[change]
    assert {name for name in index.entries if name.startswith("b-")} == expected


def test_a_missing_root_is_an_error_not_a_cached_answer(site: Path) -> None:
    load(site)
    shutil.rmtree(site.parent / "a")
    with pytest.raises(vsite.RootError, match="/roots/0"):
        load(site)


def test_changed_manifest_bytes_are_another_key(site: Path, builds: Builds) -> None:
    load(site)
    write_manifest(site, ["b", "a"])
    index = load(site)
    assert builds.count == 2
    assert index.roots == (str(site.parent / "b"), str(site.parent / "a"))


def test_same_bytes_at_another_path_are_never_reused(
    site: Path, builds: Builds, tmp_path: Path
) -> None:
    load(site)
    elsewhere = tmp_path / "other"
    make_root(elsewhere, "a", {"alpha.py": "X = 'other a'\n"})
    make_root(elsewhere, "b", {})
    moved = elsewhere / "manifest.json"
    shutil.copy(site, moved)  # relative roots resolve to the other directory
    index = load(moved)
    assert builds.count == 2
    assert index.roots[0] == str(elsewhere / "a")


@pytest.mark.parametrize("garbage", [b"", b"\x00garbage", b"\xe3\x05\x00\x00\x00"])
def test_a_corrupt_cache_file_is_rebuilt_silently(
    site: Path, builds: Builds, garbage: bytes
) -> None:
    cache_file = load(site).cache_file
    assert cache_file is not None
    Path(cache_file).write_bytes(garbage)
    index = load(site)
    assert builds.count == 2
    assert "alpha.py" in index.entries
    assert load(site).cache_file == cache_file
    assert builds.count == 2  # the rebuilt entry was written back


def test_a_cache_that_cannot_be_written_is_no_error(
    site: Path, builds: Builds, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state directory should be")
    monkeypatch.setenv("VSITE_DIR", str(blocked / "vsite"))
    first = load(site)
    assert "alpha.py" in first.entries
    load(site)
    assert builds.count == 2  # nowhere to keep it: every load scans


def test_the_sidecar_of_vsite_index_is_trusted_without_looking_at_the_roots(
    site: Path, builds: Builds
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "index", str(site)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(index_cache.sidecar_path(str(site))).is_file()
    (site.parent / "a" / "gamma.py").write_text("X = 'new'\n", encoding="utf-8")
    index = load(site)
    assert builds.count == 0  # immutable roots, as the build system promised
    assert "gamma.py" not in index.entries
    # A sidecar written for other manifest bytes is ignored.
    write_manifest(site, ["b", "a"])
    index = load(site)
    assert builds.count == 1
    assert index.roots[0] == str(site.parent / "b")


def test_a_warm_start_in_a_new_process_imports_through_the_cached_index(site: Path) -> None:
    code = (
        "import vsite, vsite.index as i\n"
        "def boom(m): raise SystemExit('scanned')\n"
        "i.build_index = boom\n"
        "vsite.activate(%r)\n"
        "import alpha, beta; print(alpha.X, beta.X)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "VSITE_MANIFEST"}
    load(site)  # writes the cache under this session's VSITE_DIR
    result = subprocess.run(
        [sys.executable, "-c", code % str(site)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["a", "b"]
