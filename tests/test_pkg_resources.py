"""pkg_resources, when the program imports it, sees the site as it sees a flat one.

setuptools 80.9.0 (the last line with pkg_resources is < 81) comes from the local wheel
store as a root of its own; the interpreter's own site-packages stays on sys.path
behind the site, as a venv with system site packages would have it. Each probe runs
under the flat layout (the reference) and under vsite; the outputs must be equal. vsite
itself never imports pkg_resources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import make_root, write_manifest, write_tree
from tests.differential import assert_equivalent, run_layouts
from tests.real_roots import real_root

pytestmark = pytest.mark.realwheels

SETUPTOOLS = "setuptools==80.9.0"

PRELUDE = """\
import json, sys, warnings
warnings.simplefilter("ignore")  # pkg_resources and declare_namespace are deprecated
import pkg_resources

def as_set(items):
    return {"__set__": list(items)}

def listing(working_set):
    return [[d.project_name, d.version, d.location] for d in working_set]
"""

DECLARE = "__import__('pkg_resources').declare_namespace(__name__)\n"


@pytest.fixture(scope="module")
def setuptools_root() -> Path:
    return real_root(SETUPTOOLS)


def plugin_root(base: Path, name: str, version: str = "1.0", **kw: object) -> Path:
    root = make_root(
        base,
        name,
        {name: {"__init__.py": f"WHO = {name!r}\n"}},
        version=version,
        entry_points={"vsite.plugins": {name: f"{name}:WHO"}},
        **kw,  # type: ignore[arg-type]
    )
    return root


def requires(root: Path, *lines: str) -> Path:
    """Add ``Requires-Dist`` lines to the root's one METADATA."""
    (info,) = root.glob("*.dist-info")
    metadata = info / "METADATA"
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text + "".join(f"Requires-Dist: {line}\n" for line in lines), "utf-8")
    return root


def test_working_set_lists_site_distributions_where_the_flat_site_has_them(
    tmp_path: Path, setuptools_root: Path
) -> None:
    roots = [setuptools_root, plugin_root(tmp_path, "zeta"), plugin_root(tmp_path, "alpha")]
    probe = (
        PRELUDE
        + """
ws = pkg_resources.working_set
print(json.dumps({"listing": listing(ws), "entries": ws.entries}))
"""
    )
    flat = assert_equivalent(roots, probe, tmp_path)
    names = [name for name, _, location in flat["listing"] if location == "<site>"]
    # find_on_path order: the flat directory's dist-info names, sorted.
    assert names[:3] == ["alpha", "setuptools", "zeta"]
    # The site's distributions come before those of the interpreter's site-packages.
    first_outside = next(n for n, (_, _, loc) in enumerate(flat["listing"]) if loc != "<site>")
    assert all(loc != "<site>" for _, _, loc in flat["listing"][first_outside:])


def test_get_distribution_require_and_entry_points_see_the_site(
    tmp_path: Path, setuptools_root: Path
) -> None:
    alpha = requires(plugin_root(tmp_path, "alpha", "2.5"), "beta>=1")
    beta = plugin_root(tmp_path, "beta", "1.1")
    probe = (
        PRELUDE
        + """
dist = pkg_resources.get_distribution("alpha")
print(json.dumps({
    "alpha": [dist.project_name, dist.version, dist.location, [str(r) for r in dist.requires()]],
    "setuptools": pkg_resources.get_distribution("setuptools").version,
    "require": [str(d) for d in pkg_resources.require("alpha")],
    "plugins": [[ep.name, ep.dist.project_name, ep.load()]
                for ep in pkg_resources.iter_entry_points("vsite.plugins")],
    "one": [ep.name for ep in pkg_resources.iter_entry_points("vsite.plugins", "beta")],
    "metadata": pkg_resources.get_distribution("beta").get_metadata("METADATA").splitlines()[1],
    "missing": repr(pkg_resources.working_set.find(pkg_resources.Requirement.parse("nope"))),
}))
"""
    )
    flat = assert_equivalent([setuptools_root, alpha, beta], probe, tmp_path)
    assert flat["alpha"] == ["alpha", "2.5", "<site>", ["beta>=1"]]
    assert flat["setuptools"] == "80.9.0"
    assert flat["require"] == ["alpha 2.5", "beta 1.1"]
    assert flat["plugins"] == [["alpha", "alpha", "alpha"], ["beta", "beta", "beta"]]


