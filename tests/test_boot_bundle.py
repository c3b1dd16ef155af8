"""The boot bundle: a warm start reads vsite's boot modules from one file.

Each test boots a private copy of the ``vsite`` package (its ``__pycache__`` is the
test's own) the way ``vsite exec`` does: its ``_boot`` directory on ``PYTHONPATH`` and
``VSITE_MANIFEST``. Bytecode writing is set explicitly in every child (this machine's
environment turns it off).
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest
from tests.children import child_env

PACKAGE = Path(vsite.__file__).parent
sys.path.insert(0, os.fspath(PACKAGE / "_boot"))
try:
    from _vsite_boot import (  # type: ignore[import-not-found]
        BUNDLED,
        BUNDLED_IF_USED,
        bundle_path,
    )
finally:
    sys.path.remove(os.fspath(PACKAGE / "_boot"))
    sys.modules.pop("_vsite_boot", None)

#: What the child reports: per bundled module its start loaded, where its bytecode came
#: from and its loader's class; what is left on sys.meta_path; and that the site works.
PROBE = f"""
import json, sys, inspect
loaded = [sys.modules[name] for name in {BUNDLED + BUNDLED_IF_USED!r} if name in sys.modules]
import alpha
report = {{
    "cached": {{module.__name__: module.__spec__.cached for module in loaded}},
    "loaders": sorted({{type(module.__loader__).__name__ for module in loaded}}),
    "meta_path": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path],
    "source": inspect.getsource(sys.modules["vsite.activation"].activate)[:30],
    "file": sys.modules["vsite.activation"].__file__,
    "alpha": alpha.VALUE,
    "marked": getattr(sys.modules["vsite"], "BUNDLE_MARK", None),
    "bundled": sys.modules["vsite._startup"].bundled,
}}
print(json.dumps(report))
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the vsite package without any bytecode."""
    copy = tmp_path / "lib" / "vsite"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "roots", "alpha", {"alpha": {"__init__.py": "VALUE = 42\n"}})
    return write_manifest(tmp_path / "manifest.json", [root], immutable=True)


def boot(package: Path, manifest: Path, *flags: str, write: bool = True) -> dict[str, object]:
    env = child_env(VSITE_MANIFEST=os.fspath(manifest), PYTHONPATH=os.fspath(package / "_boot"))
    if write:
        del env["PYTHONDONTWRITEBYTECODE"]
    result = subprocess.run(
        [sys.executable, *flags, "-c", PROBE], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["alpha"] == 42  # the site is active either way
    assert isinstance(report, dict)
    return report


def bundle_of(package: Path) -> Path:
    path = bundle_path(os.fspath(package))
    assert path is not None
    return Path(path)


def from_bundle(report: dict[str, object], package: Path) -> set[str]:
    """The bundled modules whose code came from the bundle."""
    bundled = report["bundled"]
    assert isinstance(bundled, list)
    return set(bundled)


def test_a_start_writes_the_bundle_and_the_next_reads_every_boot_module_from_it(
    package: Path, manifest: Path
) -> None:
    first = boot(package, manifest)
    assert from_bundle(first, package) == set()  # none yet: imported one by one
    assert bundle_of(package).is_file()

    second = boot(package, manifest)
    assert from_bundle(second, package) == set(BUNDLED)
    # The finder is gone once the site is booted; the modules are what an import gives.
    assert second["loaders"] == first["loaders"] == ["SourceFileLoader"]
    # (The first start also built the site's index: it loaded a module more for that.)
    assert second["cached"].items() <= first["cached"].items()  # type: ignore[attr-defined]
    assert "BundleFinder" not in str(second["meta_path"])
    assert str(second["source"]).startswith("def activate(")
    assert second["file"] == os.fspath(package / "activation.py")


def test_the_bundled_code_is_what_runs(package: Path, manifest: Path) -> None:
    boot(package, manifest)
    # The bundle's code for ``vsite`` gains a line its source does not have (the
    # source's size and mtime stay as recorded): the start runs the bundle's code.
    path = bundle_of(package)
    data = path.read_bytes()
    head = data[:16]
    assert head.endswith(b"vsite-boot-3")
    # The table (name, source, mtime, size, bytecode path, length of a module's code
    # kept apart), then the boot modules' code (one tuple), each with its u32 length.
    table_end = 20 + int.from_bytes(data[16:20], "little")
    core_end = table_end + 4 + int.from_bytes(data[table_end : table_end + 4], "little")
    table = marshal.loads(data[20:table_end])
    codes = list(marshal.loads(data[table_end + 4 : core_end]))
    name, relative, *_ = table[0]
    assert name == "vsite"
    source = (package / relative).read_text(encoding="utf-8") + "\nBUNDLE_MARK = 1\n"
    codes[0] = compile(source, os.fspath(package / relative), "exec")
    core = marshal.dumps(tuple(codes))
    path.write_bytes(data[:table_end] + len(core).to_bytes(4, "little") + core + data[core_end:])
    assert boot(package, manifest)["marked"] == 1


def test_a_warm_start_loads_exactly_the_bundled_modules(package: Path, manifest: Path) -> None:
    boot(package, manifest)
    cached = boot(package, manifest)["cached"]
    assert isinstance(cached, dict)
    assert set(cached) == set(BUNDLED)  # nothing bundled goes unused, nothing is missing


@pytest.fixture
def pth_manifest(tmp_path: Path) -> Path:
    """A site whose ``.pth`` file imports a module of the site, as setuptools' does."""
    root = make_root(
        tmp_path / "pth-roots",
        "alpha",
        {"alpha": {"__init__.py": "VALUE = 42\n"}, "beta.py": "import sys\nsys.beta = 1\n"},
        pth={"beta.pth": "import beta\n"},
    )
    return write_manifest(tmp_path / "pth.json", [root], immutable=True)


