"""Relative RUNPATH/RPATH of staged native code resolves as in one flat site-packages.

Each scenario is built from shared libraries and extension modules compiled here and
mimics a layout found in real wheels. Every probe runs in a fresh interpreter under four
layouts: ``flat`` (the union copied into one directory: the reference), ``vsite``,
``naive`` (the roots appended to sys.path) and ``dirlinks`` (a hand-built farm of one
directory symlink per top-level name: the layout vsite must NOT use, because the kernel
resolves ``$ORIGIN/..`` through a directory link physically).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.builders import make_root, write_manifest
from tests.native_builders import EXT, NativeBuild, dynamic_tags

LAYOUTS = ("flat", "vsite", "naive", "dirlinks")
BROKEN = ("naive", "dirlinks")


class Scenario:
    """Roots (manifest order), a probe printing a number, and what a broken layout lacks."""

    def __init__(
        self,
        base: Path,
        roots: list[Path],
        probe: str,
        expected: int,
        missing: str | dict[str, str],
    ) -> None:
        self.base = base
        self.roots = roots
        self.manifest = write_manifest(base / "manifest.json", list(roots))
        self.probe = textwrap.dedent(probe)
        self.expected = expected
        self.missing = missing


def child_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of a probe: no inherited library or Python path, a private state."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONHOME")
        and not key.startswith("VSITE_")
    }
    env["VSITE_DIR"] = str(state)
    env.update(extra)
    return env


def prepare(layout: str, scenario: Scenario, work: Path, link: str | None = None) -> str:
    """Python code that sets up ``layout`` in the child, to run before the probe."""
    roots = [str(r) for r in scenario.roots]
    if layout == "naive":
        return f"import sys; sys.path.extend({roots!r})\n"
    if layout == "flat":
        flat = work / "flat"
        for root in reversed(roots):  # later copies overwrite: the first root wins
            shutil.copytree(root, flat, symlinks=True, dirs_exist_ok=True)
        return f"import sys; sys.path.append({str(flat)!r})\n"
    if layout == "dirlinks":
        farm = work / "dirlinks"
        farm.mkdir()
        for root in roots:
            for name in os.listdir(root):
                if not (farm / name).exists() and not name.endswith(".dist-info"):
                    (farm / name).symlink_to(os.path.join(root, name))
        return f"import sys; sys.path.append({str(farm)!r})\n"
    assert layout == "vsite"
    return f"import vsite; vsite.activate({str(scenario.manifest)!r}, link={link!r})\n"


def run_probe(
    scenario: Scenario, layout: str, work: Path, *, link: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    work.mkdir(parents=True, exist_ok=True)
    code = prepare(layout, scenario, work, link) + scenario.probe
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(work / "state", **env),
        check=False,
        timeout=60,
    )


def assert_layout(
    scenario: Scenario, layout: str, result: subprocess.CompletedProcess[str]
) -> None:
    if layout in BROKEN:
        assert result.returncode != 0, f"{layout} unexpectedly works: {result.stdout}"
        missing = scenario.missing
        missing = missing if isinstance(missing, str) else missing[layout]
        assert f"{missing}: cannot open shared object file" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(scenario.expected)]


# -- scenarios -----------------------------------------------------------------------


def torch_like_root(base: Path, ext: bytes, core: bytes) -> Path:
    """``tpkg/_C`` (rpath ``$ORIGIN/lib``) and ``tpkg/lib/libtcore.so``, as torch lays out."""
    return make_root(base, "tpkg", {
        "tpkg": {
            "__init__.py": "from tpkg._C import value\n",
            "_C" + EXT: ext,
            "lib": {"libtcore.so": core},
        },
    })  # fmt: skip


def torch_to_nvidia(base: Path, dtags: str = "runpath") -> Scenario:
    """torch/_C -> torch/lib/libtorch (``$ORIGIN/../../nvidia/x/lib``) -> nvidia wheel."""
    build = NativeBuild(base / "build")
    nvx = build.lib("libnvx.so.1", 100)
    core = build.lib(
        "libtcore.so", 10, needs=["libnvx.so.1"], rpath="$ORIGIN/../../ns/x/lib:$ORIGIN",
        dtags=dtags,
    )  # fmt: skip
    ext = build.extension("_C", needs=["libtcore.so"], rpath="$ORIGIN/lib", dtags=dtags)
    roots = [
        torch_like_root(base, ext, core),
        make_root(base, "ns-x", {"ns": {"x": {"__init__.py": "", "lib": {"libnvx.so.1": nvx}}}}),
    ]  # fmt: skip
    probe = "import tpkg; print(tpkg.value())"
    return Scenario(base, roots, probe, build.value("libtcore.so"), "libnvx.so.1")


def transitive(base: Path, dtags: str) -> Scenario:
    """libtcore's rpath must also serve libmid's own dependency (libleaf).

    DT_RPATH is searched for the whole chain of loaders; DT_RUNPATH only for the
    object's direct dependencies, so the RUNPATH build fails in the flat layout too.
    """
    build = NativeBuild(base / "build")
    leaf = build.lib("libleaf.so.1", 1000)
    mid = build.lib("libmid.so.1", 100, needs=["libleaf.so.1"])  # no rpath of its own
    core = build.lib(
        "libtcore.so", 10, needs=["libmid.so.1"], rpath="$ORIGIN/../../ns/x/lib", dtags=dtags
    )
    ext = build.extension("_C", needs=["libtcore.so"], rpath="$ORIGIN/lib", dtags=dtags)
    roots = [
        torch_like_root(base, ext, core),
        make_root(base, "ns-x", {"ns": {"x": {"lib": {"libmid.so.1": mid, "libleaf.so.1": leaf}}}}),
    ]  # fmt: skip
    probe = "import tpkg; print(tpkg.value())"
    return Scenario(base, roots, probe, build.value("libtcore.so"), "libmid.so.1")


def auditwheel_split(base: Path) -> Scenario:
    """``apkg/_ext`` with RUNPATH ``$ORIGIN/../apkg.libs``, the libs shipped by another
    root (a bindings wheel and a libs wheel, as TensorRT splits them); inside the .libs
    dir the libraries find each other through ``$ORIGIN``."""
    build = NativeBuild(base / "build")
    dep2 = build.lib("libdep2-9c3b7d41.so.1", 200)
    dep = build.lib("libdep-5f2e1a0b.so.1", 20, needs=["libdep2-9c3b7d41.so.1"], rpath="$ORIGIN")
    ext = build.extension("_ext", needs=["libdep-5f2e1a0b.so.1"], rpath="$ORIGIN/../apkg.libs")
    roots = [
        make_root(base, "apkg", {"apkg": {"__init__.py": "from apkg._ext import value\n",
                                          "_ext" + EXT: ext}}),
        make_root(base, "apkg-libs", {"apkg.libs": {"libdep-5f2e1a0b.so.1": dep,
                                                    "libdep2-9c3b7d41.so.1": dep2}}),
    ]  # fmt: skip
    probe = "import apkg; print(apkg.value())"
    return Scenario(base, roots, probe, build.value("libdep-5f2e1a0b.so.1"), "libdep-5f2e1a0b.so.1")


def shared_lib_dir(base: Path) -> Scenario:
    """One ``ns/cu/lib`` filled by two roots; libcua (RUNPATH ``$ORIGIN``) needs libcub
    from the other root, as libcusparse needs libnvJitLink. The probe finds the library
    the way torch's fallback does: globbing sys.path, then loading it by full path.
    Both roots also ship libcommon.so.1: the first root's copy must win."""
    first, second = NativeBuild(base / "build-a"), NativeBuild(base / "build-b")
    cub = second.lib("libcub.so.1", 2)
    first.lib("libcub.so.1", 2)  # to link against; only the second root ships it
    common_a = first.lib("libcommon.so.1", 10)
    common_b = second.lib("libcommon.so.1", 20)
    cua = first.lib("libcua.so.1", 1, needs=["libcub.so.1", "libcommon.so.1"], rpath="$ORIGIN")
    roots = [
        make_root(base, "ns-cu-a", {"ns": {"cu": {"lib": {"libcua.so.1": cua,
                                                          "libcommon.so.1": common_a}}}}),
        make_root(base, "ns-cu-b", {"ns": {"cu": {"lib": {"libcub.so.1": cub,
                                                          "libcommon.so.1": common_b}}}}),
    ]  # fmt: skip
    probe = """
        import ctypes, glob, os, sys
        hits = [hit for entry in sys.path
                for hit in glob.glob(os.path.join(entry, "ns", "*", "lib", "libcua.so.1"))]
        print(ctypes.CDLL(hits[0]).cua_value())
    """
    return Scenario(base, roots, probe, first.value("libcua.so.1"), "libcub.so.1")


