"""Bad roots (SPEC §3): damaged metadata, loops, permissions, undecodable ``.pth`` files,
roots that change after activation.

A root that cannot be used at all fails activation with a RootError naming it (and
``vsite check`` lists it); damage inside a usable root is met as a flat site-packages
meets it: what can be read is served, the rest fails as it would there.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import os
import shutil
import site
import sys
import warnings
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest
from tests.conftest import SysState
from tests.reliability._support import (
    VSITE,
    as_other_user,
    assert_one_line_error,
    cli_commands,
    owned_by_nobody,
    run,
    warm_for_other_user,
)
from tests.reliability.conftest import native_manifest

# -- damaged metadata --------------------------------------------------------------------


def test_dist_info_without_metadata_activates_and_reads_as_in_a_flat_site(
    tmp_path: Path, sys_state: SysState
) -> None:
    root = make_root(tmp_path, "relnometa", {"relnometa_mod.py": "X = 1\n"})
    info = root / "relnometa-1.0.dist-info"
    (info / "METADATA").unlink()
    handle = vsite.activate(write_manifest(tmp_path / "manifest.json", [root]))
    import relnometa_mod  # type: ignore[import-not-found]  # written by the test

    assert relnometa_mod.X == 1
    found = importlib.metadata.distribution("relnometa")
    flat = importlib.metadata.PathDistribution(info)  # what a flat site's finder makes
    # Found in the site's entry (its view), a link to the root's directory.
    assert found._path == Path(handle.site_path, info.name)  # type: ignore[attr-defined]
    assert found._path.resolve() == info.resolve()  # type: ignore[attr-defined]
    assert _answers(found) == _answers(flat)
    assert _answers(found)[:2] == (None, None)
    result = run([*VSITE, "check", str(tmp_path / "manifest.json")])
    assert (result.returncode, result.stderr) == (0, "")


def _answers(dist: importlib.metadata.Distribution) -> tuple[object, ...]:
    """Name and version, and the warnings reading them gives (3.12+ deprecates the
    None that a missing header reads as)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = (dist.metadata["Name"], dist.version)
    return (*answers, sorted({type(w.message).__name__ for w in caught}))


BAD_RECORD_ROWS = (
    b"\xff\xfe,,,\n"  # undecodable bytes
    b'"unterminated,quote\n'
    b",,\n"  # empty path
    b"/usr/lib/libabsolute.so,,\n"  # absolute path
    b"../../outside.so,sha256=x,1\n"  # outside the root
    b"only-one-field\n"
    b"too,many,fields,here,x.so\n"
    b"\x00nul,\n"
    b"\n\r\n" + b"x" * 100_000 + b"\n"
)


def test_record_with_bad_rows_activates_and_still_stages_native_code(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes
) -> None:
    manifest = native_manifest(tmp_path, extension_bytes)
    record = tmp_path / "relnative" / "relnative-1.0.dist-info" / "RECORD"
    record.write_bytes(BAD_RECORD_ROWS + record.read_bytes() + BAD_RECORD_ROWS)
    handle = vsite.activate(manifest)
    import relnat0  # type: ignore[import-not-found]  # written by the test
    import relpure  # type: ignore[import-not-found]  # written by the test

    assert (relnat0.KIND, relpure.WHO) == ("native", "pure")
    assert handle.farm is not None
    assert relnat0.__file__ == os.path.join(handle.farm.path, "relnat0", "__init__.py")
    assert handle.farm.plan.staged == ("relnat0",)  # nothing named by a bad row
    result = run([*VSITE, "check", str(manifest)])
    assert (result.returncode, result.stderr) == (0, ""), result.stdout


def test_symlink_loops_inside_a_root_neither_hang_nor_fail(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes
) -> None:
    manifest = native_manifest(tmp_path, extension_bytes)
    native, pure = tmp_path / "relnative", tmp_path / "relpure"
    os.symlink("..", native / "relnat0" / "up")  # a loop through the staged tree
    os.symlink("loop_b", native / "relnat0" / "loop_a")  # ELOOP, in the farm's walk
    os.symlink("loop_a", native / "relnat0" / "loop_b")
    os.symlink(".", pure / "relpure" / "again")  # relpure.again.again... is relpure
    os.symlink("relself", pure / "relself")  # a top-level entry that loops on itself
    handle = vsite.activate(manifest)
    import relnat0
    import relpure.again.again  # type: ignore[import-not-found]  # written by the test

    assert relnat0.KIND == "native"
    assert relpure.again.again.__file__ == str(pure / "relpure" / "again" / "again" / "__init__.py")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("relself")
    assert handle.farm is not None
    up = os.path.join(handle.farm.path, "relnat0", "up")
    assert os.readlink(up) == str(native / "relnat0" / "up")  # one link, not a descent
    result = run([*VSITE, "check", str(manifest)])
    assert (result.returncode, result.stderr) == (0, ""), result.stdout


