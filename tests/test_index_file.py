"""The index file of format 6: what a start looks at, and what it does with a bad file.

The freshness contract is in ``vsite.index_cache``'s docstring; each of its lines has a
test here or in tests/test_index_cache.py (root added, removed, replaced, modified, the
manifest edited).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vsite.index
from tests.builders import make_root, write_manifest, write_record
from vsite import index_cache, index_write
from vsite.index import SiteIndex

STORE_DIGEST = "ab" * 32


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    return [
        make_root(tmp_path, "a", {"alpha.py": "X = 'a'\n", "q": {"mod.py": "Y = 1\n"}}),
        make_root(tmp_path, "b", {"beta": {"__init__.py": "X = 'b'\n"}, "alpha.py": "X = 'b'\n"}),
        make_root(tmp_path, "c", {"q": {"other.py": "Z = 2\n"}}, dist="gamma-dist"),
    ]


def load(manifest: Path) -> SiteIndex:
    return index_cache.load_or_build(os.path.abspath(manifest))


class Stats:
    """The paths ``os.stat`` was called with, while counting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = os.stat

        def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            self.paths.append(os.fspath(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", counting)

    def of(self, paths: list[Path]) -> list[str]:
        wanted = {str(path) for path in paths}
        return [path for path in self.paths if path in wanted]


# -- what a warm start looks at ---------------------------------------------------------


def test_a_warm_start_stats_each_verified_root_once(
    roots: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = write_manifest(tmp_path / "m.json", roots)
    load(manifest)
    stats = Stats(monkeypatch)
    index = load(manifest)
    assert index.cache_file is not None  # warm
    assert stats.of(roots) == [str(root) for root in roots]


@pytest.mark.parametrize("where", ["manifest", "each root"])
def test_declared_immutable_roots_are_never_looked_at(
    roots: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "manifest":
        manifest = write_manifest(tmp_path / "m.json", roots, immutable=True)
    else:
        entries = [{"path": str(root), "immutable": True} for root in roots]
        manifest = write_manifest(tmp_path / "m.json", entries)
    load(manifest)
    stats = Stats(monkeypatch)
    index = load(manifest)
    assert stats.of(roots) == []
    # The promise: such a root is replaced only with a new manifest. A change the
    # verified manifest would catch (a module added at the top) is not looked for.
    (roots[0] / "late.py").write_text("", encoding="utf-8")
    assert "late.py" not in load(manifest).entries
    assert index.entries.get("alpha.py") == [(0, False), (1, False)]


def test_roots_in_a_vsite_store_are_immutable_without_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = tmp_path / "store" / "wheels" / STORE_DIGEST
    root = make_root(entry, "site-packages", {"stored.py": ""}, dist="stored")
    foreign = make_root(tmp_path, "foreign", {"foreign.py": ""})
    manifest = write_manifest(tmp_path / "m.json", [root, foreign])
    load(manifest)
    stats = Stats(monkeypatch)
    index = load(manifest)
    assert stats.of([root, foreign]) == [str(foreign)]
    assert index.held == (str(entry),)


def test_a_subdirectory_gaining_an_init_needs_no_new_index(
    roots: list[Path], tmp_path: Path
) -> None:
    """Below a root's top level the disk is read at import time, as in a flat site: ``q``
    (a namespace package split over a and c) becomes a regular package, still spanning
    both directories as the one flat ``q/`` would."""
    manifest = write_manifest(tmp_path / "m.json", roots)
    cache_file = load(manifest).cache_file
    assert cache_file is not None
    code = "import q; print(getattr(q, '__file__', None) is not None, list(q.__path__))"
    before = run_with_site(manifest, code)
    written = Path(cache_file).read_bytes()  # with the farm's plan the first start added
    (roots[0] / "q" / "__init__.py").write_text("", encoding="utf-8")
    after = run_with_site(manifest, code)
    assert Path(cache_file).read_bytes() == written  # the index did not change ...
    assert before == f"False {[str(roots[0] / 'q'), str(roots[2] / 'q')]}"
    assert after == f"True {[str(roots[0] / 'q'), str(roots[2] / 'q')]}"  # ... the import did


def test_native_code_added_below_the_top_level_waits_for_a_new_index(
    roots: list[Path], tmp_path: Path
) -> None:
    """The one thing the index reads below the top level: which names hold native code.
    A shared object added deeper, with no top-level change, is staged only once the
    index is rebuilt (here: the root's mtime changes)."""
    manifest = write_manifest(tmp_path / "m.json", roots)
    assert load(manifest).native == ()
    (roots[1] / "beta" / "_speedups.so").write_bytes(b"\x7fELF not really")
    write_record(roots[1])  # as an installer would: inside the dist-info, not the root
    assert load(manifest).native == ()
    os.utime(roots[1], ns=(0, 1_000_000_000))
    assert load(manifest).native == ("beta",)


# -- the file: lazy tables, and bad files ------------------------------------------------


def test_a_read_index_answers_like_the_built_one(roots: list[Path], tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.json", roots)
    built = load(manifest)
    read = load(manifest)
    assert type(read) is index_cache.MappedIndex
    assert dict(read.entries) == dict(built.entries)
    assert list(read.dists.items()) == list(built.dists.items())  # site order kept
    for name in [*built.entries, "missing", "alpha", "q.py", ""]:
        assert read.entries.get(name) == built.entries.get(name)
    for name in [*built.dists, "missing"]:
        assert read.dists.get(name) == built.dists.get(name)
    assert read.roots == built.roots
    assert read.mtimes == built.mtimes
    assert read.manifest == built.manifest
    assert (read.pth, read.native, read.held) == (built.pth, built.native, built.held)


def test_a_truncated_or_overlong_file_is_rebuilt(roots: list[Path], tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.json", roots)
    cache_file = Path(str(load(manifest).cache_file))
    whole = cache_file.read_bytes()
    for damaged in [whole[:5], whole[:40], whole[: len(whole) // 2], whole[:-1], whole + b"\0"]:
        cache_file.write_bytes(damaged)
        index = load(manifest)
        assert type(index) is SiteIndex, len(damaged)  # built, not read
        assert same_but_random(cache_file.read_bytes(), whole)  # and written back whole


def test_a_section_pointing_outside_the_file_is_refused(roots: list[Path], tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.json", roots)
    cache_file = Path(str(load(manifest).cache_file))
    whole = bytearray(cache_file.read_bytes())
    table = len(b"vsite-ix") + 24
    for section in (0, 6):  # an eager one and a lazy one
        hostile = bytearray(whole)
        hostile[table + 8 * section : table + 8 * section + 4] = (2**32 - 8).to_bytes(4, "little")
        cache_file.write_bytes(bytes(hostile))
        assert type(load(manifest)) is SiteIndex


def test_a_damaged_table_is_answered_by_a_rebuilt_index(
    roots: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lazy section is checked when it is first read, after the start: a record that
    does not decode, or names a root that does not exist, makes the index rebuild."""
    manifest = write_manifest(tmp_path / "m.json", roots)
    cache_file = Path(str(load(manifest).cache_file))
    whole = cache_file.read_bytes()
    table = len(b"vsite-ix") + 24
    names_at = int.from_bytes(whole[table + 8 * 6 : table + 8 * 6 + 4], "little")
    names_end = names_at + int.from_bytes(whole[table + 8 * 6 + 4 : table + 8 * 7], "little")
    count = int.from_bytes(whole[names_at : names_at + 4], "little")
    records = names_at + 4 + 4 * (count + 1)
    damaged = whole[:records] + b"\xff" * (names_end - records) + whole[names_end:]
    cache_file.write_bytes(damaged)
    builds: list[int] = []
    real = vsite.index.build_index

    def counting(*args: Any) -> SiteIndex:
        builds.append(1)
        return real(*args)

    monkeypatch.setattr(vsite.index, "build_index", counting)
    index = load(manifest)
    assert type(index) is index_cache.MappedIndex  # the start read it
    assert builds == []
    assert index.entries.get("alpha.py") == [(0, False), (1, False)]
    assert index.entries.get("beta") == [(1, True)]
    assert builds == [1]  # one rebuild answered both
    assert same_but_random(cache_file.read_bytes(), whole)  # and replaced the damaged file


def test_a_record_naming_a_root_that_does_not_exist_is_answered_by_a_rebuild(
    roots: list[Path], tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.json", roots)
    built = load(manifest)
    assert isinstance(built.entries, dict)
    built.entries["alpha.py"] = [(99, False)]
    cache_file = Path(str(built.cache_file))
    cache_file.write_bytes(index_write.encode(built))
    index = load(manifest)
    assert type(index) is index_cache.MappedIndex
    assert index.entries.get("alpha.py") == [(0, False), (1, False)]


def test_a_file_replaced_after_the_start_is_not_mixed_with_the_one_read(
    roots: list[Path], tmp_path: Path
) -> None:
    """Another process may rebuild the index while this one runs: the lazy sections must
    come from the file the start read, not from the new one at the same path."""
    manifest = write_manifest(tmp_path / "m.json", roots)
    built = load(manifest)
    index = load(manifest)
    assert isinstance(built.entries, dict)
    built.entries["beta"] = [(0, True)]  # same layout, other content
    Path(str(index.cache_file)).write_bytes(index_write.encode(built))
    assert index.entries.get("beta") == [(1, True)]


def test_the_manifest_key_immutable_is_a_boolean(tmp_path: Path) -> None:
    root = make_root(tmp_path, "a", {"alpha.py": ""})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vsite": 1, "roots": [str(root)], "immutable": "yes"}))
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "/immutable" in result.stdout + result.stderr


def run_with_site(manifest: Path, code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VSITE_MANIFEST"}
    program = f"import vsite; vsite.activate({str(manifest)!r})\n{code}"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def same_but_random(one: bytes, other: bytes) -> bool:
    """Two index files equal but for the random bytes in the header."""
    start = len(b"vsite-ix") + 16
    return one[:start] + one[start + 8 :] == other[:start] + other[start + 8 :]