def shared_lib_dir_extension(base: Path) -> Scenario:
    """A top-level extension in a third root links ``$ORIGIN/ns/cu/lib/libcua`` (the merged
    dir): the roots on sys.path lack ``ns`` beside it; a directory link to the first
    ``ns`` lacks libcub."""
    build = NativeBuild(base / "build")
    cub = build.lib("libcub.so.1", 2)
    cua = build.lib("libcua.so.1", 1, needs=["libcub.so.1"], rpath="$ORIGIN")
    ext = build.extension("cuuser", needs=["libcua.so.1"], rpath="$ORIGIN/ns/cu/lib")
    roots = [
        make_root(base, "cuuser", {"cuuser" + EXT: ext}),
        make_root(base, "ns-cu-a", {"ns": {"cu": {"lib": {"libcua.so.1": cua}}}}),
        make_root(base, "ns-cu-b", {"ns": {"cu": {"lib": {"libcub.so.1": cub}}}}),
    ]
    probe = "import cuuser; print(cuuser.value())"
    missing = {"naive": "libcua.so.1", "dirlinks": "libcub.so.1"}
    return Scenario(base, roots, probe, build.value("libcua.so.1"), missing)


SCENARIOS = {
    "torch_to_nvidia_runpath": lambda base: torch_to_nvidia(base, "runpath"),
    "torch_to_nvidia_rpath": lambda base: torch_to_nvidia(base, "rpath"),
    "transitive_rpath": lambda base: transitive(base, "rpath"),
    "auditwheel_split": auditwheel_split,
    "shared_lib_dir": shared_lib_dir,
    "shared_lib_dir_extension": shared_lib_dir_extension,
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    name: str = request.param
    return SCENARIOS[name](tmp_path_factory.mktemp(name))


# -- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_rpath_resolves_under_vsite_and_flat_but_not_naive_or_directory_links(
    scenario: Scenario, layout: str, tmp_path: Path
) -> None:
    assert_layout(scenario, layout, run_probe(scenario, layout, tmp_path))


