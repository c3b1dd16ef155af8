"""vsite install: wheels unpacked once into the store, checked, read-only; a manifest."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.builders import Tree
from vsite.errors import StoreError, VsiteError, WheelError
from vsite.manifest import Manifest
from vsite.tools.cli import main
from vsite.tools.install import check_wheels, install
from vsite.tools.install.hashes import wheel_sha256
from vsite.tools.install.store import Store

pytest.importorskip("installer")


def _flatten(tree: Tree, prefix: str = "") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, content in tree.items():
        if isinstance(content, Mapping):
            files.update(_flatten(content, f"{prefix}{name}/"))
        else:
            files[prefix + name] = content.encode() if isinstance(content, str) else content
    return files


def make_wheel(
    directory: Path,
    name: str,
    tree: Tree | None = None,
    *,
    version: str = "1.0",
    tag: str = "py3-none-any",
    entry_points: str | None = None,
    data: Tree | None = None,
    record_override: dict[str, str] | None = None,
    unrecorded: dict[str, bytes] | None = None,
) -> Path:
    """Build ``{name}-{version}-{tag}.whl`` in ``directory``.

    ``data`` holds ``{name}-{version}.data/`` (scheme dirs: scripts, data, headers...);
    ``record_override`` replaces the RECORD hash of a path; ``unrecorded`` adds files
    that RECORD does not list.
    """
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files = _flatten(tree or {})
    files.update(_flatten(data or {}, f"{stem}.data/"))
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: vsite-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    if entry_points is not None:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    lines = []
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        hashed = (record_override or {}).get(path, f"sha256={digest.decode()}")
        lines.append(f"{path},{hashed},{len(content)}\n")
    lines.append(f"{info}/RECORD,,\n")
    files[f"{info}/RECORD"] = "".join(lines).encode()
    files.update(unrecorded or {})
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            # A fixed timestamp: the same tree gives the same wheel bytes (the store keys
            # entries by the wheel's hash) also when two builds straddle a 2-second tick.
            member = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            member.external_attr = 0o644 << 16
            archive.writestr(member, content, zipfile.ZIP_DEFLATED)
    return target


def _store_entries(store: Path) -> list[str]:
    wheels = store / "wheels"
    return sorted(os.listdir(wheels)) if wheels.exists() else []


def _install(paths: list[Path], store: Path) -> tuple[Store, list[str], int, int]:
    result = install(check_wheels([os.fspath(p) for p in paths]), Store(os.fspath(store)))
    return Store(os.fspath(store)), [e.root for e in result.entries], result.unpacked, result.reused


def test_wheel_is_unpacked_into_a_store_root_named_by_its_hash(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "alpha", {"alpha": {"__init__.py": "X = 1\n"}})
    _, roots, unpacked, reused = _install([wheel], tmp_path / "store")
    (root,) = roots
    assert Path(root) == tmp_path / "store" / "wheels" / wheel_sha256(os.fspath(wheel)) / (
        "site-packages"
    )
    assert (Path(root) / "alpha" / "__init__.py").read_text() == "X = 1\n"
    info = Path(root) / "alpha-1.0.dist-info"
    assert (info / "INSTALLER").read_text() == "vsite\n"
    assert "alpha/__init__.py,sha256=" in (info / "RECORD").read_text()
    assert (unpacked, reused) == (1, 0)
    # Byte-compiled for this interpreter, as pip does (tests/test_store_bytecode.py).
    tag = sys.implementation.cache_tag
    assert [p.name for p in Path(root).rglob("*.pyc")] == [f"__init__.{tag}.pyc"]


def test_second_install_of_the_same_wheel_reuses_its_root(tmp_path: Path) -> None:
    shared = make_wheel(tmp_path / "w", "shared", {"shared.py": ""})
    own = make_wheel(tmp_path / "w", "own", {"own.py": ""})
    # The same bytes under another directory: the key is the content, not the path.
    copy = tmp_path / "elsewhere" / shared.name
    copy.parent.mkdir()
    copy.write_bytes(shared.read_bytes())
    _, first, *_ = _install([shared], tmp_path / "store")
    _, second, unpacked, reused = _install([copy, own], tmp_path / "store")
    assert second[0] == first[0]
    assert (unpacked, reused) == (1, 1)
    assert len(_store_entries(tmp_path / "store")) == 2


def test_store_entries_are_read_only(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "ro", {"ro": {"__init__.py": "", "sub": {"m.py": ""}}})
    _, (root,), *_ = _install([wheel], tmp_path / "store")
    entry = Path(root).parent
    for path in [entry, *entry.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path
        assert stat.S_IMODE(path.stat().st_mode) & 0o444 == 0o444, path  # still readable


def test_scripts_and_data_go_to_sibling_dirs_of_the_root(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        "tool",
        {"tool.py": "def main():\n    return 0\n"},
        entry_points="[console_scripts]\ntool = tool:main\n",
        data={"scripts": {"helper": "#!python\nprint('hi')\n"}, "data": {"share": {"t.txt": "x"}}},
    )
    _, (root,), *_ = _install([wheel], tmp_path / "store")
    entry = Path(root).parent
    assert sorted(p.name for p in (entry / "bin").iterdir()) == ["helper", "tool"]
    assert (entry / "bin" / "helper").read_text().startswith(f"#!{sys.executable}\n")
    assert (entry / "data" / "share" / "t.txt").read_text() == "x"
    assert sorted(os.listdir(root)) == ["__pycache__", "tool-1.0.dist-info", "tool.py"]
    record = (Path(root) / "tool-1.0.dist-info" / "RECORD").read_text()
    assert "../bin/tool," in record
    assert "../data/share/t.txt," in record


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("corrupt", "not a valid wheel"),
        ("hash", "bad/__init__.py does not match its RECORD hash"),
        ("unrecorded", "extra.py is not mentioned in RECORD"),
        ("tags", "built for cp27-cp27m-win32"),
        ("missing", "no such wheel file"),
        ("filename", "not a wheel file name"),
    ],
)
def test_bad_wheel_is_refused_by_name_and_leaves_nothing_in_the_store(
    tmp_path: Path, case: str, expected: str
) -> None:
    tree: Tree = {"bad": {"__init__.py": "A = 1\n"}}
    kwargs: dict[str, object] = {}
    if case == "hash":
        kwargs["record_override"] = {"bad/__init__.py": "sha256=" + "A" * 43}
    elif case == "unrecorded":
        kwargs["unrecorded"] = {"extra.py": b""}
    elif case == "tags":
        kwargs["tag"] = "cp27-cp27m-win32"
    wheel = make_wheel(tmp_path / "w", "bad", tree, **kwargs)  # type: ignore[arg-type]
    if case == "corrupt":
        data = bytearray(wheel.read_bytes())
        data[len(data) // 3 : len(data) // 3 + 64] = b"\xff" * 64
        wheel.write_bytes(bytes(data))
    elif case == "missing":
        wheel.unlink()
    elif case == "filename":
        wheel = wheel.rename(wheel.with_name("bad.whl"))
    good = make_wheel(tmp_path / "w", "good", {"good.py": ""})
    store = tmp_path / "store"
    with pytest.raises(WheelError) as caught:
        _install([wheel, good], store)
    message = str(caught.value)
    assert expected in message
    assert wheel.name in message  # names the wheel
    leftovers = [e for e in _store_entries(store) if e != wheel_sha256(os.fspath(good))]
    assert leftovers == []  # no entry and no temp dir for the bad wheel


def test_bad_wheels_are_all_named_before_any_is_unpacked(tmp_path: Path) -> None:
    good = make_wheel(tmp_path / "w", "good", {"good.py": ""})
    win = make_wheel(tmp_path / "w", "win", {"win.py": ""}, tag="cp311-cp311-win_amd64")
    mac = make_wheel(tmp_path / "w", "mac", {"mac.py": ""}, tag="py2-none-macosx_10_9_x86_64")
    with pytest.raises(WheelError) as caught:
        _install([good, win, mac], tmp_path / "store")
    assert win.name in str(caught.value)
    assert mac.name in str(caught.value)
    assert _store_entries(tmp_path / "store") == []


def test_two_versions_of_one_distribution_are_refused(tmp_path: Path) -> None:
    one = make_wheel(tmp_path / "a", "dup", {"dup.py": "V = 1\n"}, version="1.0")
    two = make_wheel(tmp_path / "b", "dup", {"dup.py": "V = 2\n"}, version="2.0")
    with pytest.raises(WheelError, match=r"also given as dup-1\.0-py3-none-any\.whl"):
        check_wheels([os.fspath(one), os.fspath(two)])
    # The same file twice is one root.
    assert len(check_wheels([os.fspath(one), os.fspath(one)])) == 1


def test_crash_while_unpacking_leaves_no_partial_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vsite.tools.install.store as store_module

    wheel = make_wheel(tmp_path / "w", "crash", {"crash": {"a.py": "", "b.py": ""}})
    real = store_module._unpack

    def unpack_then_die(*args: object, **kwargs: object) -> tuple[str, str]:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_unpack", unpack_then_die)
    with pytest.raises(KeyboardInterrupt):
        _install([wheel], tmp_path / "store")
    assert _store_entries(tmp_path / "store") == []
    monkeypatch.setattr(store_module, "_unpack", real)
    _, (root,), unpacked, _ = _install([wheel], tmp_path / "store")
    assert unpacked == 1
    assert (Path(root) / "crash" / "b.py").exists()


def test_a_concurrent_unpack_of_the_same_wheel_keeps_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vsite.tools.install.store as store_module

    wheel = make_wheel(tmp_path / "w", "race", {"race.py": ""})
    sha = wheel_sha256(os.fspath(wheel))
    real = store_module._unpack
    other = Store(os.fspath(tmp_path / "store"))

    def other_process_wins(*args: object, **kwargs: object) -> tuple[str, str]:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(store_module, "_unpack", real)
        other.add(os.fspath(wheel), sha)  # finishes first
        return result

    monkeypatch.setattr(store_module, "_unpack", other_process_wins)
    entry = Store(os.fspath(tmp_path / "store")).add(os.fspath(wheel), sha)
    assert entry.path == other.entry_path(sha)
    assert _store_entries(tmp_path / "store") == [sha]  # the loser's temp dir is gone


def test_stale_temp_dirs_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / "store" / "wheels" / ".tmp-crashed"
    (stale / "site-packages").mkdir(parents=True)
    os.chmod(stale / "site-packages", 0o555)
    os.utime(stale, (0, 0))
    fresh = tmp_path / "store" / "wheels" / ".tmp-running"
    fresh.mkdir()
    _install([make_wheel(tmp_path / "w", "x", {"x.py": ""})], tmp_path / "store")
    assert not stale.exists()
    assert fresh.exists()


def test_compile_writes_bytecode_naming_the_final_location(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "comp", {"comp": {"__init__.py": "def f():\n    1/0\n"}})
    store = Store(os.fspath(tmp_path / "store"))
    entry = store.add(os.fspath(wheel), wheel_sha256(os.fspath(wheel)), compile_bytecode=True)
    (pyc,) = (Path(entry.root) / "comp" / "__pycache__").glob("*.pyc")
    import marshal

    code = marshal.loads(pyc.read_bytes()[16:])
    assert code.co_filename == os.path.join(entry.root, "comp", "__init__.py")


def test_unwritable_store_is_a_store_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip(
            "root writes through file modes "
            "(tests/reliability/test_store_permissions.py drops to nobody)"
        )
    store = tmp_path / "store"
    store.mkdir(mode=0o555)
    with pytest.raises(StoreError, match="cannot create the store"):
        _install([make_wheel(tmp_path / "w", "x", {"x.py": ""})], store)


# -- the command -------------------------------------------------------------------------


def test_install_command_writes_a_manifest_that_activates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheels = [
        make_wheel(tmp_path / "w", "ns-one", {"ns": {"one.py": "N = 1\n"}}),
        make_wheel(tmp_path / "w", "ns-two", {"ns": {"two.py": "N = 2\n"}}),
    ]
    out = tmp_path / "env" / "manifest.json"
    code = main(["install", *map(os.fspath, wheels), "--store", f"{tmp_path}/s", "-o", f"{out}"])
    assert code == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()  # plain lines, no tty; wheels finish in any order
    assert sorted(line.split("] ")[1] for line in lines[:2]) == [
        "unpacked ns_one-1.0-py3-none-any.whl",
        "unpacked ns_two-1.0-py3-none-any.whl",
    ]
    assert [line.split("] ")[0] for line in lines[:2]] == ["[1/2", "[2/2"]
    assert "2 roots (2 unpacked, 0 reused)" in printed
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["roots"]] == ["ns-one", "ns-two"]
    assert all(os.path.isabs(r["path"]) for r in data["roots"])  # store is outside
    script = "import ns.one, ns.two, importlib.metadata as m; print(m.version('ns-two'))"
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "run", os.fspath(out), "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "1.0\n"), result.stderr
    assert Manifest.load(out).roots[0].path == os.path.realpath(data["roots"][0]["path"])


@pytest.mark.parametrize("env", [True, False], ids=["with-env", "no-env"])
def test_the_first_start_after_an_install_reads_the_index_it_wrote(
    tmp_path: Path, env: bool
) -> None:
    wheel = make_wheel(tmp_path / "w", "first", {"first.py": "N = 1\n"})
    out = tmp_path / "env" / "manifest.json"
    extra = [] if env else ["--no-env"]
    assert (
        main(["install", os.fspath(wheel), "--store", f"{tmp_path}/s", "-o", f"{out}", *extra]) == 0
    )
    code = (
        "import vsite.index as i\n"
        "def scan(*a): raise SystemExit('the index was built at start')\n"
        "i.build_index = scan\n"
        f"import vsite; vsite.activate({os.fspath(out)!r})\n"
        "import first; print(first.N)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr


def test_manifest_paths_are_relative_when_the_store_is_under_its_dir(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "rel", {"rel.py": ""})
    out = tmp_path / "env" / "manifest.json"
    assert (
        main(["install", os.fspath(wheel), "--store", f"{tmp_path}/env/store", "-o", f"{out}"]) == 0
    )
    (root,) = json.loads(out.read_text())["roots"]
    assert root["path"].startswith("store/wheels/")
    assert Manifest.load(out).roots[0].path.startswith(os.fspath(tmp_path / "env" / "store"))


def test_install_command_reports_a_bad_wheel_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = make_wheel(tmp_path / "w", "bad", {"bad.py": ""}, tag="cp27-cp27m-win32")
    out = tmp_path / "m.json"
    assert main(["install", os.fspath(wheel), "--store", f"{tmp_path}/s", "-o", f"{out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vsite: error: bad-1.0-cp27-cp27m-win32.whl: built for")
    assert "Traceback" not in err
    assert not out.exists()


def test_progress_is_a_bar_on_a_terminal(tmp_path: Path) -> None:
    import io

    from vsite.tools.cli import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    progress = Progress(2, screen)
    progress.update(0, "unpacking a.whl")
    progress.done(1, "unpacked a.whl")
    progress.done(2, "reused b.whl")
    progress.close()
    text = screen.getvalue()
    assert "\n" not in text
    assert "\r[############------------] 1/2 unpacked a.whl" in text
    assert "[########################] 2/2 reused b.whl" in text


def test_requirements_are_resolved_with_pip_download(tmp_path: Path) -> None:
    pytest.importorskip("pip")
    links = tmp_path / "links"
    make_wheel(
        links, "top-req", {"top_req.py": "import dep_req\n"}, version="1.0"
    )  # its dependency is declared below
    info = "top_req-1.0.dist-info/METADATA"
    wheel = links / "top_req-1.0-py3-none-any.whl"
    _add_requires(wheel, info, "dep-req")
    make_wheel(links, "dep-req", {"dep_req.py": "D = 1\n"}, version="2.0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("top-req\n")
    out = tmp_path / "m.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=os.fspath(links), PIP_CONFIG_FILE=os.devnull)
    command = [sys.executable, "-m", "vsite", "install", "-r", os.fspath(requirements)]
    command += ["--store", f"{tmp_path}/s", "-o", f"{out}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
    names = [root["name"] for root in json.loads(out.read_text())["roots"]]
    assert names == ["dep-req", "top-req"]


def _add_requires(wheel: Path, member: str, requirement: str) -> None:
    """Rewrite ``wheel`` with ``Requires-Dist: requirement`` in METADATA (RECORD too)."""
    with zipfile.ZipFile(wheel) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files[member] += f"Requires-Dist: {requirement}\n".encode()
    record_name = member.replace("METADATA", "RECORD")
    lines = []
    for line in files[record_name].decode().splitlines():
        path = line.split(",")[0]
        if path == member:
            digest = hashlib.sha256(files[member]).digest()
            encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            line = f"{path},sha256={encoded},{len(files[member])}"
        lines.append(line + "\n")
    files[record_name] = "".join(lines).encode()
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


def test_errors_are_vsite_errors() -> None:
    assert issubclass(WheelError, VsiteError)
    assert issubclass(WheelError, ValueError)
    assert issubclass(StoreError, OSError)


def test_a_wheel_digest_is_remembered_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(tmp_path / "w", "memo", {"memo.py": "X = 1\n"})
    store = Store(os.fspath(tmp_path / "store"))
    first = store.wheel_sha256(os.fspath(wheel))
    assert first == wheel_sha256(os.fspath(wheel))

    import vsite.tools.install.hashes as hashes_module

    def no_hashing(path: str) -> str:
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr(hashes_module, "wheel_sha256", no_hashing)
    assert store.wheel_sha256(os.fspath(wheel)) == first  # remembered: no second read
    monkeypatch.undo()

    # Same name, same size, same mtime, other bytes: the ctime moved, so it is re-hashed.
    st = wheel.stat()
    data = bytearray(wheel.read_bytes())
    data[-1] ^= 0xFF
    wheel.write_bytes(bytes(data))
    os.utime(wheel, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert wheel.stat().st_size == st.st_size
    assert store.wheel_sha256(os.fspath(wheel)) == wheel_sha256(os.fspath(wheel)) != first


def test_a_read_only_store_still_hashes_wheels(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "ro", {"ro.py": ""})
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "hashes").write_text("not a directory")  # memos cannot be written
    store = Store(os.fspath(store_dir))
    assert store.wheel_sha256(os.fspath(wheel)) == wheel_sha256(os.fspath(wheel))
    assert list(store_dir.iterdir()) == [store_dir / "hashes"]
