"""Store entries are verified, not trusted (issue 14, point 2).

An entry records what it holds when it is unpacked; ``vsite install`` checks presence
and sizes before reusing it and unpacks a damaged one again, swapped in whole;
``vsite check`` names the damaged entries among a manifest's roots; ``vsite store
verify [--repair]`` checks every entry's content against its wheel's RECORD. The damage
is what a user meets: files deleted as ``pip uninstall`` run as root deletes them, a
truncated file, a file changed in place with its size kept. Commands run as real
subprocesses; wheels are built on tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.children import child_env
from tests.test_install import make_wheel
from vsite.tools.install.hashes import wheel_sha256
from vsite.tools.install.verify import ENTRY_FILE, STORE_FORMAT, record_files

TAG = sys.implementation.cache_tag
VSITE = [sys.executable, "-m", "vsite"]

TREE = {
    "vfy": {
        "__init__.py": "from vfy.core import VALUE\n",
        "core.py": "VALUE = 'one'\n" + "# padding\n" * 40,
    },
}
IMPORT = "import vfy; print(vfy.VALUE); print(vfy.__file__)"


class Site:
    """A wheel, a store, and two environments made from it that share its entry."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.wheel = make_wheel(
            base / "w", "vfy", TREE, entry_points="[console_scripts]\nvfy-tool = vfy:VALUE\n"
        )
        self.store = base / "store"
        self.entry = self.store / "wheels" / wheel_sha256(os.fspath(self.wheel))
        self.root = self.entry / "site-packages"
        self.env = {
            "VSITE_BYTECODE_DIR": os.fspath(base / "user-bytecode"),
            "VSITE_DIR": os.fspath(base / "vsite-state"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VSITE, *args],
            capture_output=True,
            text=True,
            env=child_env(**self.env),
            check=False,
            timeout=300,
        )

    def install(self, env: str = "a", wheel: Path | None = None) -> str:
        """``vsite install WHEEL`` writing ``env/manifest.json`` (and the environment);
        its stdout."""
        wheel = wheel or self.wheel
        manifest = self.base / env / "manifest.json"
        result = self.run(
            "install", os.fspath(wheel), "--store", f"{self.store}", "-o", f"{manifest}"
        )
        assert result.returncode == 0, result.stderr + result.stdout
        assert "Traceback" not in result.stderr
        return result.stdout

    def manifest(self, env: str = "a") -> Path:
        return self.base / env / "manifest.json"

    def imports(self, env: str = "b") -> subprocess.CompletedProcess[str]:
        """Import ``vfy`` through the environment's front door, ``env/bin/python``."""
        python = self.base / env / "bin" / "python"
        return subprocess.run(
            [os.fspath(python), "-c", IMPORT],
            capture_output=True,
            text=True,
            env=child_env(**self.env),
            check=False,
            timeout=120,
        )

    def assert_imports_from_the_store(self, env: str = "b") -> None:
        result = self.imports(env)
        assert result.returncode == 0, result.stderr
        value, where = result.stdout.splitlines()
        assert value == "one"
        assert where == os.fspath(self.root / "vfy" / "__init__.py")  # the store's, no copy

    def check(self, env: str = "b", *options: str) -> subprocess.CompletedProcess[str]:
        return self.run("check", os.fspath(self.manifest(env)), *options)

    def verify(self, *options: str) -> subprocess.CompletedProcess[str]:
        return self.run("store", "verify", "--store", os.fspath(self.store), *options)

    def leftovers(self) -> list[str]:
        """What lies in STORE/wheels besides the entries: temp and aside dirs."""
        return [name for name in os.listdir(self.store / "wheels") if name.startswith(".")]

    def info(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.entry / ENTRY_FILE).read_text())
        return data


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """Two environments, ``a`` and ``b``, made by ``vsite install`` of one wheel."""
    made = Site(tmp_path)
    assert "unpacked vfy-1.0-py3-none-any.whl" in made.install("a")
    assert "reused vfy-1.0-py3-none-any.whl" in made.install("b")
    made.assert_imports_from_the_store("b")
    return made


