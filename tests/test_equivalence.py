"""SPEC section 1, the equivalence rule: vsite behaves as ONE flat site-packages.

Each test builds roots, runs one probe under the flat layout (the reference), under
vsite and, where plain sys.path entries get it wrong, under the controls of
tests/differential.py (the naive layout; pex's ``site.addsitedir`` per root too where a
root has ``.pth`` files), which must then differ (otherwise the test would prove nothing).
"""

from __future__ import annotations

import py_compile
import sys
from pathlib import Path

import pytest

from tests.builders import compile_extension, dist_info_name, make_root
from tests.differential import assert_equivalent

# Helpers every probe starts with. ``as_set`` marks a list compared as a set of
# distinct items once paths are normalised (a package's portions are one <site> dir).
PRELUDE = """\
import importlib, importlib.util, json, os, sys
from importlib.machinery import ExtensionFileLoader, SourceFileLoader, SourcelessFileLoader

def as_set(items):
    return {"__set__": list(items)}

def kind(module):
    loader = module.__spec__.loader
    for cls in (ExtensionFileLoader, SourceFileLoader, SourcelessFileLoader):
        if isinstance(loader, cls):
            return cls.__name__
    return "namespace" if getattr(module, "__file__", None) is None else type(loader).__name__

def describe(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        return {"error": type(exc).__name__}
    return {
        "kind": kind(module),
        "file": getattr(module, "__file__", None),
        "cached": getattr(module, "__cached__", None),
        "path": as_set(module.__path__) if hasattr(module, "__path__") else None,
        "who": getattr(module, "WHO", None),
    }

def tree(traversable):
    return {
        child.name: tree(child) if child.is_dir() else child.read_bytes().decode("latin-1")
        for child in sorted(traversable.iterdir(), key=lambda c: c.name)
    }

def resources(name, joined=(), namespace=False):
    # stdlib files() takes namespace packages and readers from 3.10; the backport always.
    import importlib_resources
    files = importlib_resources.files(name)
    for part in joined:
        files = files.joinpath(part)
    found = {"backport": tree(files)}
    # Before 3.12 the stdlib's MultiplexedPath yields a directory present in several
    # portions as its first portion only (test_stdlib_namespace_files_...).
    if sys.version_info >= (3, 12) or (sys.version_info >= (3, 10) and not namespace):
        import importlib.resources
        files = importlib.resources.files(name)
        for part in joined:
            files = files.joinpath(part)
        found["stdlib"] = tree(files)
    return found

def group(md, name):
    # entry_points(group=...) and .select() are 3.10+; 3.9's stdlib returns a dict.
    found = md.entry_points()
    return list(found.select(group=name) if hasattr(found, "select") else found.get(name, ()))

def packages(md, prefix):
    # The stdlib infers packages from RECORD (not only top_level.txt) from 3.11 on.
    if md.__name__ == "importlib.metadata" and sys.version_info < (3, 11):
        import importlib_metadata as md
    return {k: sorted(v) for k, v in md.packages_distributions().items() if k.startswith(prefix)}

def attempt(function, *args):
    try:
        return function(*args)
    except Exception as exc:
        return {"error": type(exc).__name__}

def emit(value):
    print(json.dumps(value, sort_keys=True))
"""


def probe(body: str) -> str:
    return PRELUDE + body


# -- 1. PEP 420 namespace over three roots ------------------------------------------------