#: What running that ``.pth`` loads of vsite: all of BUNDLED_IF_USED but the store's holds
PTH_MODULES = set(BUNDLED_IF_USED) - {"vsite.store_holds"}


def test_a_start_running_the_sites_pth_files_reads_their_modules_from_the_bundle_too(
    package: Path, manifest: Path, pth_manifest: Path
) -> None:
    first = boot(package, pth_manifest)
    second = boot(package, pth_manifest)
    assert from_bundle(second, package) == set(BUNDLED) | PTH_MODULES
    assert set(second["cached"]) == set(BUNDLED) | PTH_MODULES  # type: ignore[call-overload]
    assert second["loaders"] == ["SourceFileLoader"]
    assert second["cached"].items() <= first["cached"].items()  # type: ignore[attr-defined]
    # A warm start of a site without .pth files does not even import them.
    boot(package, manifest)
    assert from_bundle(boot(package, manifest), package) == set(BUNDLED)


def test_a_module_used_by_some_starts_only_is_checked_when_imported(
    package: Path, pth_manifest: Path
) -> None:
    boot(package, pth_manifest)
    source = package / "pth.py"
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after_edit = boot(package, pth_manifest)
    assert from_bundle(after_edit, package) == (set(BUNDLED) | PTH_MODULES) - {"vsite.pth"}
    assert after_edit["cached"]["vsite.pth"] == os.fspath(  # type: ignore[index]
        package / "__pycache__" / f"pth.{sys.implementation.cache_tag}.pyc"
    )
    # The bundle was written again at the end of that start: the next reads it all.
    assert from_bundle(boot(package, pth_manifest), package) == set(BUNDLED) | PTH_MODULES


@pytest.mark.parametrize("change", ["size", "mtime"])
def test_an_edited_source_makes_the_bundle_stale_and_it_is_written_again(
    package: Path, manifest: Path, change: str
) -> None:
    boot(package, manifest)
    source = package / "index.py"
    if change == "size":
        source.write_text(source.read_text(encoding="utf-8") + "\nEDITED = 1\n", "utf-8")
    else:  # the same bytes and size, another mtime: as a restored or touched file
        st = source.stat()
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after_edit = boot(package, manifest)
    assert from_bundle(after_edit, package) == set()
    assert from_bundle(boot(package, manifest), package) == set(BUNDLED)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other-magic", "empty"])
def test_a_damaged_bundle_is_passed_over_and_replaced(
    package: Path, manifest: Path, damage: str
) -> None:
    boot(package, manifest)
    path = bundle_of(package)
    data = path.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "garbage": data[:16] + os.urandom(64),
        "other-magic": b"\0\0\r\n" + data[4:],
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)
    assert from_bundle(boot(package, manifest), package) == set()
    assert path.read_bytes() != damaged  # written again
    assert from_bundle(boot(package, manifest), package) == set(BUNDLED)


def test_no_bundle_is_written_without_bytecode_writing_but_one_is_read(
    package: Path, manifest: Path
) -> None:
    (package / "__pycache__").mkdir()
    boot(package, manifest, write=False)
    boot(package, manifest, "-B")
    assert not bundle_of(package).exists()
    boot(package, manifest)  # written
    assert from_bundle(boot(package, manifest, write=False), package) == set(BUNDLED)


def test_an_optimized_interpreter_keeps_its_own_bundle(package: Path, manifest: Path) -> None:
    boot(package, manifest)
    assert from_bundle(boot(package, manifest, "-O"), package) == set()  # not -O's code
    assert from_bundle(boot(package, manifest, "-O"), package) == set(BUNDLED)
    assert from_bundle(boot(package, manifest), package) == set(BUNDLED)
    assert len(list(bundle_of(package).parent.glob("_boot.*.bundle"))) == 2


def test_a_boot_in_a_process_that_already_loaded_vsite_writes_no_bundle(
    package: Path, manifest: Path
) -> None:
    # A second boot in one process (a shell's .pth, then sitecustomize) finds vsite
    # loaded: it did not import anything, so it has no bundle to write.
    boot(package, manifest)
    bundle = bundle_of(package)
    code = (
        "import os, sys\n"
        f"os.unlink({os.fspath(bundle)!r})\n"
        f"sys.path.insert(0, {os.fspath(package / '_boot')!r})\n"
        "import _vsite_boot\n"
        "_vsite_boot.boot_from_environment()\n"
    )
    env = child_env(VSITE_MANIFEST=os.fspath(manifest), PYTHONPATH=os.fspath(package / "_boot"))
    del env["PYTHONDONTWRITEBYTECODE"]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not bundle.exists()