def _writable(*paths: Path) -> None:
    """Let the owner write ``paths`` (store entries are read-only; root writes through
    modes anyway, as ``pip uninstall`` run as root does)."""
    for path in paths:
        os.chmod(path, stat.S_IMODE(path.lstat().st_mode) | stat.S_IWUSR)


def _uninstall_as_pip_does(root: Path) -> list[Path]:
    """Delete what ``pip uninstall`` deletes of the distribution in ``root``: every file
    RECORD lists, the bytecode of its modules, then the directories left empty."""
    (dist_info,) = root.glob("*.dist-info")
    removed = []
    for line in (dist_info / "RECORD").read_text().splitlines():
        path = Path(os.path.normpath(root / line.split(",")[0]))
        if path.suffix == ".py":
            for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
                _writable(pyc.parent)
                pyc.unlink()
                removed.append(pyc)
        _writable(path.parent)
        path.unlink()
        removed.append(path)
    for directory in sorted({p.parent for p in removed}, key=lambda p: -len(p.parts)):
        if directory != root and directory.exists() and not any(directory.iterdir()):
            _writable(directory.parent)
            directory.rmdir()
    return removed


def _rewrite(path: Path, data: bytes) -> None:
    """Write ``data`` into the read-only store file ``path`` in place (same inode)."""
    _writable(path)
    with open(path, "r+b") as stream:
        stream.truncate(0)
        stream.write(data)


def _same_size_change(path: Path, old: bytes, new: bytes) -> None:
    assert len(old) == len(new)
    data = path.read_bytes()
    assert old in data
    mtime = path.stat().st_mtime_ns
    _rewrite(path, data.replace(old, new, 1))
    os.utime(path, ns=(mtime, mtime))


def _as_an_older_vsite_wrote_it(entry: Path) -> dict[str, object]:
    """Rewrite ``entry``'s wheel.json as vsite wrote it before the record existed."""
    info = json.loads((entry / ENTRY_FILE).read_text())
    old = {key: info[key] for key in ("wheel", "name", "version", "sha256", "bytecode")}
    _writable(entry, entry / ENTRY_FILE)
    (entry / ENTRY_FILE).write_text(json.dumps(old, indent=1))
    os.chmod(entry / ENTRY_FILE, 0o444)
    os.chmod(entry, 0o555)
    return old


def _assert_read_only(entry: Path) -> None:
    for path in [entry, *entry.rglob("*")]:
        assert stat.S_IMODE(path.lstat().st_mode) & 0o222 == 0, path


# -- what an entry records ----------------------------------------------------------------


def test_an_entry_records_every_file_with_its_size_bytecode_included(site: Site) -> None:
    info = site.info()
    assert info["format"] == STORE_FORMAT
    files = info["files"]
    assert isinstance(files, dict)
    assert files == record_files(os.fspath(site.entry))  # everything but wheel.json
    assert files["site-packages/vfy/core.py"] == (site.root / "vfy" / "core.py").stat().st_size
    assert "bin/vfy-tool" in files  # the siblings of the root too
    assert "site-packages/vfy-1.0.dist-info/RECORD" in files
    if TAG is not None:
        assert f"site-packages/vfy/__pycache__/core.{TAG}.pyc" in files
    assert ENTRY_FILE not in files


# -- vsite install: checked before reuse, repaired -----------------------------------------


