"""Bytecode in the store: ``vsite install`` compiles every root as pip does, per interpreter.

The pycs are unchecked hash-based: valid however the entry's files are copied or
restored (no mtime in them), read with no stat of the source, and still validated under
``--check-hash-based-pycs always``. Children are real processes started through
``vsite exec``; wheels are built on tmp_path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.builders import Tree, write_manifest
from tests.children import child_env
from tests.test_install import make_wheel
from vsite.tools.cli import main
from vsite.tools.install import check_wheels, install
from vsite.tools.install.hashes import wheel_sha256
from vsite.tools.install.store import ENTRY_FILE, Store

TAG = sys.implementation.cache_tag
UNCHECKED_HASH = 0b01  # the pyc header's flags: hash-based, not checked against the source

TREE: Tree = {
    "pkg": {
        "__init__.py": "from pkg.sub import mod\nVALUE = mod.VALUE\n",
        "sub": {"__init__.py": "", "mod.py": "VALUE = 'one'\n"},
        # Some wheels ship files that never compiled on Python 3: no pyc, no failure.
        "legacy_py2.py": 'print "python 2"\n',
    },
    "top.py": "T = 1\n",
}
MODULES = ["pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/mod.py", "top.py"]

# Imports the site's modules, counting the sources compiled on the way (an audit hook
# sees every compile() of the loaders); prints what it saw as JSON.
PROBE = textwrap.dedent(
    """\
    import json, sys
    prefix = sys.argv[1]
    compiled = []
    def hook(event, args):
        if event == "compile" and isinstance(args[1], str) and args[1].endswith(".py"):
            if args[1].startswith(prefix):
                compiled.append(args[1])
    sys.addaudithook(hook)
    import pkg, top
    print(json.dumps({"compiled": compiled, "value": pkg.VALUE, "cached": pkg.__cached__}))
    """
)

pytestmark = pytest.mark.skipif(TAG is None, reason="this interpreter writes no bytecode")


def _wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path / "w", "bytes", TREE)


def _vsite_install(wheel: Path, store: Path, *options: str) -> Path:
    """``vsite install WHEEL`` in this process; the manifest it wrote."""
    out = store.parent / "manifest.json"
    assert main(["install", os.fspath(wheel), "--store", f"{store}", "-o", f"{out}", *options]) == 0
    return out


def _entry(store: Path, wheel: Path) -> Path:
    return store / "wheels" / wheel_sha256(os.fspath(wheel))


def _recorded_tags(entry: Path) -> list[str]:
    tags: list[str] = json.loads((entry / ENTRY_FILE).read_text())["bytecode"]
    return tags


def _pyc(root: Path, module: str, tag: str | None = TAG) -> Path:
    head, _, name = module.rpartition("/")
    return root / head / "__pycache__" / f"{name[: -len('.py')]}.{tag}.pyc"


def _header(pyc: Path) -> tuple[bytes, int]:
    data = pyc.read_bytes()
    return data[:4], int.from_bytes(data[4:8], "little")


def _assert_read_only(entry: Path) -> None:
    for path in [entry, *entry.rglob("*")]:
        assert stat.S_IMODE(path.lstat().st_mode) & 0o222 == 0, path


def _pycs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pyc"))


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=300
    )


def _probe(manifest: Path, prefix: Path, user_cache: Path, *python_options: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "vsite", "exec", os.fspath(manifest), "--", sys.executable]
    command += [*python_options, "-c", PROBE, os.fspath(prefix)]
    result = _run(command, child_env(VSITE_BYTECODE_DIR=os.fspath(user_cache)))
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


# -- what install writes ---------------------------------------------------------------


def test_install_compiles_every_module_to_unchecked_hash_bytecode(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    _vsite_install(wheel, tmp_path / "store")
    entry = _entry(tmp_path / "store", wheel)
    root = entry / "site-packages"
    for module in MODULES:
        magic, flags = _header(_pyc(root, module))
        assert magic == importlib.util.MAGIC_NUMBER, module
        assert flags == UNCHECKED_HASH, module
    assert not _pyc(root, "pkg/legacy_py2.py").exists()  # it does not compile: skipped
    assert len(_pycs(root)) == len(MODULES)
    assert _recorded_tags(entry) == [TAG]
    _assert_read_only(entry)


def test_the_old_compile_option_is_still_accepted(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    _vsite_install(wheel, tmp_path / "store", "--compile")
    assert len(_pycs(_entry(tmp_path / "store", wheel) / "site-packages")) == len(MODULES)


def test_no_compile_writes_no_bytecode_not_even_into_a_reused_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(tmp_path)
    store = tmp_path / "store"
    entry = _entry(store, wheel)
    _vsite_install(wheel, store, "--no-compile")
    assert _pycs(entry) == []
    assert _recorded_tags(entry) == []
    capsys.readouterr()

    _vsite_install(wheel, store, "--no-compile")
    assert _pycs(entry) == []
    assert "(0 unpacked, 1 reused) in" in capsys.readouterr().out

    # Without --no-compile, the reused entry gets this interpreter's bytecode.
    _vsite_install(wheel, store)
    out = capsys.readouterr().out
    assert f"reused (+{TAG} bytecode) {wheel.name}" in out
    assert "(0 unpacked, 1 reused, 1 given bytecode) in" in out
    assert len(_pycs(entry)) == len(MODULES)
    assert _recorded_tags(entry) == [TAG]
    _assert_read_only(entry)

    _vsite_install(wheel, store)  # nothing left to add
    assert "(0 unpacked, 1 reused) in" in capsys.readouterr().out


def test_an_entry_that_cannot_be_written_is_reused_without_bytecode(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    store = Store(os.fspath(tmp_path / "store"))
    wheels = check_wheels([os.fspath(wheel)])
    install(wheels, store, compile_bytecode=False)
    # No lock can be taken: as in another user's store (root writes through file modes).
    shutil.rmtree(tmp_path / "store" / "locks", ignore_errors=True)  # unpack claims
    (tmp_path / "store" / "locks").write_text("not a directory")
    result = install(wheels, store)
    assert (result.unpacked, result.reused, result.bytecode_added) == (0, 1, 0)
    entry = _entry(tmp_path / "store", wheel)
    assert _pycs(entry) == []
    assert _recorded_tags(entry) == []


def test_a_failed_bytecode_add_puts_every_mode_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vsite.tools.install.store as store_module
    from vsite.tools.install.bytecode import compile_root as real

    wheel = _wheel(tmp_path)
    store = Store(os.fspath(tmp_path / "store"))
    wheels = check_wheels([os.fspath(wheel)])
    install(wheels, store, compile_bytecode=False)
    entry = _entry(tmp_path / "store", wheel)
    before = {path: path.lstat().st_mode for path in [entry, *entry.rglob("*")]}

    def compile_then_fail(root: str, final_root: str) -> None:
        real(root, final_root)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "compile_root", compile_then_fail)
    result = install(wheels, store)
    assert (result.reused, result.bytecode_added) == (1, 0)
    assert {path: path.lstat().st_mode for path in before} == before
    _assert_read_only(entry)  # the pycs written before the failure too
    assert _recorded_tags(entry) == []  # so the next install compiles again
    monkeypatch.undo()
    assert install(wheels, store).bytecode_added == 1
    assert _recorded_tags(entry) == [TAG]


# -- a second interpreter --------------------------------------------------------------


def _other_python(scratch: Path) -> tuple[str, dict[str, str]]:
    """Another CPython 3.9-3.13 able to run ``python -m vsite``, and its environment.

    CI's per-version venvs (``.venvs/X.Y``, vsite installed editable) first. Else a
    pyenv interpreter running this checkout's ``src`` with this environment's
    ``packaging`` and ``installer`` (pure Python) on its path, when it can import them.
    """
    repo = Path(__file__).resolve().parent.parent
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    versions = [v for v in ("3.13", "3.12", "3.10", "3.9", "3.11") if v != here]
    for version in versions:
        python = repo / ".venvs" / version / "bin" / "python"
        if python.exists():
            return os.fspath(python), child_env()
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        pytest.skip(f"no other Python: no .venvs/X.Y beside {here} and no pyenv")
    pyenv_root = Path(_run([pyenv, "root"]).stdout.strip())
    deps = _borrowed_dependencies(scratch)
    env = child_env(PYTHONPATH=f"{deps}{os.pathsep}{repo / 'src'}")
    for version in versions:
        found = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
        if not found:
            continue
        probe = _run([os.fspath(found[-1]), "-c", "import vsite.tools.install"], env)
        if probe.returncode == 0:
            return os.fspath(found[-1]), env
    pytest.skip(f"no other Python (pyenv, .venvs) can run this vsite beside {here}")


def _borrowed_dependencies(scratch: Path) -> Path:
    """A directory under ``scratch`` linking this environment's packaging and installer."""
    import installer
    import packaging

    deps = scratch / "deps"
    deps.mkdir()
    for module in (packaging, installer):
        (deps / module.__name__).symlink_to(Path(module.__file__ or "").parent)
    return deps


