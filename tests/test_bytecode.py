"""Bytecode of the site's modules: shipped ``__pycache__`` first, then the per-user cache.

Every child here runs with bytecode writing ON (the machines set
PYTHONDONTWRITEBYTECODE; it is removed) and its own ``VSITE_BYTECODE_DIR``. Compiles are
counted with ``sys.audit``'s ``compile`` events, not with anything of vsite's.
"""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders import make_root, write_manifest
from tests.children import child_env
from tests.reliability._support import listing

TAG = sys.implementation.cache_tag

# Prints what the import of MODULES compiled from source, and where bytecode lives.
PROBE = """\
import importlib, json, os, sys, time
barrier = os.environ.get("PROBE_BARRIER")
while barrier and not os.path.exists(barrier):  # processes that must import at once
    time.sleep(0.001)
compiled = []
# vsite's own modules are not the site's: those it loads on first use (the union, the
# bytecode loader) are compiled here too when its source tree has no bytecode yet.
own = os.path.join(os.path.dirname(sys.modules["vsite"].__file__), "")
def hook(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].endswith(".py"):
        if not args[1].startswith(own):
            compiled.append(args[1])
sys.addaudithook(hook)
found = {}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    found[name] = {"cached": module.__cached__, "value": getattr(module, "VALUE", None)}
import vsite.activation
handle = vsite.activation.active()
farm = handle.farm.path if handle is not None and handle.farm is not None else None
print(json.dumps({"compiled": sorted(compiled), "modules": found, "farm": farm}))
"""


def bytecode_env(cache: Path, **extra: str) -> dict[str, str]:
    env = child_env(VSITE_BYTECODE_DIR=os.fspath(cache))
    del env["PYTHONDONTWRITEBYTECODE"]
    env.update(extra)
    return env