def test_an_emptied_entry_is_repaired_by_the_next_install(site: Site) -> None:
    """pip uninstall run as root inside environment ``a`` empties the shared entry: ``b``
    breaks; ``vsite check`` says why; the next ``vsite install`` repairs it."""
    removed = _uninstall_as_pip_does(site.root)
    assert site.root / "vfy" / "__init__.py" in removed
    # A store root is immutable: the index is not rebuilt for it, the import names it.
    broken = site.imports("b").stderr
    assert f"{site.root / 'vfy'} is gone (root directory {site.root} changed" in broken
    assert "`vsite check` reports what changed in it" in broken

    result = site.check("b")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "damaged store entries (1):" in result.stdout
    assert "missing files (" in result.stdout
    assert "site-packages/vfy/__init__.py" in result.stdout
    assert "the next `vsite install` of vfy-1.0-py3-none-any.whl unpacks it again" in result.stdout
    used = f"used by the environments {site.manifest('a')}, {site.manifest('b')}"
    assert used in result.stdout
    result = site.check("b", "--json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    (finding,) = [found for found in findings if found["kind"] == "damaged-store-entry"]
    assert finding["pointer"] == "/roots/0"
    assert finding["root"] == os.fspath(site.root)

    out = site.install("a")
    assert "[1/1] repaired vfy-1.0-py3-none-any.whl" in out
    site.assert_imports_from_the_store("b")  # b never ran install: the shared entry is whole
    assert site.check("b").returncode == 0
    assert site.leftovers() == []  # the damaged entry was removed, no temp dir left
    _assert_read_only(site.entry)
    assert "[1/1] reused vfy-1.0-py3-none-any.whl" in site.install("a")


def test_a_truncated_file_is_found_by_its_size_and_repaired(site: Site) -> None:
    core = site.root / "vfy" / "core.py"
    _rewrite(core, core.read_bytes()[:10])

    result = site.check("b")
    assert result.returncode == 1
    assert "files of another size (1): site-packages/vfy/core.py (10 bytes, recorded" in (
        result.stdout
    )
    assert "[1/1] repaired vfy-1.0-py3-none-any.whl" in site.install("a")
    site.assert_imports_from_the_store("b")


def test_a_truncated_pyc_is_found_and_repaired(site: Site) -> None:
    """An unchecked-hash pyc is loaded without its source being read: a truncated one
    breaks the import of an intact module, so bytecode is recorded and checked too."""
    if TAG is None:
        pytest.skip("this interpreter writes no bytecode")
    pyc = site.root / "vfy" / "__pycache__" / f"core.{TAG}.pyc"
    _rewrite(pyc, pyc.read_bytes()[:20])
    assert site.imports("b").returncode != 0  # what a user meets

    result = site.check("b")
    assert result.returncode == 1
    assert f"site-packages/vfy/__pycache__/core.{TAG}.pyc (20 bytes, recorded" in result.stdout
    assert "[1/1] repaired vfy-1.0-py3-none-any.whl" in site.install("a")
    site.assert_imports_from_the_store("b")


def test_an_entry_without_its_wheel_json_is_repaired(site: Site) -> None:
    _writable(site.entry)
    (site.entry / ENTRY_FILE).unlink()
    assert "[1/1] repaired vfy-1.0-py3-none-any.whl" in site.install("a")
    assert site.info()["format"] == STORE_FORMAT
    site.assert_imports_from_the_store("b")
    assert site.leftovers() == []


def test_a_modified_file_of_the_same_size_is_found_only_by_store_verify(site: Site) -> None:
    core = site.root / "vfy" / "core.py"
    _same_size_change(core, b"'one'", b"'two'")

    # Sizes cannot see it: check and install (lstat only) take the entry as sound.
    assert site.check("b").returncode == 0
    assert "[1/1] reused vfy-1.0-py3-none-any.whl" in site.install("a")

    result = site.verify()
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{site.entry} (vfy-1.0-py3-none-any.whl): damaged: "
        "files changed (RECORD hash differs) (1): site-packages/vfy/core.py"
    )
    # ... with the environments that use it (those vsite install registered).
    assert sorted(lines[1:3]) == [
        f"  used by the environment {site.manifest(env)}" for env in ("a", "b")
    ]
    assert lines[3].startswith("vsite: 1 store entries in ")
    assert lines[3].endswith(f": 0 ok, 1 damaged; store {site.store}")
    assert len(lines) == 4
    assert core.exists()  # without --repair, nothing changes


