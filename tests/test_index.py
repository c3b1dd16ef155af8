"""The site index: roots merged in manifest order, duplicates dropped whole, .pth order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from tests.builders import make_root, write_tree
from vsite import Manifest, RootError
from vsite._names import canonicalize, dist_name_from_dir
from vsite.index import SiteIndex, build_index


def _index(roots: list[Path]) -> SiteIndex:
    return build_index(Manifest.from_roots(roots))


# -- entries ---------------------------------------------------------------------------------


def test_entries_list_every_holder_of_a_name_in_manifest_order(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", {"ns": {"x.py": ""}, "mod.py": ""})
    b = make_root(tmp_path, "b", {"ns": {"y.py": ""}, "other.py": ""})
    c = make_root(tmp_path, "c", {"ns.py": "", "mod.py": ""})
    index = _index([a, b, c])
    assert index.roots == (str(a), str(b), str(c))
    assert index.entries["ns"] == [(0, True), (1, True)]
    assert index.entries["ns.py"] == [(2, False)]
    assert index.entries["mod.py"] == [(0, False), (2, False)]
    assert index.entries["other.py"] == [(1, False)]
    assert index.dropped == []


def test_dists_map_canonical_names_to_their_metadata_dirs(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", dist="Zope.Interface", version="6.0")
    b = make_root(tmp_path, "b", dist="typing_extensions", version="4.12.0")
    index = _index([a, b])
    assert index.dists == {
        "zope-interface": str(a / "Zope_Interface-6.0.dist-info"),
        "typing-extensions": str(b / "typing_extensions-4.12.0.dist-info"),
    }


def test_egg_info_directories_count_as_distributions(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "legacy", {"Old.Pkg-0.1-py3.11.egg-info": {"PKG-INFO": ""}})
    assert _index([root]).dists == {"old-pkg": str(root / "Old.Pkg-0.1-py3.11.egg-info")}


def test_a_root_without_metadata_is_used(tmp_path: Path) -> None:
    bare = write_tree(tmp_path / "bare", {"plain.py": ""})
    index = _index([bare])
    assert index.roots == (str(bare),)
    assert index.dists == {}
    assert index.entries == {"plain.py": [(0, False)]}


# -- duplicate distributions -------------------------------------------------------------------


def test_duplicate_distribution_drops_the_later_root_whole(tmp_path: Path) -> None:
    first = make_root(tmp_path, "six-new", {"six.py": "new"}, dist="six", version="1.17.0")
    second = make_root(
        tmp_path,
        "six-old",
        {"six.py": "old", "six_helpers.py": "", "six.libs": {"libx.so": b"\x7fELF"}},
        dist="Six",
        version="1.16.0",
        pth={"six-old.pth": "import sys\n"},
    )
    other = make_root(tmp_path, "other", {"other.py": ""})
    index = _index([first, second, other])
    assert index.roots == (str(first), str(other))
    # Nothing of the dropped root: modules, metadata, .pth files, native files.
    assert "six_helpers.py" not in index.entries
    assert "six.libs" not in index.entries
    assert "Six-1.16.0.dist-info" not in index.entries
    assert index.entries["six.py"] == [(0, False)]
    assert index.entries["other.py"] == [(1, False)]
    assert index.pth == []
    assert index.dists == {
        "six": str(first / "six-1.17.0.dist-info"),
        "other": str(other / "other-1.0.dist-info"),
    }
    assert "six.libs" not in index.native
    [dropped] = index.dropped
    assert dropped.root.path == str(second)
    assert dropped.root.pointer == "/roots/1"
    assert dropped.dist == "six"
    assert dropped.winner == str(first)
    assert "six" in repr(dropped)


def test_a_root_sharing_any_distribution_is_dropped_with_all_its_others(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", dist="alpha")
    # Root b holds alpha AND beta (vendored together): alpha repeats, so beta goes too.
    b = make_root(tmp_path, "b", {"beta.py": ""}, dist="beta")
    make_root(tmp_path, "b", dist="alpha", version="2.0")
    # Beta was never taken from the dropped root, so a later root may provide it.
    c = make_root(tmp_path, "c", {"beta.py": "from c"}, dist="beta", version="3.0")
    index = _index([a, b, c])
    assert index.roots == (str(a), str(c))
    assert index.dists["beta"] == str(c / "beta-3.0.dist-info")
    assert [(d.root.path, d.dist, d.winner) for d in index.dropped] == [(str(b), "alpha", str(a))]


def test_two_metadata_dirs_of_one_name_in_one_root_keep_the_first_by_name(
    tmp_path: Path,
) -> None:
    root = make_root(tmp_path, "r", dist="pkg", version="2.0")
    make_root(tmp_path, "r", dist="pkg", version="1.0")
    index = _index([root])
    assert index.roots == (str(root),)
    assert index.dists == {"pkg": str(root / "pkg-1.0.dist-info")}


def test_duplicates_are_found_by_canonical_name(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", dist="ruamel.yaml")
    b = make_root(tmp_path, "b", dist="Ruamel_YAML", version="0.18")
    index = _index([a, b])
    assert index.roots == (str(a),)
    assert index.dropped[0].dist == "ruamel-yaml"


# -- .pth site order -----------------------------------------------------------------------------


def test_pth_files_run_in_site_order_by_name_first_root_wins_a_name(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", pth={"zz.pth": "", "shared.pth": "a", "Upper.pth": ""})
    b = make_root(tmp_path, "b", pth={"aa.pth": "", "shared.pth": "b", "_b.pth": ""})
    c = make_root(tmp_path, "c", pth={"m.pth": "", "aa.pth": "c"})
    index = _index([a, b, c])
    # Sorted as site.addsitedir sorts one directory's names (code-point order).
    assert index.pth == [
        ("Upper.pth", str(a)),
        ("_b.pth", str(b)),
        ("aa.pth", str(b)),
        ("m.pth", str(c)),
        ("shared.pth", str(a)),
        ("zz.pth", str(a)),
    ]
    assert [name for name, _ in index.pth] == sorted(name for name, _ in index.pth)


def test_a_pth_directory_is_not_a_pth_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", {"odd.pth": {"inside": ""}, "real.pth": ""})
    assert _index([root]).pth == [("real.pth", str(root))]


# -- unusable roots ---------------------------------------------------------------------------


def test_every_unusable_root_is_reported_at_once(tmp_path: Path) -> None:
    good = make_root(tmp_path, "good")
    (tmp_path / "file").write_text("")
    manifest = Manifest.from_roots([good, tmp_path / "missing", tmp_path / "file"])
    with pytest.raises(RootError) as caught:
        build_index(manifest)
    error = caught.value
    assert error.message == "2 roots cannot be used"
    assert error.pointer == "/roots/1"
    assert error.root == str(tmp_path / "missing")
    assert [(p.pointer, p.message, p.root) for p in error.problems] == [
        ("/roots/1", "root does not exist", str(tmp_path / "missing")),
        ("/roots/2", "root is not a directory", str(tmp_path / "file")),
    ]


def test_one_unusable_root_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "gone"
    manifest = Manifest.from_roots([path])
    with pytest.raises(RootError) as caught:
        build_index(manifest)
    assert (caught.value.message, caught.value.pointer, caught.value.root) == (
        "root does not exist",
        "/roots/0",
        str(path),
    )
    assert caught.value.problems == ()
    assert isinstance(caught.value, OSError)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root reads any directory (tests/reliability/test_bad_roots.py drops to nobody)",
)
def test_unreadable_root_is_reported(tmp_path: Path) -> None:
    locked = make_root(tmp_path, "locked")
    locked.chmod(0)
    try:
        with pytest.raises(RootError, match="root cannot be read"):
            build_index(Manifest.from_roots([locked]))
    finally:
        locked.chmod(0o755)


# -- canonical names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Django",
        "zope.interface",
        "typing_extensions",
        "ruamel.yaml.clib",
        "A__B--C..D",
        "a-_-.b",
        "_leading",
        "trailing_",
        "nvidia-cublas-cu12",
        "UPPER.Case_Mixed-name",
        "x",
    ],
)
def test_canonical_names_equal_packaging(name: str) -> None:
    assert canonicalize(name) == canonicalize_name(name)


@settings(deadline=None, database=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from("aZ09-_.\u0130\u00df\u212a"), max_size=12))
def test_canonical_names_equal_packaging_for_any_spelling(name: str) -> None:
    assert canonicalize(name) == canonicalize_name(name)


@pytest.mark.parametrize(
    ("dirname", "expected"),
    [
        ("Foo_Bar-1.0.dist-info", "foo-bar"),
        ("foo.bar-2.0.dist-info", "foo-bar"),
        ("pkg-1.0-py3.11.egg-info", "pkg"),
        ("pkg.egg-info", "pkg"),
        ("noversion.dist-info", "noversion"),
        ("-1.0.dist-info", None),
        ("pkg-1.0", None),
        ("pkg-1.0.data", None),
    ],
)
def test_metadata_dir_names_split_at_the_first_dash(dirname: str, expected: str | None) -> None:
    assert dist_name_from_dir(dirname) == expected
