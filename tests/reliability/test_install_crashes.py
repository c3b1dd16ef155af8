"""``vsite install`` killed with SIGKILL at each point of its work (issue 14, point 3).

An environment made by ``vsite install alpha-1.0 -o env/manifest.json`` is being moved
to alpha 2.0 when the install is killed: a real subprocess sends itself a real SIGKILL
at one exact call (tests/reliability/_install_support.py's DRIVER wraps the function).
Then, and before anything else runs:

* the store is consistent: every entry under a final key is whole (its record, RECORD
  hashes, bytecode), whatever the killed process left is a ``.tmp-*`` directory;
* the manifest is whole: byte-identical to the previous one when the kill came before
  its rename, the new one (whole) after; before it, the previous environment still
  imports alpha 1;

and a following ``vsite install`` of the same wheel succeeds, leaves no temp directory
in the store and every entry read-only, and the environment imports alpha 2 from the
store (its console script too).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.reliability._install_support import (
    alpha_wheel,
    driven,
    in_env,
    install,
    install_env,
    manifest_keys,
    run,
    store_problems,
    succeeded,
    temporaries,
    wheel_key,
)

pytest.importorskip("installer")


class Point(NamedTuple):
    """Where the install is killed: ``patch`` (run by DRIVER) wraps the call."""

    patch: str
    manifest_written: bool  # the new manifest is in place when the kill comes
    prepare: str = ""  # "no-compile": alpha 2 in the store without bytecode; "damaged"
    requirement: bool = False  # install "alpha==2.0" through pip download


_RENAME_FROM_TMP = "lambda src, dst, *a, **k: os.path.basename(str(src)).startswith('.tmp-')"

POINTS: dict[str, Point] = {
    # pip download has fetched the wheel into the install's temp dir.
    "download": Point(
        "import vsite.tools.install as i\naround(i, 'download', STAGE, after=True)",
        manifest_written=False,
        requirement=True,
    ),
    # The wheel's digest is being remembered under STORE/hashes (temp written).
    "hash-memo": Point(
        "around(os, 'replace', STAGE, "
        "when=lambda s, d, *a, **k: os.path.basename(os.path.dirname(str(d))) == 'hashes')",
        manifest_written=False,
    ),
    # One file of the wheel written into the entry's temp dir, the rest not.
    "unpack": Point(
        "import installer.destinations as d\n"
        "around(d.SchemeDictionaryDestination, 'write_file', STAGE, nth=2)",
        manifest_written=False,
    ),
    # One module byte-compiled, the others not.
    "compile": Point(
        "import py_compile\naround(py_compile, 'compile', STAGE, nth=2)",
        manifest_written=False,
    ),
    # Everything unpacked and compiled; wheel.json written aside, not renamed.
    "entry-record": Point(
        "around(os, 'replace', STAGE, "
        "when=lambda s, d, *a, **k: os.path.basename(str(d)) == 'wheel.json')",
        manifest_written=False,
    ),
    # The entry complete and read-only in its temp dir, not renamed to its key.
    "before-rename": Point(
        f"around(os, 'rename', STAGE, when={_RENAME_FROM_TMP})", manifest_written=False
    ),
    # The entry renamed to its key; no manifest written yet.
    "after-rename": Point(
        f"around(os, 'rename', STAGE, after=True, when={_RENAME_FROM_TMP})",
        manifest_written=False,
    ),
    # alpha 2 is in the store without bytecode: the install compiles into the reused
    # entry (made writable for it) and is killed after its first module.
    "adding-bytecode": Point(
        "import py_compile\naround(py_compile, 'compile', STAGE, nth=2)",
        manifest_written=False,
        prepare="no-compile",
    ),
    # alpha 2's entry is damaged (a truncated module): the install unpacked it again and
    # moved the damaged entry away from its key; the fresh one is not renamed in yet.
    "repairing": Point(
        "around(os, 'rename', STAGE, after=True, when=lambda s, d, *a, **k: "
        "len(os.path.basename(str(s))) == 64 and os.path.basename(str(d)).startswith('.'))",
        manifest_written=False,
        prepare="damaged",
    ),
    # The new manifest written aside, not renamed over the previous one.
    "manifest": Point(
        "around(os, 'replace', STAGE, when=lambda s, d, *a, **k: str(d).endswith('manifest.json'))",
        manifest_written=False,
    ),
    # The manifest written; the environment's index being cached in VSITE_DIR.
    "index": Point(
        "around(os, 'replace', STAGE, when=lambda s, d, *a, **k: str(d).endswith('.vsix'))",
        manifest_written=True,
    ),
    # The environment: what the previous make wrote is removed, the venv not made again.
    "env-cleared": Point(
        "import vsite.tools.shell as shell\naround(shell, '_create_venv', STAGE)",
        manifest_written=True,
    ),
    # The venv made (pyvenv.cfg, bin/python), the manifest not yet named in pyvenv.cfg.
    "env-venv": Point(
        "import vsite.tools.shell as shell\naround(shell, '_add_config', STAGE)",
        manifest_written=True,
    ),
    # Launchers and data links written, the completion marker not.
    "env-marker": Point(
        "import vsite.tools.shell as shell\naround(shell, '_write', STAGE, "
        "when=lambda path, *a, **k: str(path).endswith('.vsite-env-manifest'))",
        manifest_written=True,
    ),
}

IMPORT_ALPHA = "import alpha, alpha.util; print(alpha.VERSION, alpha.util.X, alpha.__file__)"


@pytest.mark.parametrize("point", list(POINTS))
def test_install_killed_at_any_point_leaves_store_and_manifest_whole(
    tmp_path: Path, point: str
) -> None:
    spec = POINTS[point]
    wheels = tmp_path / "wheels"
    old, new = alpha_wheel(wheels, 1), alpha_wheel(wheels, 2)
    store, env_dir = tmp_path / "store", tmp_path / "env"
    manifest = env_dir / "manifest.json"
    env = install_env(tmp_path, PIP_FIND_LINKS=str(wheels))
    key = wheel_key(new)
    if spec.prepare:
        # Another environment put alpha 2 into the store first.
        other = tmp_path / "other" / "manifest.json"
        extra = ["--no-compile"] if spec.prepare == "no-compile" else []
        succeeded(install([new], store, other, env, *extra))
        if spec.prepare == "damaged":
            util = store / "wheels" / key / "site-packages" / "alpha" / "util.py"
            util.chmod(0o644)
            util.write_text("")
            util.chmod(0o444)
    succeeded(install([old], store, manifest, env))
    previous = manifest.read_bytes()

    items = ["alpha==2.0"] if spec.requirement else [os.fspath(new)]
    args = ["install", *items, "--store", os.fspath(store), "-o", os.fspath(manifest)]
    killed = driven(point, spec.patch, args, env)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-3000:])
    assert f"vsite-test: killed at {point}\n" in killed.stdout, killed.stdout

    # The window between the kill and the next install.
    window = manifest.read_bytes()
    assert store_problems(store, strict=False) == []
    if spec.manifest_written:
        assert window != previous
        assert manifest_keys(manifest) == [key]  # the new manifest, whole
    else:
        assert window == previous  # byte-identical
        before = in_env(env_dir, IMPORT_ALPHA, env)
        assert succeeded(before).startswith("1 1 "), "the previous environment broke"

    # The next install puts everything right.
    again = install(items, store, manifest, env)
    succeeded(again)
    assert again.stderr == "" or spec.requirement, again.stderr
    assert manifest_keys(manifest) == [key]
    if spec.manifest_written:
        assert manifest.read_bytes() == window
    assert store_problems(store, strict=True) == [], (
        f"after the next install; temporaries: {temporaries(store)}"
    )
    after = succeeded(in_env(env_dir, IMPORT_ALPHA, env))
    version, x, origin = after.split()
    assert (version, x) == ("2", "2")
    assert Path(origin).is_relative_to(store / "wheels" / key / "site-packages")
    assert succeeded(in_env(env_dir, "import alpha; alpha.main()", env)) == "alpha-cli 2\n"
    launcher = env_dir / "bin" / "alpha-cli"
    assert succeeded(run([launcher], env)) == "alpha-cli 2\n"
    assert (env_dir / "share" / "alpha" / "readme.txt").read_text() == "alpha 2\n"