@pytest.mark.parametrize(
    ("top", "lib"),
    [
        pytest.param("nvidia", "so.13", id="native-nvidia"),
        pytest.param("nsdata", "dat", id="pure-python"),
    ],
)
def test_pep420_namespace_over_three_roots_three_levels_deep(
    tmp_path: Path, top: str, lib: str
) -> None:
    # Like nvidia/cu13/{lib,include,bin} filled by several wheels: the lower levels hold
    # only data, some modules live in between, a file in two roots goes to the first.
    a = make_root(
        tmp_path,
        "cublas",
        {
            top: {
                "cu13": {
                    "lib": {f"libcublas.{lib}": "A"},
                    "include": {"cublas.h": "a"},
                    "cublas_mod.py": "WHO = 'cublas'",
                },
                "alpha": {"__init__.py": "WHO = 'alpha'"},
            }
        },
    )
    b = make_root(
        tmp_path,
        "runtime",
        {
            top: {
                "cu13": {
                    "lib": {f"libcudart.{lib}": "B", "version.txt": "b"},
                    "include": {"cuda.h": "b"},
                    "bin": {"ptxas": "tool"},
                }
            }
        },
    )
    c = make_root(
        tmp_path,
        "nvjitlink",
        {
            top: {
                "cu13": {
                    "lib": {f"libnvJitLink.{lib}": "C", "version.txt": "c"},
                    "nvjitlink_mod.py": "WHO = 'nvjitlink'",
                },
                "gamma": {"deep": {"mod.py": "WHO = 'gamma'"}},
            }
        },
    )
    body = f"""
import pkgutil
names = ["{top}", "{top}.cu13", "{top}.cu13.lib", "{top}.cu13.include", "{top}.cu13.bin",
         "{top}.cu13.cublas_mod", "{top}.cu13.nvjitlink_mod", "{top}.alpha",
         "{top}.gamma.deep.mod"]
out = {{name: describe(name) for name in names}}
import {top}.cu13
out["files"] = resources("{top}.cu13", namespace=True)
out["files_lib"] = resources("{top}.cu13", ["lib"], namespace=True)
out["files_lib_package"] = resources("{top}.cu13.lib", namespace=True)
out["walk"] = sorted(name for _, name, _ in pkgutil.walk_packages({top}.__path__, "{top}."))
out["iter"] = sorted((n, p) for _, n, p in pkgutil.iter_modules({top}.cu13.__path__))
"""
    if top == "nvidia":
        # Loaders of CUDA libraries take the package's first directory and look in lib/.
        body += f"""
first = list({top}.cu13.__path__)[0]
out["first_dir_lib"] = sorted(os.listdir(os.path.join(first, "lib")))
"""
    # Pure-Python PEP 420 portions on separate sys.path entries are merged by the import
    # system itself: the naive layout only goes wrong once native code looks for its
    # libraries in the package's directory.
    naive_differs = top == "nvidia"
    result = assert_equivalent(
        [a, b, c], probe(body + "emit(out)\n"), tmp_path, naive_differs=naive_differs
    )
    assert result[f"{top}.cu13"]["kind"] == "namespace"
    assert result[f"{top}.cu13.lib"]["kind"] == "namespace"
    assert result[f"{top}.gamma.deep.mod"]["who"] == "gamma"
    assert result["files_lib"]["backport"] == {
        f"libcublas.{lib}": "A",
        f"libcudart.{lib}": "B",
        f"libnvJitLink.{lib}": "C",
        "version.txt": "b",
    }
    assert set(result["files"]["backport"]) == {
        "bin",
        "cublas_mod.py",
        "include",
        "lib",
        "nvjitlink_mod.py",
    }


