"""The view (issue 16): the site's entry is one flat directory of links to the site.

Tools that read directories instead of importing (type checkers, completion,
pipdeptree, ``importlib.metadata``'s own scan) see in the site's ``sys.path`` entry what
they would see in a flat site-packages: every top-level name once, first root winning,
directories several roots share merged entry by entry. Imports still resolve through the
hook, from the roots. On the naive layout (roots on ``sys.path``) none of this holds: no
single directory lists the site.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import make_root, write_manifest, write_tree
from tests.conftest import SysState
from vsite import activate
from vsite.index import build_index
from vsite.manifest import Manifest
from vsite.native.farm import LOCK, MARKER, plan_farm

SO = b"\x7fELF not really"  # the farm decides by name; nothing here is loaded
HIDDEN = {MARKER, LOCK}


def three_roots(base: Path) -> list[Path]:
    """``ns`` split over a and b (``ns/shared`` in both, a winning), ``clash.py`` in a and
    b (a wins), ``natpkg`` native (staged), ``a.pth`` and ``__pycache__`` at the top."""
    a = make_root(base, "a", {
        "apkg": {"__init__.py": "A = 1\n"},
        "ns": {"one": {"__init__.py": ""}, "shared.py": "WHO = 'a'\n"},
        "clash.py": "WHO = 'a'\n",
        "__pycache__": {"clash.cpython-311.pyc": b""},
    }, pth={"a.pth": "# a comment\n"})  # fmt: skip
    b = make_root(base, "b", {
        "ns": {"two": {"__init__.py": ""}, "shared.py": "WHO = 'b'\n"},
        "clash.py": "WHO = 'b'\n",
        "bmod.py": "",
    })  # fmt: skip
    c = make_root(base, "c", {"natpkg": {"__init__.py": "", "_ext.so": SO}})
    return [a, b, c]


def flat_listing(roots: list[Path]) -> dict[str, Path]:
    """Top-level name -> the root entry a flat install would hold there (first wins)."""
    found: dict[str, Path] = {}
    for root in roots:
        for name in sorted(os.listdir(root)):
            found.setdefault(name, root / name)
    return found


def start(manifest: Path, state: Path, code: str) -> str:
    """A fresh process that activates ``manifest`` as ``h`` (state in ``state``), runs
    ``code`` and returns its output."""
    env = {k: v for k, v in os.environ.items() if k != "VSITE_MANIFEST"}
    env["VSITE_DIR"] = str(state)
    program = f"import os, sys, vsite\nh = vsite.activate({str(manifest)!r})\n{code}"
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_plan_links_each_name_once_and_merges_shared_directories(tmp_path: Path) -> None:
    roots = three_roots(tmp_path)
    index = build_index(Manifest.load(write_manifest(tmp_path / "m.json", roots)))
    plan = plan_farm(index.roots, index.native, "symlink", index.entries)
    assert plan.view_links is not None
    view = dict(plan.view_links)
    a, b, c = roots
    assert view["apkg"] == str(a / "apkg")  # one root: the whole directory, one link
    assert view["clash.py"] == str(a / "clash.py")  # first root wins
    assert view["bmod.py"] == str(b / "bmod.py")
    assert view["a-1.0.dist-info"] == str(a / "a-1.0.dist-info")
    assert "ns" in plan.dirs  # shared: a real directory, merged entry by entry
    assert view[os.path.join("ns", "shared.py")] == str(a / "ns" / "shared.py")
    assert view[os.path.join("ns", "one")] == str(a / "ns" / "one")
    assert view[os.path.join("ns", "two")] == str(b / "ns" / "two")
    assert "natpkg" not in view  # staged, not viewed
    assert plan.staged == ("natpkg",)
    assert not {"a.pth", "__pycache__"} & set(view)  # vsite runs .pth files itself
    assert str(c) in {target.rpartition(os.sep + "natpkg")[0] for _, target in plan.file_links}


def test_the_sites_entry_lists_the_site_as_a_flat_directory(
    tmp_path: Path, sys_state: SysState
) -> None:
    roots = three_roots(tmp_path)
    handle = activate(write_manifest(tmp_path / "m.json", roots))
    entry = Path(handle.site_path)
    expected = {n for n in flat_listing(roots) if n != "__pycache__" and not n.endswith(".pth")}
    assert set(os.listdir(entry)) - HIDDEN == expected
    for name, source in flat_listing(roots).items():
        if name in expected and name not in ("ns", "natpkg"):
            assert (entry / name).resolve() == source.resolve(), name
    assert sorted(os.listdir(entry / "ns")) == ["one", "shared.py", "two"]
    assert (entry / "ns" / "shared.py").read_text() == "WHO = 'a'\n"
    # Imports still come from the roots (the hook resolves them), not through the links.
    import clash  # type: ignore[import-not-found]  # written by the test

    assert clash.__file__ == str(roots[0] / "clash.py")


def test_each_distribution_is_listed_once_from_the_view(
    tmp_path: Path, sys_state: SysState
) -> None:
    roots = three_roots(tmp_path)
    handle = activate(write_manifest(tmp_path / "m.json", roots))
    names = [
        d.metadata["Name"]
        for d in importlib.metadata.distributions()
        if str(d.locate_file("")) == handle.site_path
    ]
    assert sorted(names) == ["a", "b", "c"]  # once each: the finder does not answer too
    assert importlib.metadata.version("b") == "1.0"
    found = importlib.metadata.distribution("a")
    assert Path(str(found.locate_file(""))) == Path(handle.site_path)


def test_a_dropped_root_is_not_in_the_view(tmp_path: Path, sys_state: SysState) -> None:
    first = make_root(tmp_path / "one", "dup", {"dupmod.py": "V = 1\n"})
    second = make_root(tmp_path / "two", "dup", {"dupmod.py": "V = 2\n", "only2.py": ""})
    handle = activate(write_manifest(tmp_path / "m.json", [first, second]))
    listing = set(os.listdir(handle.site_path)) - HIDDEN
    assert listing == {"dupmod.py", "dup-1.0.dist-info"}  # as a flat install: one dup
    assert Path(handle.site_path, "dupmod.py").resolve() == (first / "dupmod.py").resolve()


def test_a_second_start_reuses_the_view_without_looking_at_its_links(tmp_path: Path) -> None:
    """Warm starts check the farm's marker and its native links only: a view link broken
    behind vsite's back is not stat'ed (one per name would cost thousands of stats)."""
    roots = [make_root(tmp_path, f"r{n}", {f"m{n}.py": ""}) for n in range(3)]
    manifest = write_manifest(tmp_path / "m.json", roots)
    site = start(manifest, tmp_path / "state", "print(h.site_path)").strip()
    os.unlink(os.path.join(site, "m1.py"))  # behind vsite's back
    farm_code = ("vsite.native", "vsite._farm")
    code = f"print(h.site_path, sorted(n for n in sys.modules if n.startswith({farm_code})))"
    again = start(manifest, tmp_path / "state", code)
    assert again.strip() == f"{site} ['vsite._farm_lock']"


def test_a_root_changed_behind_the_index_gets_a_new_view(tmp_path: Path) -> None:
    roots = [make_root(tmp_path, "r0", {"m0.py": ""}), write_tree(tmp_path / "r1", {})]
    manifest = write_manifest(tmp_path / "m.json", roots)
    code = "print(sorted(os.listdir(h.site_path)))"
    before = start(manifest, tmp_path / "state", code)
    (roots[1] / "late.py").write_text("")  # the root's mtime changes: a verified root
    after = start(manifest, tmp_path / "state", code)
    assert "late.py" not in before
    assert "late.py" in after


def test_a_view_rebuilt_after_gc_shows_what_a_shared_directory_holds_now(
    tmp_path: Path,
) -> None:
    """The index keeps the view's key, not its links: when the farm is gone (``vsite gc``)
    and a directory the view merges changed meanwhile below the roots' top level, the
    next start plans the view again and builds the farm of what is there now."""
    a = make_root(tmp_path, "a", {"ns": {"one.py": ""}})
    b = make_root(tmp_path, "b", {"ns": {"two.py": ""}})
    manifest = write_manifest(tmp_path / "m.json", [a, b])
    code = "print(sorted(os.listdir(os.path.join(h.site_path, 'ns'))))"
    before = start(manifest, tmp_path / "state", code)
    env = {**os.environ, "VSITE_DIR": str(tmp_path / "state")}
    subprocess.run([sys.executable, "-m", "vsite", "gc"], env=env, capture_output=True, check=True)
    (b / "ns" / "three.py").write_text("")  # below the top level: b's mtime is unchanged
    after = start(manifest, tmp_path / "state", code)
    assert before.strip() == "['one.py', 'two.py']"
    assert after.strip() == "['one.py', 'three.py', 'two.py']"


def test_a_site_without_native_code_runs_without_a_view_where_links_are_refused(
    tmp_path: Path, sys_state: SysState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Symlinks refused (a filesystem without them, no privilege on Windows): a site
    with nothing to stage activates without its view, its metadata from vsite's finder."""

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setenv("VSITE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(os, "symlink", refused)
    root = make_root(tmp_path, "plain", {"plainmod.py": "V = 1\n"})
    handle = activate(write_manifest(tmp_path / "m.json", [root]))
    import plainmod  # type: ignore[import-not-found]  # written by the test

    assert handle.farm is None
    assert not os.path.exists(handle.site_path)
    assert plainmod.V == 1
    names = [d.metadata["Name"] for d in importlib.metadata.distributions()]
    assert names.count("plain") == 1