def test_store_verify_finds_bytecode_that_does_not_match_its_source(site: Site) -> None:
    if TAG is None:
        pytest.skip("this interpreter writes no bytecode")
    pyc = site.root / "vfy" / "__pycache__" / f"core.{TAG}.pyc"
    data = bytearray(pyc.read_bytes())
    data[8] ^= 0xFF  # the source hash in the header: the same size, another source
    _rewrite(pyc, bytes(data))
    assert site.check("b").returncode == 0  # sizes agree

    result = site.verify()
    assert result.returncode == 1
    assert (
        f"bytecode not matching its source (1): site-packages/vfy/__pycache__/core.{TAG}.pyc"
        in result.stdout
    )


def test_store_verify_repair_removes_damaged_entries_whole(site: Site) -> None:
    other = make_wheel(site.base / "w", "sound", {"sound.py": "S = 1\n"})
    site.install("c", other)
    sound_entry = site.store / "wheels" / wheel_sha256(os.fspath(other))
    _same_size_change(site.root / "vfy" / "core.py", b"'one'", b"'two'")

    result = site.verify()
    assert result.returncode == 1
    assert ": 1 ok, 1 damaged; store" in result.stdout
    assert site.entry.exists()

    result = site.verify("--repair")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].endswith(
        "; removed: the next `vsite install` of vfy-1.0-py3-none-any.whl unpacks it again"
    )
    assert ": 1 ok, 1 damaged (1 removed); store" in result.stdout
    assert not site.entry.exists()  # gone whole: never half an entry
    assert sound_entry.is_dir()
    assert site.leftovers() == []
    assert "ok" in site.check("c").stdout

    result = site.verify()
    assert result.returncode == 0, result.stdout
    assert ": 1 ok, 0 damaged; store" in result.stdout
    assert "[1/1] unpacked vfy-1.0-py3-none-any.whl" in site.install("a")
    site.assert_imports_from_the_store("b")
    assert site.verify().returncode == 0


# -- entries of other vsite versions --------------------------------------------------------


def test_an_entry_from_an_older_vsite_is_hash_checked_and_recorded_on_reuse(site: Site) -> None:
    _as_an_older_vsite_wrote_it(site.entry)
    assert site.check("b").returncode == 0  # sizes from RECORD
    assert site.verify().returncode == 0  # hashes from RECORD

    assert "[1/1] reused vfy-1.0-py3-none-any.whl" in site.install("a")
    info = site.info()
    assert info["format"] == STORE_FORMAT
    assert info["files"] == record_files(os.fspath(site.entry))
    _assert_read_only(site.entry)
    site.assert_imports_from_the_store("b")


def test_a_damaged_entry_from_an_older_vsite_is_unpacked_again(site: Site) -> None:
    _as_an_older_vsite_wrote_it(site.entry)
    _same_size_change(site.root / "vfy" / "core.py", b"'one'", b"'two'")

    assert "[1/1] repaired vfy-1.0-py3-none-any.whl" in site.install("a")
    assert site.info()["format"] == STORE_FORMAT
    site.assert_imports_from_the_store("b")


def test_check_finds_a_file_missing_from_an_older_vsites_entry_by_record(site: Site) -> None:
    _as_an_older_vsite_wrote_it(site.entry)
    _writable(site.root / "vfy")
    (site.root / "vfy" / "core.py").unlink()

    result = site.check("b")
    assert result.returncode == 1
    assert "missing files (1): site-packages/vfy/core.py" in result.stdout