@pytest.mark.xfail(
    (3, 10) <= sys.version_info < (3, 12),
    reason="stdlib MultiplexedPath before 3.12 yields a directory found in several "
    "portions of a namespace package as its first portion only; vsite keeps the stdlib "
    "NamespaceReader (SPEC: namespace specs are standard)",
)
@pytest.mark.skipif(sys.version_info < (3, 10), reason="stdlib files() takes namespaces from 3.10")
def test_stdlib_namespace_files_merge_a_directory_found_in_several_roots(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", {"nsres": {"lib": {"a.dat": "A"}}})
    b = make_root(tmp_path, "b", {"nsres": {"lib": {"b.dat": "B"}}})
    body = """
import importlib.resources
emit(tree(importlib.resources.files("nsres")))
"""
    result = assert_equivalent([a, b], probe(body), tmp_path)
    assert result == {"lib": {"a.dat": "A", "b.dat": "B"}}


# -- 2. pkgutil-style namespace packages ---------------------------------------------------

EXTEND_PATH = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\nWHO = '{}'\n"


def test_pkgutil_style_namespace_in_two_roots(tmp_path: Path) -> None:
    # Like google/ from google-auth and protobuf: each wheel ships the same __init__.py.
    auth = make_root(
        tmp_path,
        "google-auth",
        {
            "google": {
                "__init__.py": EXTEND_PATH.format("auth"),
                "auth": {"__init__.py": "WHO = 'google.auth'", "creds.json": "{}"},
            }
        },
    )
    protobuf = make_root(
        tmp_path,
        "protobuf",
        {
            "google": {
                "__init__.py": EXTEND_PATH.format("protobuf"),
                "protobuf": {"__init__.py": "WHO = 'google.protobuf'", "descriptor.py": ""},
                "_upb": {"README": "data"},
            }
        },
    )
    body = """
import pkgutil
out = {n: describe(n) for n in ["google", "google.auth", "google.protobuf",
                                "google.protobuf.descriptor"]}
import google
out["files"] = resources("google")
out["get_data"] = attempt(lambda: pkgutil.get_data("google", "_upb/README").decode())
out["walk"] = sorted(n for _, n, _ in pkgutil.walk_packages(google.__path__, "google."))
emit(out)
"""
    result = assert_equivalent([auth, protobuf], probe(body), tmp_path, naive_differs=True)
    assert result["google"]["who"] == "auth"  # the first root's __init__.py
    assert result["google.protobuf.descriptor"]["kind"] == "SourceFileLoader"
    assert set(result["files"]["backport"]) == {"__init__.py", "auth", "protobuf", "_upb"}
    assert result["get_data"] == "data"
    assert result["walk"] == ["google.auth", "google.protobuf", "google.protobuf.descriptor"]


# -- 3. a regular package whose subpackage another root installs ---------------------------


def test_regular_package_with_subpackage_from_another_root(tmp_path: Path) -> None:
    # Like azure/core/tracing from azure-core, azure/core/tracing/ext/... from
    # azure-core-tracing-opentelemetry (which ships no azure/core/__init__.py).
    core = make_root(
        tmp_path,
        "azure-core",
        {
            "azure": {
                "core": {
                    "__init__.py": "WHO = 'core'",
                    "tracing": {"__init__.py": "WHO = 'tracing'", "common.py": ""},
                }
            }
        },
    )
    otel = make_root(
        tmp_path,
        "azure-core-tracing-opentelemetry",
        {
            "azure": {
                "core": {
                    "tracing": {
                        "ext": {"opentelemetry_span": {"__init__.py": "WHO = 'span'"}},
                    }
                }
            }
        },
    )
    body = """
out = {n: describe(n) for n in ["azure", "azure.core", "azure.core.tracing",
                                "azure.core.tracing.common", "azure.core.tracing.ext",
                                "azure.core.tracing.ext.opentelemetry_span"]}
out["files"] = resources("azure.core.tracing")
emit(out)
"""
    result = assert_equivalent([core, otel], probe(body), tmp_path, naive_differs=True)
    assert result["azure.core.tracing"]["file"] == "<site>/azure/core/tracing/__init__.py"
    assert result["azure.core.tracing.ext"]["kind"] == "namespace"
    assert result["azure.core.tracing.ext.opentelemetry_span"]["who"] == "span"
    assert set(result["files"]["backport"]) == {"__init__.py", "common.py", "ext"}


# -- 4. the same top-level module in two roots; roots never shadow the stdlib -------------


def test_first_root_wins_a_module_and_the_stdlib_is_never_shadowed(tmp_path: Path) -> None:
    first = make_root(
        tmp_path,
        "first",
        {"same.py": "WHO = 'first'", "argparse.py": "WHO = 'rogue'", "enum.py": "WHO = 'x'"},
    )
    second = make_root(
        tmp_path, "second", {"same.py": "WHO = 'second'", "typing.py": "WHO = 'rogue'"}
    )
    body = """
import argparse, enum, typing
out = {n: describe(n) for n in ["same"]}
out["stdlib"] = {m.__name__: getattr(m, "WHO", "stdlib") for m in (argparse, enum, typing)}
out["stdlib_files"] = sorted(
    os.path.dirname(m.__file__) == os.path.dirname(os.__file__) for m in (argparse, enum, typing)
)
emit(out)
"""
    result = assert_equivalent([first, second], probe(body), tmp_path)
    assert result["same"]["who"] == "first"
    assert result["stdlib"] == {"argparse": "stdlib", "enum": "stdlib", "typing": "stdlib"}
    assert result["stdlib_files"] == [True, True, True]


# -- 5. single-file, extension and bytecode-only modules -----------------------------------


def _bytecode(tmp_path: Path, text: str) -> bytes:
    """A legacy-location ``.pyc`` compiled by this interpreter (the probes' one)."""
    source = tmp_path / "bytecode_src.py"
    source.write_text(text, encoding="utf-8")
    target = tmp_path / "bytecode_src.pyc"
    py_compile.compile(str(source), cfile=str(target), doraise=True)
    return target.read_bytes()


def test_single_file_extension_and_bytecode_only_modules(tmp_path: Path) -> None:
    compile_extension(tmp_path / "mods" / "fastpkg", "_speedups")
    compile_extension(tmp_path / "mods", "cext")
    mods = make_root(
        tmp_path,
        "mods",
        {
            "single.py": "WHO = 'single'\ndef where():\n    return 'single'\n",
            "compiled.pyc": _bytecode(tmp_path, "WHO = 'bytecode'\n"),
            "fastpkg": {"__init__.py": "from fastpkg._speedups import KIND\n"},
        },
    )
    more = make_root(tmp_path, "more", {"other.py": "WHO = 'other'"})
    body = """
import inspect, single, cext, compiled, fastpkg
out = {n: describe(n) for n in ["single", "cext", "compiled", "fastpkg", "fastpkg._speedups",
                                "other"]}
out["cext_kind"] = cext.KIND
out["fastpkg_kind"] = fastpkg.KIND
out["source"] = inspect.getsource(single.where)
emit(out)
"""
    result = assert_equivalent([mods, more], probe(body), tmp_path)
    assert result["cext"]["kind"] == "ExtensionFileLoader"
    assert result["fastpkg._speedups"]["kind"] == "ExtensionFileLoader"
    assert result["compiled"] == {
        "kind": "SourcelessFileLoader",
        "file": "<site>/compiled.pyc",
        "cached": "<site>/compiled.pyc",
        "path": None,
        "who": "bytecode",
    }
    # vsite's is in the per-user cache: tests/differential.py maps it to flat's place.
    assert result["single"]["cached"].startswith("<site>/__pycache__/single.")
    assert result["source"] == "def where():\n    return 'single'\n"


# -- precedence within one name is the flat directory's ------------------------------------


def test_precedence_within_a_name_is_the_flat_directorys(tmp_path: Path) -> None:
    compile_extension(tmp_path / "late", "speed", kind="later-extension")
    early = make_root(
        tmp_path,
        "early",
        {
            "Q.py": "WHO = 'early module'",
            "speed.py": "WHO = 'early source'",
            "bc.pyc": _bytecode(tmp_path, "WHO = 'early bytecode'\n"),
            "nsfirst": {"data.txt": "namespace portion"},
        },
    )
    late = make_root(
        tmp_path,
        "late",
        {
            "Q": {"__init__.py": "WHO = 'late package'"},
            "bc.py": "WHO = 'late source'",
            "nsfirst.py": "WHO = 'late module'",
        },
    )
    body = """
out = {n: describe(n) for n in ["Q", "bc", "nsfirst"]}
import speed
out["speed"] = [speed.__spec__.loader.__class__.__name__, getattr(speed, "KIND", None)]
emit(out)
"""
    result = assert_equivalent([early, late], probe(body), tmp_path, naive_differs=True)
    assert result["Q"]["who"] == "late package"  # package beats module, across roots
    assert result["bc"]["who"] == "late source"  # source beats bytecode
    assert result["nsfirst"]["who"] == "late module"  # module beats namespace portion
    assert result["speed"] == ["ExtensionFileLoader", "later-extension"]


# -- 6. the same distribution twice: only the first root is used ---------------------------


def test_duplicate_distribution_only_the_first_root_is_visible(tmp_path: Path) -> None:
    new = make_root(
        tmp_path,
        "foo-2",
        {"foo": {"__init__.py": "WHO = '2.0'", "new.py": ""}},
        dist="foo",
        version="2.0",
        entry_points={"console_scripts": {"foo": "foo:main"}},
    )
    old = make_root(
        tmp_path,
        "foo-1",
        {"foo": {"__init__.py": "WHO = '1.0'", "old.py": ""}, "foo_compat.py": "WHO = 'old'"},
        dist="FOO",
        version="1.0",
        entry_points={"console_scripts": {"foo-legacy": "foo:legacy"}},
        pth={"foo-old.pth": "import sys; sys.foo_old_pth = True\n"},
    )
    body = """
import importlib.metadata as md
out = {n: describe(n) for n in ["foo", "foo.new", "foo.old", "foo_compat"]}
out["pth_ran"] = getattr(sys, "foo_old_pth", False)
out["versions"] = sorted(d.version for d in md.distributions() if d.metadata["Name"] in
                         ("foo", "FOO"))
out["version"] = md.version("foo")
out["files"] = sorted(str(f) for f in md.files("foo"))
out["scripts"] = sorted(ep.name for ep in group(md, "console_scripts")
                        if ep.value.startswith("foo:"))
out["packages"] = packages(md, "foo")
emit(out)
"""
    # The dropped root's .pth: the naive layout runs no .pth file, so only the addsitedir
    # control (which runs it) shows that leaving it unrun is something vsite decides.
    result = assert_equivalent([new, old], probe(body), tmp_path, naive_differs=True)
    assert result["foo"]["who"] == "2.0"
    assert result["foo.old"] == {"error": "ModuleNotFoundError"}
    assert result["foo_compat"] == {"error": "ModuleNotFoundError"}
    assert result["pth_ran"] is False
    assert result["versions"] == ["2.0"]
    assert result["scripts"] == ["foo"]
    assert "foo/new.py" in result["files"]
    assert result["packages"] == {"foo": ["foo"]}


# -- 7. importlib.metadata over a thousand roots ------------------------------------------


def _many_roots(base: Path, count: int) -> list[Path]:
    """``count`` small roots, every 100th repeating an earlier distribution.

    Written by hand rather than by make_root: a thousand roots are thousands of files.
    """
    roots = []
    for number in range(count):
        # dist-0049 (as dist_0049-1.49.dist-info) and Dist_0049 name one distribution.
        dist = f"dist-{number:04d}" if number % 100 != 99 else f"Dist_{number - 50:04d}"
        version = f"1.{number}"
        module = f"mod{number:04d}"
        root = base / f"r{number:04d}"
        info = root / dist_info_name(dist, version)
        info.mkdir(parents=True)
        (root / f"{module}.py").write_text(f"N = {number}\n", encoding="utf-8")
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[vsite.tests]\nep{number:04d} = {module}:N\n\n[group{number % 3}]\nx = {module}:N\n",
            encoding="utf-8",
        )
        (info / "RECORD").write_text(
            f"{module}.py,,\n{info.name}/METADATA,,\n{info.name}/entry_points.txt,,\n"
            f"{info.name}/RECORD,,\n",
            encoding="utf-8",
        )
        roots.append(root)
    return roots