def test_site_distribution_hides_the_same_project_of_the_interpreters_site(
    tmp_path: Path, setuptools_root: Path
) -> None:
    # Whatever the interpreter's site-packages holds (pytest is in it: the suite runs),
    # a root with the same project wins, as in a venv with system site packages.
    fake = plugin_root(tmp_path, "pytest", "0.0.1")
    probe = (
        PRELUDE
        + """
dist = pkg_resources.get_distribution("pytest")
print(json.dumps([dist.version, dist.location, str(pkg_resources.require("pytest")[0])]))
"""
    )
    flat = assert_equivalent([setuptools_root, fake], probe, tmp_path)
    assert flat == ["0.0.1", "<site>", "pytest 0.0.1"]


def test_earlier_sys_path_entry_keeps_its_distribution(
    tmp_path: Path, setuptools_root: Path
) -> None:
    early = write_tree(tmp_path / "early", {})
    make_root(early, "inner", dist="alpha", version="9.0")
    roots = [setuptools_root, plugin_root(tmp_path, "alpha", "1.0")]
    probe = (
        PRELUDE.replace(
            "import pkg_resources\n",
            f"sys.path.insert(0, {str(early / 'inner')!r})\nimport pkg_resources\n",
        )
        + """
print(json.dumps(pkg_resources.get_distribution("alpha").version))
"""
    )
    assert assert_equivalent(roots, probe, tmp_path) == "9.0"


def test_declare_namespace_packages_get_every_portion(
    tmp_path: Path, setuptools_root: Path
) -> None:
    roots = [setuptools_root]
    for name in ("one", "two"):
        root = make_root(
            tmp_path,
            f"nsp-{name}",
            {"nsp": {"__init__.py": DECLARE, name + ".py": f"WHO = {name!r}\n",
                     "sub": {"__init__.py": DECLARE, f"{name}_sub.py": f"WHO = {name!r}\n"}}},
        )  # fmt: skip
        (next(root.glob("*.dist-info")) / "namespace_packages.txt").write_text("nsp\nnsp.sub\n")
        roots.append(root)
    probe = (
        PRELUDE
        + """
import nsp.one, nsp.two, nsp.sub.one_sub, nsp.sub.two_sub
print(json.dumps({
    "nsp": as_set(nsp.__path__),
    "sub": as_set(nsp.sub.__path__),
    "who": [nsp.one.WHO, nsp.two.WHO, nsp.sub.one_sub.WHO, nsp.sub.two_sub.WHO],
    "declared": sorted(k or "" for k in pkg_resources._namespace_packages),
}))
"""
    )
    flat = assert_equivalent(roots, probe, tmp_path)
    assert flat["nsp"] == ["<site>/nsp"]
    assert flat["who"] == ["one", "two", "one", "two"]


def test_namespace_portion_behind_the_site_stays_behind_it(
    tmp_path: Path, setuptools_root: Path
) -> None:
    # A directory after the site on sys.path (as the interpreter's site-packages is)
    # holds another portion, with a module of the same name: the site's must win.
    later = write_tree(
        tmp_path / "later",
        {"nsp": {"__init__.py": DECLARE, "one.py": "WHO = 'later'\n", "three.py": "WHO = 3\n"}},
    )
    roots = [setuptools_root]
    for name in ("one", "two"):
        roots.append(
            make_root(
                tmp_path,
                f"nsp-{name}",
                {"nsp": {"__init__.py": DECLARE, name + ".py": f"WHO = {name!r}\n"}},
            )
        )
    probe = (
        PRELUDE.replace("import pkg_resources\n", "")
        + f"""
sys.path.append({str(later)!r})
import pkg_resources
import nsp.one, nsp.two, nsp.three
print(json.dumps({{"path": nsp.__path__, "who": [nsp.one.WHO, nsp.two.WHO, nsp.three.WHO]}}))
"""
    )
    runs = run_layouts(roots, probe, tmp_path, layouts=("flat", "vsite"))
    assert runs["flat"]["who"] == ["one", "two", 3]
    assert runs["vsite"]["who"] == runs["flat"]["who"]
    flat_path = runs["flat"]["path"]
    assert flat_path == ["<site>/nsp", str(later / "nsp")]
    # vsite has one portion per root where the flat site has one directory.
    assert runs["vsite"]["path"] == ["<site>/nsp", "<site>/nsp", str(later / "nsp")]