def run_site(
    manifest: Path, modules: list[str], cache: Path, *python_options: str, **extra: str
) -> dict[str, Any]:
    """Import ``modules`` in a fresh ``vsite exec`` child; its probe's answer."""
    command = [sys.executable, "-m", "vsite", "exec", os.fspath(manifest), "--"]
    command += [sys.executable, *python_options, "-c", PROBE, *modules]
    result = subprocess.run(
        command, capture_output=True, text=True, env=bytecode_env(cache, **extra), check=False
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    answer["stderr"] = result.stderr
    return answer


def pycs(top: Path) -> list[str]:
    return sorted(os.path.relpath(p, top) for p in map(str, top.rglob("*")) if p.endswith(".pyc"))


@pytest.fixture
def pure_site(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Two roots without bytecode: a package split over both and a top-level module."""
    first = make_root(
        tmp_path,
        "first",
        {
            "pkg": {
                "__init__.py": "VALUE = 'init'\n",
                "sub": {"__init__.py": "", "mod.py": "VALUE = 1\n"},
            }
        },
    )
    second = make_root(tmp_path, "second", {"top.py": "VALUE = 2\n"})
    return write_manifest(tmp_path / "m.json", [first, second]), [first, second]


def test_second_process_compiles_nothing_and_roots_stay_untouched(
    tmp_path: Path, pure_site: tuple[Path, list[Path]]
) -> None:
    manifest, roots = pure_site
    cache = tmp_path / "bytecode"
    before = listing(*roots)
    modules = ["pkg", "pkg.sub.mod", "top"]
    first = run_site(manifest, modules, cache)
    sources = [roots[0] / "pkg/__init__.py", roots[0] / "pkg/sub/__init__.py"]
    sources += [roots[0] / "pkg/sub/mod.py", roots[1] / "top.py"]
    assert first["compiled"] == sorted(map(str, sources))
    second = run_site(manifest, modules, cache)
    assert second["compiled"] == []
    assert second["modules"]["pkg.sub.mod"]["value"] == 1
    # __cached__ names the file the bytecode came from: the cache, by the source's real path.
    cached = second["modules"]["top"]["cached"]
    assert cached == f"{cache}{roots[1].resolve()}/top.{TAG}.pyc"
    assert os.path.isfile(cached)
    assert listing(*roots) == before

    # The naive layout (roots on PYTHONPATH) writes __pycache__ into the roots.
    naive = subprocess.run(
        [sys.executable, "-c", "import pkg.sub.mod, top"],
        env=bytecode_env(cache, PYTHONPATH=os.pathsep.join(map(str, roots))),
        check=True,
    )
    assert naive.returncode == 0
    assert listing(*roots) != before


def test_a_staged_package_shares_its_roots_cache_and_the_farm_gets_none(tmp_path: Path) -> None:
    native = make_root(
        tmp_path,
        "native",
        {
            "natpkg": {
                "__init__.py": "VALUE = 'nat'\n",
                "helper.py": "VALUE = 3\n",
                "libfake.so.1": "",
            }
        },
    )
    manifest = write_manifest(tmp_path / "m.json", [native])
    cache = tmp_path / "bytecode"
    before = listing(native)
    first = run_site(manifest, ["natpkg", "natpkg.helper"], cache)
    farm = Path(first["farm"])
    assert first["compiled"] == [str(farm / "natpkg/__init__.py"), str(farm / "natpkg/helper.py")]
    second = run_site(manifest, ["natpkg", "natpkg.helper"], cache)
    assert second["compiled"] == []
    # Imported through the farm, cached under the file's real path: the root's.
    cached = second["modules"]["natpkg.helper"]["cached"]
    assert cached == f"{cache}{native.resolve()}/natpkg/helper.{TAG}.pyc"
    assert [p for p in map(str, farm.rglob("*")) if "__pycache__" in p] == []
    assert listing(native) == before


def test_bytecode_a_root_ships_is_used_and_nothing_is_cached(tmp_path: Path) -> None:
    root = make_root(tmp_path, "shipped", {"shipped": {"__init__.py": "VALUE = 'shipped'\n"}})
    source = root / "shipped" / "__init__.py"
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    py_compile.compile(str(source), doraise=True, invalidation_mode=mode)
    manifest = write_manifest(tmp_path / "m.json", [root])
    cache = tmp_path / "bytecode"
    answer = run_site(manifest, ["shipped"], cache)
    assert answer["compiled"] == []
    assert answer["modules"]["shipped"]["cached"] == str(
        root / "shipped" / "__pycache__" / f"__init__.{TAG}.pyc"
    )
    assert not cache.exists() or pycs(cache) == []


def test_an_edited_source_is_recompiled_once(
    tmp_path: Path, pure_site: tuple[Path, list[Path]]
) -> None:
    manifest, roots = pure_site
    cache = tmp_path / "bytecode"
    run_site(manifest, ["top"], cache)
    top = roots[1] / "top.py"
    stat = top.stat()
    top.write_text("VALUE = 7\n", encoding="utf-8")  # the same size
    os.utime(top, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    edited = run_site(manifest, ["top"], cache)
    assert edited["modules"]["top"]["value"] == 7
    assert edited["compiled"] == [str(top)]
    assert run_site(manifest, ["top"], cache)["compiled"] == []


STAT_PROBE = """\
import importlib, json, os, posix, sys
source = sys.argv[1]
stats = []
real_stat = posix.stat
def counting(path, *args, **kwargs):
    if os.fspath(path) == source:
        stats.append(path)
    return real_stat(path, *args, **kwargs)
posix.stat = os.stat = counting  # the stdlib's loaders call posix.stat, vsite os.stat
module = importlib.import_module("stamped")
first = len(stats)
with open(source, "a") as stream:
    stream.write("VALUE = 'edited'\\n")
module = importlib.reload(module)
print(json.dumps([first, module.VALUE]))
"""


def test_an_import_stats_its_source_as_often_as_the_stdlibs_loader_does(
    tmp_path: Path,
) -> None:
    # The freshness check of a root's timestamp pyc reuses get_code's own stat of the
    # source; a reload looks again (it sees the edit).
    root = make_root(tmp_path, "stamped", {"stamped.py": "VALUE = 'shipped'\n"})
    source = root / "stamped.py"
    py_compile.compile(str(source), doraise=True)
    manifest = write_manifest(tmp_path / "m.json", [root])
    env = bytecode_env(tmp_path / "bytecode")
    counts = {}
    for layout, command in (
        ("vsite", [sys.executable, "-m", "vsite", "run", os.fspath(manifest), "-c"]),
        ("naive", [sys.executable, "-c"]),
    ):
        source.write_text("VALUE = 'shipped'\n", encoding="utf-8")
        py_compile.compile(str(source), doraise=True)
        result = subprocess.run(
            [*command, STAT_PROBE, str(source)],
            capture_output=True,
            text=True,
            env={**env, "PYTHONPATH": os.fspath(root)} if layout == "naive" else env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        counts[layout], value = json.loads(result.stdout)
        assert value == "edited"
    assert counts["vsite"] == counts["naive"]


def test_processes_writing_one_entry_at_once_leave_one_complete_file(tmp_path: Path) -> None:
    body = "".join(f"def f{n}(x):\n    return x + {n}\n" for n in range(2000)) + "VALUE = 'big'\n"
    root = make_root(tmp_path, "big", {"big.py": body})
    manifest = write_manifest(tmp_path / "m.json", [root])
    cache = tmp_path / "bytecode"
    command = [sys.executable, "-m", "vsite", "exec", os.fspath(manifest), "--"]
    command += [sys.executable, "-c", PROBE, "big"]
    barrier = tmp_path / "go"
    env = bytecode_env(cache, PROBE_BARRIER=str(barrier))
    children = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(8)
    ]
    time.sleep(1.0)  # every child is waiting at the barrier (a slow one only lowers the odds)
    barrier.touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert err == ""
        assert json.loads(out)["modules"]["big"]["value"] == "big"
    assert pycs(cache) == [f"{str(root.resolve())[1:]}/big.{TAG}.pyc"]
    assert run_site(manifest, ["big"], cache)["compiled"] == []


def _symlink(path: Path) -> Path:
    target = path.parent / "elsewhere"
    target.mkdir(mode=0o700)
    path.symlink_to(target)
    return target


def _group_writable(path: Path) -> Path:
    path.mkdir()
    path.chmod(0o770)
    return path


def _a_file(path: Path) -> Path:
    path.write_text("", encoding="utf-8")
    return path


def _someone_elses(path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("only root can make a directory owned by another user")
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    return path


@pytest.mark.parametrize(
    ("spoil", "configured"),
    [
        (_symlink, "bytecode"),
        (_group_writable, "bytecode"),
        (_a_file, "bytecode"),
        (_a_file, "bytecode/sub"),
        (_someone_elses, "bytecode"),
    ],
    ids=["symlink", "group-writable", "a-file", "below-a-file", "another-owner"],
)
def test_an_unusable_cache_compiles_with_one_warning_and_never_fails(
    tmp_path: Path, pure_site: tuple[Path, list[Path]], spoil: Any, configured: str
) -> None:
    manifest, _ = pure_site
    spoiled = spoil(tmp_path / "bytecode")
    snapshot = listing(tmp_path / "bytecode") if spoiled.is_dir() else None
    modules = ["pkg", "pkg.sub.mod", "top"]
    for _ in range(2):
        answer = run_site(manifest, modules, tmp_path / configured)
        assert answer["modules"]["pkg.sub.mod"]["value"] == 1
        assert len(answer["compiled"]) == 4  # every process compiles: nothing is cached
        warnings = answer["stderr"].splitlines()
        assert len(warnings) == 1, answer["stderr"]
        assert warnings[0].startswith("vsite: bytecode cache not used (")
    if snapshot is not None:
        assert listing(tmp_path / "bytecode") == snapshot
    if spoiled.is_symlink():
        assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("mode", ["default", "always", "never"])
def test_hash_based_pycs_follow_check_hash_based_pycs_as_flat_does(
    tmp_path: Path, mode: str
) -> None:
    """A root shipping STALE hash-based bytecode: checked for ``checked``, trusted for
    ``unchecked`` unless ``--check-hash-based-pycs always``; the same values as the same
    files in one directory on sys.path."""
    files = {"checked.py": "VALUE = 'old'\n", "unchecked.py": "VALUE = 'old'\n"}
    root = make_root(tmp_path, "hashed", files)
    kinds = {"checked": "CHECKED_HASH", "unchecked": "UNCHECKED_HASH"}
    for name, kind in kinds.items():
        invalidation = py_compile.PycInvalidationMode[kind]
        py_compile.compile(str(root / f"{name}.py"), doraise=True, invalidation_mode=invalidation)
        (root / f"{name}.py").write_text("VALUE = 'new'\n", encoding="utf-8")
    flat = tmp_path / "flat"
    shutil.copytree(root, flat)
    manifest = write_manifest(tmp_path / "m.json", [root])
    option = ["--check-hash-based-pycs", mode]
    expected = subprocess.run(
        [
            sys.executable,
            *option,
            "-c",
            "import checked, unchecked; print(checked.VALUE, unchecked.VALUE)",
        ],
        env=child_env(PYTHONPATH=str(flat)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert expected != ["new", "new"] or mode == "always"  # the stale pycs do matter
    cache = tmp_path / "bytecode"
    for run in range(2):
        answer = run_site(manifest, ["checked", "unchecked"], cache, *option)
        values = [answer["modules"][name]["value"] for name in ("checked", "unchecked")]
        assert values == expected
        if run == 1:
            assert answer["compiled"] == []  # the fresh copy in the cache is used


def test_dont_write_bytecode_stops_writes_but_not_reads(
    tmp_path: Path, pure_site: tuple[Path, list[Path]]
) -> None:
    manifest, _ = pure_site
    cache = tmp_path / "bytecode"
    assert len(run_site(manifest, ["top"], cache, "-B")["compiled"]) == 1
    assert not cache.exists()
    assert len(run_site(manifest, ["top"], cache, PYTHONDONTWRITEBYTECODE="1")["compiled"]) == 1
    assert not cache.exists()
    run_site(manifest, ["top"], cache)
    assert run_site(manifest, ["top"], cache, "-B")["compiled"] == []


# -- the user cache's own bookkeeping --------------------------------------------------


def test_real_dir_is_realpath_one_component_at_a_time(tmp_path: Path) -> None:
    """The cache is keyed by real paths; ``real_dir`` gets them from the parent's, with
    one lstat per directory: it must agree with ``os.path.realpath`` through links to
    directories, links to links, and ``..`` components."""
    from vsite.finder.bytecode import UserCache

    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "up").symlink_to(tmp_path)  # a link back up the tree
    (tmp_path / "link2").symlink_to(tmp_path / "link")
    (tmp_path / "a" / "rel").symlink_to(os.path.join("..", "link", "b"))  # relative, via a link
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    cache = UserCache()
    cache.real_dir(str(tmp_path / "loop1" / "x"))  # a loop ends (where realpath says)
    for path in (
        tmp_path / "a" / "rel" / "c",
        tmp_path / "link2" / "rel",
        tmp_path / "a" / "b" / "c",
        tmp_path / "link" / "b" / "c",
        tmp_path / "link2" / "b",
        tmp_path / "a" / "up" / "link" / "b" / "c",
        tmp_path / "a" / "b" / ".." / "b" / "c",
    ):
        assert cache.real_dir(str(path)) == os.path.realpath(path), path
        assert cache.real_path(str(path / "m.py")) == os.path.realpath(path / "m.py")
    # Files that are links (the native farm links files): absolute and relative targets,
    # a target through a linked directory, a chain, ``..``, a loop.
    (tmp_path / "a" / "b" / "c" / "m.py").write_text("")
    files = tmp_path / "files"
    files.mkdir()
    (files / "abs.py").symlink_to(tmp_path / "a" / "b" / "c" / "m.py")
    (files / "rel.py").symlink_to(os.path.join("..", "a", "b", "c", "m.py"))
    (files / "via.py").symlink_to(os.path.join("..", "link", "b", "c", "m.py"))
    (files / "plain_rel.py").symlink_to("abs.py")  # a chain, relative
    (files / "sub").symlink_to(tmp_path / "a" / "b")
    (files / "in_sub.py").symlink_to(os.path.join("sub", "c", "m.py"))
    (files / "loop1.py").symlink_to("loop2.py")
    (files / "loop2.py").symlink_to("loop1.py")
    for name in ("abs", "rel", "via", "plain_rel", "in_sub", "loop1"):
        link = files / f"{name}.py"
        assert cache.real_path(str(link)) == os.path.realpath(link), name
        assert cache.real_path(str(tmp_path / "link2" / ".." / "files" / link.name)) == (
            os.path.realpath(tmp_path / "link2" / ".." / "files" / link.name)
        ), name


def test_a_directory_without_pycache_is_looked_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root that ships no bytecode costs one failed open per directory, not per module;
    a directory whose ``__pycache__`` lacks one file is still read for the others."""
    from vsite.finder import bytecode

    opened: list[str] = []
    real_read = bytecode.read_bytecode

    def counting(path: str) -> bytes | None:
        opened.append(os.path.basename(path))
        return real_read(path)

    monkeypatch.setattr(bytecode, "read_bytecode", counting)
    bare = tmp_path / "bare"
    shipping = tmp_path / "shipping"
    for directory in (bare, shipping):
        directory.mkdir()
        for name in ("one", "two", "three"):
            (directory / f"{name}.py").write_text(f"N = {name!r}\n")
    py_compile.compile(str(shipping / "two.py"), cfile=str(shipping / "__pycache__" / "x.pyc"))
    cache = bytecode.UserCache()
    for directory in (bare, shipping):
        for name in ("one", "two", "three"):
            source = str(directory / f"{name}.py")
            cache.read_shipped(bytecode.shipped_bytecode(source, "tag"))
    tag = "tag.pyc"
    assert opened == [f"one.{tag}", *[f"{n}.{tag}" for n in ("one", "two", "three")]]


# -- vsite gc: the cache's files whose source is gone -----------------------------------


def test_gc_removes_cached_bytecode_only_of_sources_that_are_gone(
    tmp_path: Path, pure_site: tuple[Path, list[Path]]
) -> None:
    """A removed root (a collected store entry, a deleted checkout) leaves cache files
    nothing can read again: gc removes them and the directories they leave empty, keeps
    every file whose source exists, and the site still imports from the cache after."""
    manifest, roots = pure_site
    cache = tmp_path / "bytecode"
    run_site(manifest, ["pkg.sub.mod", "top"], cache)
    shutil.rmtree(roots[0] / "pkg" / "sub")
    mine = cache / str(roots[0].resolve()).lstrip(os.sep) / "pkg"
    stray = mine / "notes.txt"  # not the cache's: left alone
    stray.write_text("")
    optimized = mine / f"__init__.{TAG}.opt-1.pyc"  # `python -O`'s, of a source still there
    optimized.write_bytes(b"")
    old_temp = mine / f"__init__.{TAG}.pyc.123.abc.tmp"  # a writer killed long ago
    new_temp = mine / f"__init__.{TAG}.pyc.456.def.tmp"  # a writer at work right now
    for temp in (old_temp, new_temp):
        temp.write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(old_temp, (hour_ago, hour_ago))
    before = pycs(cache)
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "gc"],
        capture_output=True, text=True, env=bytecode_env(cache), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"vsite: removed 3 cached bytecode files whose source is gone (3 kept) from {cache}"
    )  # sub's two files and the old temporary; pkg's (plain and -O) and top's kept
    gone = [p for p in before if f"{os.sep}sub{os.sep}" in p]
    assert len(gone) == 2
    assert pycs(cache) == sorted(set(before) - set(gone))
    assert optimized.exists()
    assert not (mine / "sub").exists()  # emptied, so removed
    assert stray.exists()
    assert new_temp.exists()
    assert not old_temp.exists()
    (roots[0] / "pkg" / "sub").mkdir()
    (roots[0] / "pkg" / "sub" / "__init__.py").write_text("")
    (roots[0] / "pkg" / "sub" / "mod.py").write_text("VALUE = 3\n")
    again = run_site(manifest, ["pkg.sub.mod", "top"], cache)
    assert again["compiled"] == sorted(
        str(roots[0] / "pkg" / "sub" / n) for n in ("__init__.py", "mod.py")
    )
    assert again["modules"]["pkg.sub.mod"]["value"] == 3


def test_gc_leaves_a_cache_directory_that_is_not_private_alone(tmp_path: Path) -> None:
    from vsite.tools.cache_gc import collect_bytecode

    cache = tmp_path / "bytecode"
    orphan = cache / "nowhere" / f"gone.{TAG}.pyc"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"")
    cache.chmod(0o777)
    sweep = collect_bytecode(str(cache))
    assert sweep.refused is not None
    assert "writable by group or others" in sweep.refused
    assert orphan.exists()
    cache.chmod(0o700)
    sweep = collect_bytecode(str(cache))
    assert (sweep.refused, sweep.removed, sweep.kept) == (None, 1, 0)
    assert not orphan.exists()
    assert cache.is_dir()
    assert collect_bytecode(str(tmp_path / "never-made")).removed == 0