@pytest.mark.slow
def test_metadata_over_a_thousand_roots(tmp_path: Path) -> None:
    roots = _many_roots(tmp_path / "roots", 1000)
    body = """
import importlib.metadata as md
dists = [d for d in md.distributions() if d.metadata["Name"].lower().startswith("dist")]
out = {
    "dists": as_set([d.metadata["Name"], d.version] for d in dists),
    "count": len(dists),
    "version": [md.version(f"dist-{n:04d}") for n in (0, 49, 500, 998)],
    "group": as_set([ep.name, ep.value] for ep in group(md, "vsite.tests")),
    "group1": as_set(ep.value for ep in group(md, "group1")),
    "files": sorted(str(f) for f in md.files("DIST_0123")),
    "packages": packages(md, "mod"),
}
emit(out)
"""
    result = assert_equivalent(roots, probe(body), tmp_path, naive_differs=True)
    assert result["count"] == 990
    assert result["version"] == ["1.0", "1.49", "1.500", "1.998"]
    assert len(result["group"]) == 990
    assert result["packages"]["mod0123"] == ["dist-0123"]
    assert "mod0199" not in result["packages"]  # the dropped duplicate's module


# -- 8. importlib.resources ------------------------------------------------------------------


def test_resources_of_namespace_data_only_and_split_regular_packages(tmp_path: Path) -> None:
    tzdata = make_root(
        tmp_path,
        "tzdata",
        {
            "tzdata": {
                "__init__.py": "IANA_VERSION = '2024a'",
                "zones": "Europe/Paris\n",
                "zoneinfo": {
                    "__init__.py": "",
                    "UTC": b"TZif2\0utc",
                    "Europe": {"__init__.py": "", "Paris": b"TZif2\0paris"},
                },
            },
            "backports": {
                "__init__.py": EXTEND_PATH.format("tarfile"),
                "tarfile": {"__init__.py": "", "compat.py": ""},
            },
            "nsres": {"a.txt": "from tzdata root"},
        },
    )
    configparser = make_root(
        tmp_path,
        "configparser",
        {
            "backports": {
                "__init__.py": EXTEND_PATH.format("configparser"),
                "configparser": {"__init__.py": "", "helpers.py": ""},
            },
            "nsres": {"a.txt": "shadowed", "b.txt": "from configparser root"},
        },
    )
    body = """
import pkgutil
out = {
    "tzdata": resources("tzdata"),
    "europe": resources("tzdata.zoneinfo.Europe"),
    "backports": resources("backports"),
    "nsres": resources("nsres", namespace=True),
    "paris": pkgutil.get_data("tzdata.zoneinfo", "Europe/Paris").decode("latin-1"),
}
emit(out)
"""
    result = assert_equivalent([tzdata, configparser], probe(body), tmp_path, naive_differs=True)
    assert result["tzdata"]["backport"]["zoneinfo"]["Europe"]["Paris"] == "TZif2\0paris"
    assert set(result["backports"]["backport"]) == {"__init__.py", "configparser", "tarfile"}
    if sys.version_info >= (3, 10):
        assert result["backports"]["stdlib"] == result["backports"]["backport"]
    assert result["nsres"]["backport"] == {
        "a.txt": "from tzdata root",
        "b.txt": "from configparser root",
    }