def test_pkg_resources_imported_before_activation_sees_the_site(
    tmp_path: Path, setuptools_root: Path
) -> None:
    alpha = plugin_root(tmp_path, "alpha", "2.0")
    manifest = write_manifest(tmp_path / "m.json", [alpha])
    code = f"""
import json, sys, warnings
warnings.simplefilter("ignore")
sys.path.append({str(setuptools_root)!r})
import pkg_resources
import vsite
handle = vsite.activate({str(manifest)!r})
dist = pkg_resources.get_distribution("alpha")
ws = pkg_resources.working_set
print(json.dumps({{
    "alpha": [dist.version, dist.location == pkg_resources.normalize_path(handle.site_path)],
    "entry": ws.entries.index(handle.site_path) < ws.entries.index({str(setuptools_root)!r}),
    "plugins": [ep.name for ep in pkg_resources.iter_entry_points("vsite.plugins")],
}}))
"""
    assert _run(code, tmp_path) == {"alpha": ["2.0", True], "entry": True, "plugins": ["alpha"]}


def test_pkg_resources_imported_by_a_pth_file_sees_the_site(
    tmp_path: Path, setuptools_root: Path
) -> None:
    # The import runs while the site's .pth files run; attaching again at the end of
    # activation must not add anything twice.
    importer = plugin_root(tmp_path, "importer")
    (importer / "zz-imports-pkg-resources.pth").write_text(
        "import warnings; warnings.simplefilter('ignore'); import pkg_resources\n"
    )
    probe = (
        PRELUDE
        + """
ws = pkg_resources.working_set
print(json.dumps({
    "listing": listing(ws),
    "keys": sorted(key for entry in ws.entries for key in ws.entry_keys.get(entry, ())),
}))
"""
    )
    flat = assert_equivalent([setuptools_root, importer], probe, tmp_path)
    site = [name for name, _, location in flat["listing"] if location == "<site>"]
    assert site == ["importer", "setuptools"]


def test_pkg_resources_keeps_its_standard_loader(tmp_path: Path, setuptools_root: Path) -> None:
    probe = (
        PRELUDE
        + """
import importlib.machinery
loader = pkg_resources.__loader__
print(json.dumps([
    # A standard loader: vsite's moves only where bytecode lives, loading is the stdlib's.
    isinstance(loader, importlib.machinery.SourceFileLoader)
    and type(loader).exec_module is importlib.machinery.SourceFileLoader.exec_module
    and type(loader).get_code is importlib.machinery.SourceFileLoader.get_code,
    pkg_resources.__spec__.loader is pkg_resources.__loader__,
    pkg_resources.__file__,
]))
"""
    )
    flat = assert_equivalent([setuptools_root], probe, tmp_path)
    assert flat[:2] == [True, True]


def test_activation_and_imports_never_import_pkg_resources(
    tmp_path: Path, setuptools_root: Path
) -> None:
    ns = make_root(tmp_path, "plain", {"plain": {"__init__.py": ""}})
    manifest = write_manifest(tmp_path / "m.json", [setuptools_root, ns])
    code = f"""
import json, sys, importlib.metadata
BANNED = ("pkg_resources", "setuptools")
import vsite
vsite.activate({str(manifest)!r})
import plain
names = [d.metadata["Name"] for d in importlib.metadata.distributions()]
print(json.dumps({{
    "imported": sorted(m for m in sys.modules if m.partition(".")[0] in BANNED),
    "support": "vsite.finder.pkg_resources_support" in sys.modules,
    "setuptools_seen": "setuptools" in names,
}}))
"""
    out = _run(code, tmp_path)
    assert out["imported"] == []
    assert out["support"] is False
    assert out["setuptools_seen"] is True


def test_interpreters_own_pkg_resources_sees_the_site(tmp_path: Path) -> None:
    # setuptools installed into the test venv instead of as a root (3.9-3.11 venvs).
    check = subprocess.run(
        [sys.executable, "-c", "import setuptools; print(setuptools.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = check.stdout.strip()
    if check.returncode != 0 or int(version.split(".")[0]) >= 81:
        pytest.skip(f"the interpreter's site-packages has no setuptools < 81 ({version or 'none'})")
    roots = [requires(plugin_root(tmp_path, "alpha", "2.0"), "beta"), plugin_root(tmp_path, "beta")]
    probe = (
        PRELUDE
        + """
print(json.dumps({
    "listing": listing(pkg_resources.working_set)[:2],
    "require": [str(d) for d in pkg_resources.require("alpha")],
    "plugins": [ep.name for ep in pkg_resources.iter_entry_points("vsite.plugins")],
}))
"""
    )
    flat = assert_equivalent(roots, probe, tmp_path)
    # In find_on_path's order, which older pkg_resources take by version, descending.
    assert sorted(flat["listing"]) == [["alpha", "2.0", "<site>"], ["beta", "1.0", "<site>"]]


def _run(code: str, tmp_path: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("VSITE_")}
    env["VSITE_DIR"] = str(tmp_path / "state")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result