def test_rpath_resolves_under_vsite_exec(scenario: Scenario, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "exec", str(scenario.manifest), "--",
         sys.executable, "-c", scenario.probe],
        capture_output=True, text=True, env=child_env(tmp_path / "state"), check=False,
        timeout=60,
    )  # fmt: skip
    assert_layout(scenario, "vsite", result)


def test_scenario_libraries_carry_the_intended_dynamic_tags(tmp_path: Path) -> None:
    """The builders really write DT_RUNPATH by default and DT_RPATH on request, so the
    scenarios above test what their names say."""
    runpath, rpath = torch_to_nvidia(tmp_path / "a"), torch_to_nvidia(tmp_path / "b", "rpath")
    core = dynamic_tags(runpath.roots[0] / "tpkg" / "lib" / "libtcore.so")
    assert (core.runpath, core.rpath) == ("$ORIGIN/../../ns/x/lib:$ORIGIN", None)
    assert core.needed == ["libnvx.so.1"]
    assert core.soname == "libtcore.so"
    core = dynamic_tags(rpath.roots[0] / "tpkg" / "lib" / "libtcore.so")
    assert (core.runpath, core.rpath) == (None, "$ORIGIN/../../ns/x/lib:$ORIGIN")
    ext = dynamic_tags(rpath.roots[0] / "tpkg" / ("_C" + EXT))
    assert (ext.runpath, ext.rpath, ext.needed) == (None, "$ORIGIN/lib", ["libtcore.so"])