def test_an_entry_of_a_newer_format_is_refused_in_one_line_and_never_touched(
    site: Site,
) -> None:
    info = site.info()
    newer = {**info, "format": STORE_FORMAT + 1, "files": ["a", "shape", "we cannot know"]}
    _writable(site.entry, site.entry / ENTRY_FILE)
    (site.entry / ENTRY_FILE).write_text(json.dumps(newer))
    before = sorted((p, p.lstat().st_size) for p in site.entry.rglob("*"))
    newer_line = f"newer vsite (entry format {STORE_FORMAT + 1}; this vsite knows up to"

    manifest = site.manifest("a")
    command = ["install", os.fspath(site.wheel), "--store", os.fspath(site.store)]
    result = site.run(*command, "-o", os.fspath(manifest))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"vsite: error: store entry {site.entry} was written by a ")
    assert newer_line in line

    result = site.check("b")
    assert result.returncode == 1
    assert f"store entry not verified: store entry {site.entry} was written by a" in result.stdout

    result = site.verify("--repair")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{site.entry}: not verified: was written by")
    assert ", 1 not verified; store" in result.stdout
    assert sorted((p, p.lstat().st_size) for p in site.entry.rglob("*")) == before


# -- bytecode another interpreter adds -------------------------------------------------------


def test_bytecode_another_interpreter_adds_is_recorded_and_checked(site: Site) -> None:
    from tests.test_store_bytecode import _other_python

    other, env = _other_python(site.base)
    other_tag = subprocess.run(
        [other, "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    command = [other, "-m", "vsite", "install", os.fspath(site.wheel)]
    command += ["--store", os.fspath(site.store), "-o", os.fspath(site.base / "o" / "m.json")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "1 given bytecode" in result.stdout
    files = site.info()["files"]
    assert isinstance(files, dict)
    pyc = f"site-packages/vfy/__pycache__/core.{other_tag}.pyc"
    assert files[pyc] == (site.entry / pyc).stat().st_size
    assert files == record_files(os.fspath(site.entry))

    _rewrite(site.entry / pyc, (site.entry / pyc).read_bytes()[:20])
    result = site.check("b")
    assert result.returncode == 1
    assert f"{pyc} (20 bytes, recorded" in result.stdout
    assert "[1/1] repaired vfy-1.0-py3-none-any.whl" in site.install("a")


# -- concurrency and permissions ------------------------------------------------------------


def test_installs_racing_to_repair_one_entry_all_succeed_with_one_entry(site: Site) -> None:
    _uninstall_as_pip_does(site.root)
    command = [*VSITE, "install", os.fspath(site.wheel), "--store", os.fspath(site.store)]
    children = [
        subprocess.Popen(
            [*command, "-o", os.fspath(site.base / f"race{n}" / "manifest.json"), "--no-env"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(**site.env),
        )
        for n in range(6)
    ]
    outcomes = [(child.wait(timeout=300), *child.communicate()) for child in children]
    assert [code for code, _, _ in outcomes] == [0] * 6, outcomes
    assert any("repaired" in out for _, out, _ in outcomes)
    assert os.listdir(site.store / "wheels") == [site.entry.name]  # one entry, no leftovers
    assert site.verify().returncode == 0
    site.assert_imports_from_the_store("b")


def test_a_repair_waits_for_the_entry_lock_and_keeps_a_copy_repaired_meanwhile(
    site: Site,
) -> None:
    """The swap runs under the entry's lock (the one bytecode is added under) and looks
    again once it holds it: an entry another installer repaired meanwhile is kept."""
    import time

    from vsite.tools.install.bytecode import locked
    from vsite.tools.install.store import Store

    _uninstall_as_pip_does(site.root)
    wheels = site.store / "wheels"
    command = [*VSITE, "install", os.fspath(site.wheel), "--store", os.fspath(site.store)]
    command += ["-o", os.fspath(site.manifest("a")), "--no-env"]
    with locked(os.fspath(site.store / "locks" / f"{site.entry.name}.lock")):
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(**site.env),
        )
        deadline = time.monotonic() + 120
        while not any((path / ENTRY_FILE).exists() for path in wheels.glob(".tmp-*")):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(1.0)  # its fresh copy is whole: it waits for the lock, nothing swapped
        assert child.poll() is None, child.communicate()
        assert not (site.root / "vfy").exists()
        # Meanwhile another installer repairs the entry, as it would under this lock.
        fresh = Store(os.fspath(site.base / "other-store")).add(
            os.fspath(site.wheel), site.entry.name
        )
        aside = wheels / ".tmp-test-aside"
        site.entry.rename(aside)
        Path(fresh.path).rename(site.entry)
        repaired = site.entry.stat().st_ino
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert "[1/1] unpacked vfy-1.0-py3-none-any.whl" in out  # not repaired by this one
    assert site.entry.stat().st_ino == repaired  # the copy repaired meanwhile is kept
    assert sorted(path.name for path in wheels.glob(".tmp-*")) == [aside.name]
    site.assert_imports_from_the_store("b")


def test_a_damaged_entry_left_aside_by_a_crash_is_removed_by_the_next_unpack(
    site: Site,
) -> None:
    """A repair killed between its two renames leaves the damaged entry aside, its key
    empty: the next install unpacks the wheel and its sweep removes the aside, as its
    lock is free; an aside whose lock is held (a repair under way) is left alone."""
    from vsite.tools.install.bytecode import locked

    wheels = site.store / "wheels"
    crashed = wheels / f".tmp-damaged-{site.entry.name}-0123456789ab"
    with locked(os.fspath(site.store / "locks" / f"{site.entry.name}.lock")):
        site.entry.rename(crashed)  # ... and the repair is killed here, the lock let go
    other = make_wheel(site.base / "w", "held", {"held.py": ""})
    other_key = wheel_sha256(os.fspath(other))
    held = wheels / f".tmp-removed-{other_key}-0123456789ab"
    (held / "site-packages").mkdir(parents=True)
    with locked(os.fspath(site.store / "locks" / f"{other_key}.lock")):
        assert "[1/1] unpacked vfy-1.0-py3-none-any.whl" in site.install("a")
        assert not crashed.exists()
        assert held.exists()
    site.assert_imports_from_the_store("b")


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A scratch directory another user can reach (tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="vsite-store-verify-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_damaged_entry_in_a_store_the_user_cannot_write_is_one_store_error(
    shared_base: Path,
) -> None:
    from tests.reliability._support import as_other_user, warm_for_other_user

    site = Site(shared_base)
    site.install("a")
    for path in [shared_base, *shared_base.rglob("*")]:  # readable to nobody, not writable
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, stat.S_IMODE(path.stat().st_mode) | 0o555)
    core = site.root / "vfy" / "core.py"
    _rewrite(core, core.read_bytes()[:10])
    os.chmod(core, 0o444)
    before = sorted((p, p.lstat().st_size) for p in site.store.rglob("*"))
    warm_for_other_user()
    import concurrent.futures.thread  # noqa: F401  (what install loads lazily)
    import encodings.ascii  # noqa: F401

    from vsite.errors import StoreError
    from vsite.tools.install import check_wheels, install
    from vsite.tools.install.store import Store

    wheels = check_wheels([os.fspath(site.wheel)])

    def attempt() -> str:
        try:
            install(wheels, Store(os.fspath(site.store)), jobs=1)
        except StoreError as exc:
            return f"StoreError: {exc}"
        return "installed"

    outcome = as_other_user(attempt)
    assert isinstance(outcome, str)
    assert outcome.startswith(f"StoreError: store entry {site.entry} is damaged (files of "), (
        outcome
    )
    assert outcome.endswith("and cannot be repaired: Permission denied"), outcome
    assert "\n" not in outcome
    assert sorted((p, p.lstat().st_size) for p in site.store.rglob("*")) == before