def test_another_interpreter_adds_its_bytecode_to_a_reused_entry(tmp_path: Path) -> None:
    other, env = _other_python(tmp_path)
    other_tag = _run([other, "-c", "import sys; print(sys.implementation.cache_tag)"]).stdout
    other_tag = other_tag.strip()
    assert other_tag not in ("", TAG)
    wheel = _wheel(tmp_path)
    store = tmp_path / "store"
    _vsite_install(wheel, store)
    entry = _entry(store, wheel)
    root = entry / "site-packages"
    mine = {module: _pyc(root, module).read_bytes() for module in MODULES}

    command = [other, "-m", "vsite", "install", os.fspath(wheel), "--store", os.fspath(store)]
    result = _run([*command, "-o", os.fspath(tmp_path / "other.json")], env)
    assert result.returncode == 0, result.stderr
    assert f"reused (+{other_tag} bytecode) {wheel.name}" in result.stdout
    assert "(0 unpacked, 1 reused, 1 given bytecode)" in result.stdout
    assert _recorded_tags(entry) == [TAG, other_tag]
    for module in MODULES:
        assert _header(_pyc(root, module, other_tag))[1] == UNCHECKED_HASH, module
        assert _pyc(root, module).read_bytes() == mine[module]  # this interpreter's kept
    _assert_read_only(entry)