# -- permissions -----------------------------------------------------------------------------


def test_unreadable_root_is_a_root_error_naming_it_and_check_lists_it(shared_tmp: Path) -> None:
    good = make_root(shared_tmp, "relgood", {"relgood_mod.py": ""})
    locked = make_root(shared_tmp, "rellocked", {"rellocked_mod.py": ""})
    locked.chmod(0o700)  # root's: nobody may not list it
    manifest = write_manifest(shared_tmp / "manifest.json", [good, locked])
    warm_for_other_user()

    def attempt() -> dict[str, object]:
        before = SysState()
        try:
            vsite.activate(manifest)
        except vsite.RootError as exc:
            error = (exc.message, exc.pointer, exc.root, exc.manifest)
        unchanged = SysState().changes_since(before) == {}
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            codes = [vsite.tools.cli.main(["check", str(manifest)])]
            codes.append(vsite.tools.cli.main(["run", str(manifest), "-c", "pass"]))
        return {"error": error, "unchanged": unchanged, "codes": codes, "out": out.getvalue(),
                "err": err.getvalue()}  # fmt: skip

    outcome = as_other_user(attempt)
    assert isinstance(outcome, dict)
    message = "root cannot be read: Permission denied"
    assert outcome["error"] == (message, "/roots/1", str(locked), str(manifest))
    assert outcome["unchanged"]
    assert outcome["codes"] == [1, 2]
    assert f"/roots/1: {message} (root {locked})" in outcome["out"]
    (line,) = str(outcome["err"]).splitlines()
    assert line == f"vsite: error: {manifest}: {message} at /roots/1 (root {locked})"


def _locked_root(base: Path) -> Path:
    """A root whose owner (root) keeps a package, a subpackage, a module, a ``.pth`` file
    and the metadata from other users."""
    root = make_root(
        base,
        "relperm",
        {
            "relperm_locked": {"__init__.py": "", "inner.py": ""},
            "relperm_open": {"__init__.py": "", "ok.py": "", "hidden": {"__init__.py": ""}},
            "relperm_secret.py": "",
            "relperm_fine.py": "",
        },
        pth={"relperm.pth": "import relperm_open.ok\n"},
    )
    for path in ("relperm_locked", "relperm_open/hidden", "relperm-1.0.dist-info"):
        (root / path).chmod(0o700)
    for path in ("relperm_secret.py", "relperm.pth"):
        (root / path).chmod(0o600)
    return root


PERM_NAMES = (
    "relperm_fine",
    "relperm_secret",
    "relperm_locked",
    "relperm_locked.inner",
    "relperm_open",
    "relperm_open.hidden",
)


def _import_outcomes() -> dict[str, str]:
    found = {"pth ran": str("relperm_open.ok" in sys.modules)}
    for name in PERM_NAMES:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            found[name] = type(exc).__name__
        else:
            assert module.__spec__ is not None
            found[name] = "namespace" if module.__spec__.origin is None else "module"
    try:
        with warnings.catch_warnings():  # 3.12+: the None of a missing header is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            found["version"] = str(importlib.metadata.version("relperm"))
    except Exception as exc:
        found["version"] = type(exc).__name__
    return found


def test_unreadable_directories_and_files_inside_a_root_behave_as_in_a_flat_site(
    shared_tmp: Path,
) -> None:
    root = _locked_root(shared_tmp)
    manifest = write_manifest(shared_tmp / "manifest.json", [root])
    state = owned_by_nobody(shared_tmp / "nobody") / "vsite"
    warm_for_other_user()

    def flat() -> dict[str, str]:
        site.addsitedir(str(root))  # the root is a flat site-packages of its own
        return _import_outcomes()

    def virtual() -> dict[str, str]:
        os.environ["VSITE_DIR"] = str(state)
        vsite.activate(manifest)
        return _import_outcomes()

    expected = as_other_user(flat)
    assert expected == {
        "pth ran": "False",
        "relperm_fine": "module",
        "relperm_secret": "PermissionError",
        "relperm_locked": "namespace",  # its __init__ cannot be seen, as by FileFinder
        "relperm_locked.inner": "ModuleNotFoundError",
        "relperm_open": "module",
        "relperm_open.hidden": "namespace",
        "version": "None",  # METADATA cannot be read: no version, as for a missing one
    }
    assert as_other_user(virtual) == expected


