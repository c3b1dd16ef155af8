"""Real wheels' ``.pth`` files under vsite do what they do in a flat site-packages.

Each wheel comes from the local wheel store and is installed once into a cached root
(tests/real_roots.py); the probe runs under the flat layout (the reference), vsite and,
where plain sys.path entries get it wrong, the naive layout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.differential import assert_equivalent
from tests.real_roots import real_root

pytestmark = pytest.mark.realwheels


def test_setuptools_distutils_precedence_pth_installs_its_shim(tmp_path: Path) -> None:
    # setuptools < 81 (80.9.0 here) ships distutils-precedence.pth: an import line that
    # puts _distutils_hack's finder first on sys.meta_path.
    root = real_root("setuptools==80.9.0")
    probe = """
import json, sys
import _distutils_hack, distutils, distutils.core
print(json.dumps({
    "shim": [type(f).__module__ for f in sys.meta_path if "distutils" in type(f).__module__],
    "hack": _distutils_hack.__file__,
    "distutils": distutils.__file__,
    "core": distutils.core.__name__,
}))
"""
    flat = assert_equivalent([root], probe, tmp_path, env={"SETUPTOOLS_USE_DISTUTILS": "local"})
    # Its shim is first; an older setuptools in the interpreter's site may add its own.
    assert flat["shim"][0] == "_distutils_hack"
    assert flat["distutils"].endswith("setuptools/_distutils/__init__.py")


def test_sphinxcontrib_nspkg_pth_namespace_spans_every_root(tmp_path: Path) -> None:
    # sphinxcontrib-jsmath 1.0.1 ships an old setuptools *-nspkg.pth that builds the
    # namespace package from sys._getframe(1).f_locals['sitedir']; applehelp 2.0.0 is a
    # plain PEP 420 portion in another root.
    roots = [real_root("sphinxcontrib-jsmath==1.0.1"), real_root("sphinxcontrib-applehelp==2.0.0")]
    probe = """
import json, sys, importlib.util
made_at_start = "sphinxcontrib" in sys.modules
import sphinxcontrib
print(json.dumps({
    "made_at_start": made_at_start,
    "path": {"__set__": list(sphinxcontrib.__path__)},
    "jsmath": importlib.util.find_spec("sphinxcontrib.jsmath").origin,
    "applehelp": getattr(importlib.util.find_spec("sphinxcontrib.applehelp"), "origin", None),
}))
"""
    flat = assert_equivalent(roots, probe, tmp_path, naive_differs=True)
    assert flat == {
        "made_at_start": True,
        "path": ["<site>/sphinxcontrib"],
        "jsmath": "<site>/sphinxcontrib/jsmath/__init__.py",
        "applehelp": "<site>/sphinxcontrib/applehelp/__init__.py",
    }


def test_coverage_pth_starts_measurement_in_the_process(tmp_path: Path) -> None:
    # coverage's a1_coverage.pth starts coverage when COVERAGE_PROCESS_START is set; its
    # C tracer is native code, so vsite imports it through the farm.
    root = real_root("coverage==7.16.2")
    rc = tmp_path / "coveragerc"
    rc.write_text(f"[run]\ndata_file = {tmp_path / 'data' / '.coverage'}\n", encoding="utf-8")
    probe = """
import json
import coverage
current = coverage.Coverage.current()
print(json.dumps({
    "started": current is not None,
    "core": dict(current.sys_info()).get("core") if current is not None else None,
    "file": coverage.__file__,
}))
"""
    env = {"COVERAGE_PROCESS_START": str(rc)}
    # pex-style addsitedir per root runs this .pth too: what vsite shows here is that it
    # runs .pth files at all, which plain sys.path entries do not.
    flat = assert_equivalent([root], probe, tmp_path, differs=("naive",), env=env)
    assert flat["started"] is True
    assert flat["file"] == "<site>/coverage/__init__.py"


def test_cmeel_pth_adds_the_merged_prefix_sitelib(tmp_path: Path) -> None:
    # cmeel.pth runs cmeel_pth, which appends <dir>/cmeel.prefix/lib/pythonX.Y/site-packages
    # for its own directory and for every sys.path entry where it exists. eigenpy's
    # Python package lives there, in another root than cmeel's; cmeel-zlib adds more to
    # the same cmeel.prefix tree.
    roots = [
        real_root("cmeel==0.61.0"),
        real_root("eigenpy==3.13.0"),
        real_root("cmeel-zlib==1.3.2"),
    ]
    probe = """
import json, os, sys, importlib.util
spec = importlib.util.find_spec("eigenpy")
print(json.dumps({
    # cmeel appends its own directory's sitelib whether it exists or not; under vsite
    # that directory is cmeel's root, where nothing is: only existing entries count.
    "sitelibs": [p for p in sys.path if "cmeel.prefix" in p and os.path.isdir(p)],
    "eigenpy": spec.origin if spec is not None else None,
}))
"""
    # addsitedir per root (pex style) runs cmeel.pth as well, and cmeel scans every
    # sys.path entry: it finds eigenpy's sitelib too. Only plain entries miss it.
    flat = assert_equivalent(roots, probe, tmp_path, differs=("naive",))
    sitelib = "cmeel.prefix/lib/python{}.{}/site-packages".format(*sys.version_info[:2])
    assert flat["sitelibs"] == [f"<site>/{sitelib}"]
    assert flat["eigenpy"] == f"<site>/{sitelib}/eigenpy/__init__.py"