@pytest.mark.parametrize("layout", ["flat", "vsite"])
def test_runpath_does_not_serve_dependencies_of_dependencies_in_flat_or_vsite(
    layout: str, tmp_path: Path
) -> None:
    """The same chain as ``transitive_rpath`` built with DT_RUNPATH fails in a flat
    site-packages, and vsite fails the same way (it reproduces the flat layout, it does
    not paper over a broken wheel)."""
    scenario = transitive(tmp_path / "roots", "runpath")
    result = run_probe(scenario, layout, tmp_path / "run")
    assert result.returncode != 0
    assert "libleaf.so.1: cannot open shared object file" in result.stderr


def test_single_root_auditwheel_libs_keep_working_through_the_farm(tmp_path: Path) -> None:
    """``apkg/_ext`` and ``apkg.libs`` in one root work in every layout; vsite must stage
    the ``.libs`` dir beside the package in the farm, or it would break them."""
    build = NativeBuild(tmp_path / "build")
    dep = build.lib("libdep-0a1b2c3d.so.1", 7)
    ext = build.extension("_ext", needs=["libdep-0a1b2c3d.so.1"], rpath="$ORIGIN/../apkg.libs")
    root = make_root(tmp_path, "apkg", {
        "apkg": {"__init__.py": "from apkg._ext import value\n", "_ext" + EXT: ext},
        "apkg.libs": {"libdep-0a1b2c3d.so.1": dep},
    })  # fmt: skip
    scenario = Scenario(tmp_path, [root], "import apkg; print(apkg.value(), apkg.__file__)", 7, "-")
    for layout in ("naive", "vsite"):
        result = run_probe(scenario, layout, tmp_path / layout)
        assert result.returncode == 0, result.stderr
        value, where = result.stdout.split()
        assert value == "7"
        assert where.startswith(str(root)) == (layout == "naive")


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_every_link_mode_resolves_cross_root_rpaths(mode: str, tmp_path: Path) -> None:
    scenario = torch_to_nvidia(tmp_path / "roots")
    probe = textwrap.dedent(f"""
        import os, vsite
        handle = vsite.activate({str(scenario.manifest)!r}, link={mode!r})
        import tpkg
        lib = os.path.join(handle.farm.path, "ns", "x", "lib", "libnvx.so.1")
        kind = ("symlink" if os.path.islink(lib)
                else "hardlink" if os.stat(lib).st_nlink > 1 else "copy")
        print(tpkg.value(), handle.farm.plan.mode, kind, tpkg.__file__.startswith(handle.farm.path))
    """)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False,
        env=child_env(tmp_path / "state"), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(scenario.expected), mode, mode, "True"]


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_link_mode_from_the_environment_reaches_vsite_exec(mode: str, tmp_path: Path) -> None:
    scenario = torch_to_nvidia(tmp_path / "roots")
    probe = textwrap.dedent("""
        import vsite, tpkg
        print(tpkg.value(), vsite.activation.active().farm.plan.mode)
    """)
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "exec", str(scenario.manifest), "--",
         sys.executable, "-c", probe],
        capture_output=True, text=True, check=False, timeout=60,
        env=child_env(tmp_path / "state", VSITE_LINK_MODE=mode),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(scenario.expected), mode]