# -- 9. pkgutil listings -----------------------------------------------------------------------


def test_iter_modules_lists_each_top_level_name_once(tmp_path: Path) -> None:
    a = make_root(
        tmp_path,
        "a",
        {"shared.py": "", "pkg": {"__init__.py": "", "one.py": ""}, "nsp": {"x.py": ""}},
    )
    b = make_root(
        tmp_path,
        "b",
        {
            "shared.py": "",
            "only_b.py": "",
            "pkg": {"two.py": "", "sub": {"__init__.py": "", "deep.py": ""}},
            "nsp": {"y.py": ""},
            "data-dir": {"x.txt": ""},
        },
    )
    body = """
import pkgutil, pkg
site = [(n, p) for entry in SITE_ENTRIES
        for n, p in pkgutil.iter_importer_modules(pkgutil.get_importer(entry))]
out = {
    "site": sorted(site),
    "global": sorted((n, p) for _, n, p in pkgutil.iter_modules()
                     if n in ("shared", "only_b", "pkg", "nsp")),
    "walk": sorted((n, p) for _, n, p in pkgutil.walk_packages(pkg.__path__, "pkg.")),
}
emit(out)
"""
    result = assert_equivalent([a, b], probe(body), tmp_path, naive_differs=True)
    assert [name for name, _ in result["site"]].count("shared") == 1
    assert result["walk"] == [
        ["pkg.one", False],
        ["pkg.sub", True],
        ["pkg.sub.deep", False],
        ["pkg.two", False],
    ]