# -- undecodable .pth ----------------------------------------------------------------------------


def test_undecodable_pth_on_the_command_line_is_one_line_and_check_reports_it(
    tmp_path: Path,
) -> None:
    """In process: tests/test_pth.py::test_undecodable_pth_fails_activation_as_it_fails_site."""
    root = make_root(tmp_path, "r1", {"bad.pth": b"import sys\n\xff\xfe\n", "relok.py": ""})
    manifest = write_manifest(tmp_path / "manifest.json", [root])
    for command, args in cli_commands(manifest).items():
        result = run(args)
        if command == "check":
            assert (result.returncode, result.stderr) == (1, "")
            assert f"/roots/0: bad.pth: cannot be read: not UTF-8 (byte 11) (root {root})" in (
                result.stdout
            )
            continue
        line = assert_one_line_error(result)
        assert f"cannot decode .pth file {root / 'bad.pth'}" in line, command
        assert f"{manifest}: " in line
        assert f"at /roots/0 (root {root})" in line


# -- roots that change after activation ------------------------------------------------------


def _change(root: Path, how: str) -> None:
    shutil.rmtree(root)
    if how == "replaced-by-a-file":
        root.write_text("not a directory\n", encoding="utf-8")
    elif how == "replaced-by-another-directory":
        make_root(root.parent, root.name, {"relother.py": ""}, dist=root.name + "-new")


@pytest.mark.parametrize("how", ["deleted", "replaced-by-a-file", "replaced-by-another-directory"])
def test_root_changed_after_activation_fails_imports_naming_it(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes, how: str
) -> None:
    native_manifest(tmp_path, extension_bytes)
    native, pure = tmp_path / "relnative", tmp_path / "relpure"
    (pure / "relpure" / "sub.py").write_text("", encoding="utf-8")
    make_root(tmp_path, "relkept", {"relkept_mod.py": "X = 'kept'\n"})
    manifest = write_manifest(tmp_path / "manifest.json", [native, pure, tmp_path / "relkept"])
    vsite.activate(manifest)
    import relpure

    for root in (native, pure):
        _change(root, how)
    del sys.modules["relpure"]
    for name, root in (("relnat0", native), ("relpure", pure), ("relpure.sub", pure)):
        with pytest.raises(ImportError) as caught:
            importlib.import_module(name)
        assert str(root) in str(caught.value), (name, str(caught.value))
        assert "changed after the site's index was read" in str(caught.value)
    # Told to look again, the site lists the roots as they are now, as FileFinder would
    # list a flat site-packages: the pure package is no longer there; the staged one
    # still names the root its farm links point into.
    importlib.invalidate_caches()
    with pytest.raises(ModuleNotFoundError, match="No module named 'relpure'"):
        importlib.import_module("relpure")
    with pytest.raises(ImportError, match=f"root directory {native} changed"):
        importlib.import_module("relnat0")
    import relkept_mod  # type: ignore[import-not-found]  # the untouched root still serves

    assert relkept_mod.X == "kept"
    assert relpure.__name__ == "relpure"  # a module imported before is left alone
    result = run([*VSITE, "check", str(manifest)])
    if how == "replaced-by-another-directory":
        assert (result.returncode, result.stderr) == (0, ""), result.stdout  # a valid root
        return
    assert (result.returncode, result.stderr) == (1, "")
    finding = "root does not exist" if how == "deleted" else "root is not a directory"
    for pointer, root in (("/roots/0", native), ("/roots/1", pure)):
        assert f"{pointer}: {finding} (root {root})" in result.stdout


def test_staged_package_of_a_deleted_root_is_not_an_empty_namespace_package(
    tmp_path: Path, sys_state: SysState, extension_bytes: bytes
) -> None:
    """The farm keeps a real directory for a staged package; once its root is gone, its
    links dangle, and the farm directory must not pass for a namespace package."""
    vsite.activate(native_manifest(tmp_path, extension_bytes))
    shutil.rmtree(tmp_path / "relnative")
    with pytest.raises(ImportError) as caught:
        importlib.import_module("relnat0")
    init = tmp_path / "relnative" / "relnat0" / "__init__.py"
    assert f"{init} is gone (root directory {tmp_path / 'relnative'} changed" in str(caught.value)
    assert "relnat0" not in sys.modules