# -- what unchecked-hash pycs buy ------------------------------------------------------


def test_an_entry_restored_with_new_mtimes_imports_without_compiling(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    store = tmp_path / "store"
    manifest = _vsite_install(wheel, store)
    entry = _entry(store, wheel)
    for path in entry.rglob("*"):  # as a backup restore or a copy without -p leaves it
        if path.is_file():
            os.utime(path, (1_600_000_000, 1_600_000_000))
    root = entry / "site-packages"
    user_cache = tmp_path / "user-cache"

    found = _probe(manifest, store, user_cache)
    assert found["compiled"] == []
    assert found["value"] == "one"
    assert found["cached"] == os.fspath(_pyc(root, "pkg/__init__.py"))
    assert not user_cache.exists() or not list(user_cache.rglob("*.pyc"))


def test_check_hash_based_pycs_always_sees_a_changed_source_in_a_copy(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    store = tmp_path / "store"
    _vsite_install(wheel, store)
    copy = tmp_path / "copy" / "site-packages"
    shutil.copytree(_entry(store, wheel) / "site-packages", copy)  # modes and mtimes kept
    source = copy / "pkg" / "sub" / "mod.py"
    st = source.stat()
    os.chmod(source.parent, 0o755)
    os.chmod(source, 0o644)
    source.write_text("VALUE = 'two'\n")  # the same size, and the mtime put back:
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the hash can tell
    manifest = write_manifest(tmp_path / "copy.json", [copy])
    user_cache = tmp_path / "user-cache"

    # Unchecked: the shipped bytecode is taken as it is (store files never change).
    assert _probe(manifest, copy, user_cache)["value"] == "one"
    found = _probe(manifest, copy, user_cache, "--check-hash-based-pycs", "always")
    assert found["value"] == "two"
    assert found["compiled"] == [os.fspath(source)]