# -- 10. files added after activation -------------------------------------------------------


def test_file_added_after_activation_imports_after_invalidate_caches(tmp_path: Path) -> None:
    a = make_root(tmp_path, "a", {"pkg": {"__init__.py": ""}, "nsp": {"x.py": ""}})
    b = make_root(tmp_path, "b", {"other.py": "", "nsp": {"y.py": ""}})
    body = """
import importlib, pkg, nsp.x, other
before = [importlib.util.find_spec(n) is None for n in ("late_top", "pkg.late", "nsp.late")]
with open(os.path.join(ROOT_DIRS[1], "late_top.py"), "w") as f:
    f.write("WHO = 'late top'")
with open(os.path.join(ROOT_DIRS[0], "pkg", "late.py"), "w") as f:
    f.write("WHO = 'late in pkg'")
with open(os.path.join(ROOT_DIRS[1], "nsp", "late.py"), "w") as f:
    f.write("WHO = 'late in namespace'")
importlib.invalidate_caches()
out = {"before": before}
out.update({n: describe(n) for n in ("late_top", "pkg.late", "nsp.late")})
emit(out)
"""
    result = assert_equivalent([a, b], probe(body), tmp_path)
    assert result["before"] == [True, True, True]
    assert result["late_top"]["who"] == "late top"
    assert result["pkg.late"]["who"] == "late in pkg"
    assert result["nsp.late"]["who"] == "late in namespace"


# -- the importlib_metadata backport answers like importlib.metadata -----------------------


def test_importlib_metadata_backport_answers_like_the_stdlib(tmp_path: Path) -> None:
    a = make_root(
        tmp_path,
        "alpha",
        {"alpha.py": ""},
        version="3.1",
        entry_points={"vsite.tests": {"a": "alpha:main"}},
        top_level=["alpha"],
    )
    b = make_root(
        tmp_path,
        "beta-pkg",
        {"beta": {"__init__.py": ""}},
        dist="Beta.Pkg",
        version="0.2",
        entry_points={"vsite.tests": {"b": "beta:main"}},
    )
    body = """
import importlib.metadata
def answers(md):
    return {
        "versions": [md.version(n) for n in ("alpha", "beta-pkg", "BETA_PKG")],
        "dist": md.distribution("beta_pkg").metadata["Name"],
        "eps": sorted(ep.value for ep in group(md, "vsite.tests")),
        "files": sorted(str(f) for f in md.files("beta-pkg")),
        "packages": {k: sorted(v) for k, v in md.packages_distributions().items()
                     if k in ("alpha", "beta")} if hasattr(md, "packages_distributions") else None,
        "names": sorted(d.metadata["Name"] for d in md.distributions()
                        if d.metadata["Name"] in ("alpha", "Beta.Pkg")),
    }
# The stdlib first: importing the backport takes path-based discovery over from it.
stdlib = answers(importlib.metadata)
import importlib_metadata
emit({"stdlib": stdlib, "backport": answers(importlib_metadata)})
"""
    result = assert_equivalent([a, b], probe(body), tmp_path)
    stdlib, backport = result["stdlib"], result["backport"]
    if sys.version_info < (3, 11):
        # 3.9 has no packages_distributions(); 3.10 reads top_level.txt only.
        assert stdlib["packages"] in (None, {"alpha": ["alpha"]})
        stdlib["packages"] = backport["packages"]
    assert stdlib == backport
    assert stdlib["versions"] == ["3.1", "0.2", "0.2"]
    assert stdlib["packages"] == {"alpha": ["alpha"], "beta": ["Beta.Pkg"]}


# -- standard loaders: __file__, __cached__, getsource, get_data, tracebacks ---------------


def test_modules_use_standard_loaders_and_file_apis(tmp_path: Path) -> None:
    a = make_root(
        tmp_path,
        "a",
        {
            "pkg": {
                "__init__.py": "def boom():\n    raise ValueError('boom')\n",
                "data.bin": b"\x00\x01",
                "sub": {"__init__.py": "", "mod.py": "def f():\n    return 1\n"},
            },
            "late": {"shared.txt": "first root's"},
        },
    )
    b = make_root(
        tmp_path,
        "b",
        {
            "pkg": {"extra.py": "X = 2\n", "extra.txt": "extra", "data.bin": b"shadowed"},
            "late": {"__init__.py": "", "shared.txt": "shadowed"},
        },
    )
    body = """
import inspect, pkgutil, traceback, linecache
import pkg, pkg.sub.mod
try:
    pkg.boom()
except ValueError as exc:
    frames = traceback.extract_tb(exc.__traceback__)
    tb = [[os.path.relpath(f.filename, os.path.dirname(pkg.__file__)), f.line] for f in frames[1:]]
out = {
    "mod": describe("pkg.sub.mod"),
    "extra": describe("pkg.extra"),
    "getsource": inspect.getsource(pkg.sub.mod),
    "getsourcefile": attempt(lambda: inspect.getsourcefile(importlib.import_module("pkg.extra"))),
    "get_data": list(pkgutil.get_data("pkg", "data.bin")),
    "get_data_other_root": attempt(lambda: pkgutil.get_data("pkg", "extra.txt").decode()),
    "get_data_first_root": attempt(lambda: pkgutil.get_data("late", "shared.txt").decode()),
    "loader_source": pkg.__spec__.loader.get_source("pkg"),
    "traceback": tb,
}
emit(out)
"""
    result = assert_equivalent([a, b], probe(body), tmp_path, naive_differs=True)
    assert result["get_data"] == [0, 1]
    assert result["get_data_other_root"] == "extra"
    assert result["get_data_first_root"] == "first root's"
    assert result["getsourcefile"] == "<site>/pkg/extra.py"
    assert result["traceback"] == [["__init__.py", "raise ValueError('boom')"]]


def test_distribution_names_match_as_the_running_stdlib_matches_them(tmp_path: Path) -> None:
    """The stdlib's own path scan reads the site's view, so names match as this Python's
    importlib.metadata matches them in a flat site: on 3.9 by lower() and '-' -> '_' only
    ('beta.pkg' is not found there), from 3.10 by PEP 503."""
    root = make_root(tmp_path, "beta", {"beta.py": ""}, dist="Beta.Pkg", version="0.2")
    body = """
import importlib.metadata as md
emit([attempt(md.version, n) for n in ("Beta.Pkg", "beta.pkg", "beta-pkg", "BETA__PKG")])
"""
    result = assert_equivalent([root], probe(body), tmp_path)
    assert result[2] == "0.2"
