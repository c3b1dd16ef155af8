"""vsite install from a lock file (pylock.toml, PEP 751) and from hashed requirements:
selected for this interpreter, every hash checked before anything is unpacked, every
problem named at once, the lock's order kept; --offline fetches nothing."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_install import make_wheel
from vsite.errors import UsageError, WheelError
from vsite.tools.cli import main
from vsite.tools.install import install_command

pytest.importorskip("installer")


# -- writing locks ------------------------------------------------------------------------


def _toml(value: object) -> str:
    """A TOML value: strings and numbers as JSON spells them (valid TOML), lists and
    inline tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


def write_lock(path: Path, packages: list[dict[str, Any]], **top: object) -> Path:
    """``path`` holding a pylock.toml of ``packages`` (one table each); ``top`` adds or
    replaces top-level keys (None removes one)."""
    keys: dict[str, object] = {"lock-version": "1.0", "created-by": "vsite-tests"}
    keys.update({key.replace("_", "-"): value for key, value in top.items()})
    lines = [f"{json.dumps(k)} = {_toml(v)}" for k, v in keys.items() if v is not None]
    for package in packages:
        lines += ["", "[[packages]]"]
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in package.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package(
    wheel: Path, name: str, version: str = "1.0", *, url: str | None = None, **extra: object
) -> dict[str, Any]:
    """The [[packages]] table of ``wheel``: its ``path`` relative to the lock (the
    wheel's directory's parent), or ``url``; its sha256."""
    entry: dict[str, object] = {"name": wheel.name, "hashes": {"sha256": sha256(wheel)}}
    if url is not None:
        entry["url"] = url
    else:
        entry["path"] = f"{wheel.parent.name}/{wheel.name}"
    keys = {key.replace("_", "-"): value for key, value in extra.items()}
    return {"name": name, "version": version, **keys, "wheels": [entry]}


def listing(top: Path) -> list[str]:
    """Every path under ``top`` (nothing when it does not exist)."""
    return sorted(
        os.path.relpath(os.path.join(d, n), top) for d, ds, fs in os.walk(top) for n in ds + fs
    )


def _run(manifest: Path, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "vsite", "run", os.fspath(manifest), "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    """zeta 2.0 and alpha 1.0, each with a ``shared.py`` of its own."""
    wheels = tmp_path / "wheels"
    zeta = make_wheel(wheels, "zeta", {"zeta.py": "", "shared.py": "WHO = 'zeta'\n"}, version="2.0")
    alpha = make_wheel(wheels, "alpha", {"alpha.py": "", "shared.py": "WHO = 'alpha'\n"})
    return zeta, alpha


def _install(lock: Path, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "env" / "manifest.json"
    args = ["install", os.fspath(lock), "--store", f"{tmp_path}/store", "-o", f"{out}"]
    assert main([*args, "--no-env", *extra]) == 0
    return out


def _refused(lock: Path, tmp_path: Path, *extra: str) -> str:
    """Install ``lock`` in-process, expecting WheelError; its text. Nothing is written:
    no manifest, nothing in the store."""
    before = listing(tmp_path / "store")
    with pytest.raises(WheelError) as caught:
        install_command(
            [os.fspath(lock)], [], os.fspath(tmp_path / "m.json"), store_path=f"{tmp_path}/store",
            offline="--offline" in extra,
        )  # fmt: skip
    assert not (tmp_path / "m.json").exists()
    assert listing(tmp_path / "store") == before
    return str(caught.value)


# -- installing a lock --------------------------------------------------------------------


def test_a_lock_installs_its_wheels_as_roots_in_the_lock_order(
    tmp_path: Path, two: tuple[Path, Path]
) -> None:
    zeta, alpha = two
    lock = write_lock(
        tmp_path / "pylock.toml", [package(zeta, "zeta", "2.0"), package(alpha, "alpha")]
    )
    out = _install(lock, tmp_path)
    names = [root["name"] for root in json.loads(out.read_text())["roots"]]
    assert names == ["zeta", "alpha"]  # the lock's order, not sorted
    code = "import shared, importlib.metadata as m; v = m.version\n"
    code += "print(shared.WHO, v('zeta'), v('alpha'))"
    assert _run(out, code) == "zeta 2.0 1.0\n"  # the earlier root wins the shared file


def test_a_marker_excluded_package_is_not_installed(tmp_path: Path, two: tuple[Path, Path]) -> None:
    zeta, alpha = two
    packages = [
        package(zeta, "zeta", "2.0"),
        package(alpha, "alpha", marker="python_version < '3'"),
    ]
    out = _install(write_lock(tmp_path / "pylock.toml", packages), tmp_path)
    assert [root["name"] for root in json.loads(out.read_text())["roots"]] == ["zeta"]
    assert len(os.listdir(tmp_path / "store" / "wheels")) == 1  # alpha not even unpacked


def test_extras_and_dependency_groups_select_their_packages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    base = make_wheel(wheels, "base", {"base.py": ""})
    cli = make_wheel(wheels, "cli-extra", {"cli_extra.py": ""})
    dev = make_wheel(wheels, "dev-tool", {"dev_tool.py": ""})
    lint = make_wheel(wheels, "lint-tool", {"lint_tool.py": ""})
    packages = [
        package(base, "base"),
        package(cli, "cli-extra", marker="'cli' in extras"),
        package(dev, "dev-tool", marker="'dev' in dependency_groups"),
        package(lint, "lint-tool", marker="'lint' in dependency_groups"),
    ]
    lock = write_lock(
        tmp_path / "pylock.toml", packages, extras=["cli"], dependency_groups=["dev", "lint"],
        default_groups=["dev"],
    )  # fmt: skip

    def names(*extra: str) -> list[str]:
        out = _install(lock, tmp_path, *extra)
        return [root["name"] for root in json.loads(out.read_text())["roots"]]

    assert names() == ["base", "dev-tool"]  # the default group
    assert names("--extra", "cli") == ["base", "cli-extra", "dev-tool"]
    assert names("--group", "lint") == ["base", "lint-tool"]  # asked for: instead of defaults
    with pytest.raises(WheelError, match=r"extras: extras the lock does not declare: gui"):
        install_command(
            [os.fspath(lock)], [], f"{tmp_path}/m.json", store_path=f"{tmp_path}/s", extras=["gui"]
        )
    assert not (tmp_path / "s").exists()


def test_wheels_are_downloaded_from_their_urls_then_reused_offline(
    tmp_path: Path, two: tuple[Path, Path], served: str
) -> None:
    zeta, alpha = two
    packages = [
        package(zeta, "zeta", "2.0", url=f"{served}/{zeta.name}"),
        package(alpha, "alpha", url=f"{served}/{alpha.name}"),
    ]
    lock = write_lock(tmp_path / "pylock.toml", packages)
    first = _install(lock, tmp_path).read_text()
    for wheel in two:
        wheel.unlink()  # neither the server nor a directory has them now
    out = _install(lock, tmp_path, "--offline")
    assert out.read_text() == first
    assert _run(out, "import zeta, alpha, shared; print(shared.WHO)") == "zeta\n"


def test_a_find_links_directory_is_looked_in_before_the_url(
    tmp_path: Path, two: tuple[Path, Path]
) -> None:
    zeta, alpha = two
    nowhere = "http://127.0.0.1:9/wheels"  # the discard port: nothing answers
    packages = [
        package(w, n, url=f"{nowhere}/{w.name}") for w, n in [(zeta, "zeta"), (alpha, "alpha")]
    ]
    for entry in packages:
        entry.pop("version")
    lock = write_lock(tmp_path / "pylock.toml", packages)
    out = _install(lock, tmp_path, "--find-links", os.fspath(zeta.parent))
    assert [root["version"] for root in json.loads(out.read_text())["roots"]] == ["2.0", "1.0"]


# -- refused, with the store as it was ------------------------------------------------------


@pytest.fixture
def store_before(tmp_path: Path) -> list[str]:
    """A store holding one other wheel already; its listing."""
    other = make_wheel(tmp_path / "other", "other", {"other.py": ""})
    install_command([os.fspath(other)], [], f"{tmp_path}/o.json", store_path=f"{tmp_path}/store")
    return listing(tmp_path / "store")


@pytest.mark.parametrize("where", ["lock", "wheel"])
def test_a_tampered_hash_is_refused_before_anything_is_unpacked(
    tmp_path: Path, two: tuple[Path, Path], store_before: list[str], where: str
) -> None:
    zeta, alpha = two
    entries = [package(zeta, "zeta", "2.0"), package(alpha, "alpha")]
    if where == "lock":
        entries[1]["wheels"][0]["hashes"]["sha256"] = "0" * 64
    lock = write_lock(tmp_path / "pylock.toml", entries)
    if where == "wheel":  # the wheel changed after it was locked
        data = bytearray(alpha.read_bytes())
        data[-1] ^= 0xFF
        alpha.write_bytes(bytes(data))
    message = _refused(lock, tmp_path)
    assert message.startswith(f"{lock}: 1 wheel cannot be used")
    assert f"packages[1].wheels[0]: {alpha.name}: {alpha}" in message
    assert "does not match its pinned hash: sha256 is" in message
    assert listing(tmp_path / "store") == store_before  # zeta, fine, is not unpacked either


def test_an_unsupported_lock_version_is_refused(
    tmp_path: Path, two: tuple[Path, Path], store_before: list[str]
) -> None:
    lock = write_lock(
        tmp_path / "pylock.toml", [package(two[0], "zeta", "2.0")], lock_version="2.0"
    )
    message = _refused(lock, tmp_path)
    assert message == (
        f"{lock}: lock file cannot be used (1 problem)\n  lock-version: unsupported "
        "lock-version '2.0' (pylock version 2.0 is not supported; vsite reads 1.x)"
    )
    assert listing(tmp_path / "store") == store_before


def test_packages_with_no_wheel_for_this_platform_are_all_named(
    tmp_path: Path, two: tuple[Path, Path], store_before: list[str]
) -> None:
    win = make_wheel(tmp_path / "wheels", "win", {"win.py": ""}, tag="cp311-cp311-win_amd64")
    mac = make_wheel(tmp_path / "wheels", "mac", {"mac.py": ""}, tag="py2-none-macosx_10_9_x86_64")
    packages = [package(win, "win"), package(two[0], "zeta", "2.0"), package(mac, "mac")]
    message = _refused(write_lock(tmp_path / "pylock.toml", packages), tmp_path)
    assert "lock file cannot be used (2 problems)" in message
    assert "packages[0]: win 1.0: no wheel for this interpreter (best tag " in message
    assert f"the lock has {win.name}" in message
    assert "packages[2]: mac 1.0: no wheel for this interpreter" in message
    assert listing(tmp_path / "store") == store_before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('lock-version = "1.0\ncreated-by = "x"\n', "lock file is not valid TOML: "),
        (b"lock-version = '1.0' # \xff\n", "lock file is not UTF-8 (byte 23)"),
    ],
    ids=["bad-toml", "not-utf8"],
)
def test_a_malformed_lock_is_refused_in_one_line(
    tmp_path: Path,
    store_before: list[str],
    capsys: pytest.CaptureFixture[str],
    text: str | bytes,
    expected: str,
) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "m.json"
    args = ["install", os.fspath(lock), "--store", f"{tmp_path}/store", "-o", os.fspath(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vsite: error: {lock}: {expected}")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not out.exists()
    assert listing(tmp_path / "store") == store_before


def test_every_problem_of_a_lock_is_named_with_its_key_path(
    tmp_path: Path, two: tuple[Path, Path]
) -> None:
    zeta, alpha = two
    good = package(zeta, "zeta", "2.0")
    misnamed = package(alpha, "Alpha_Pkg")  # not normalized
    unhashed = package(alpha, "alpha")
    unhashed["wheels"][0]["hashes"] = {}
    wrong_version = package(alpha, "alpha", "3.0")
    sdist_only = {
        "name": "src-only",
        "version": "1.0",
        "sdist": {
            "name": "src_only-1.0.tar.gz",
            "path": "x.tar.gz",
            "hashes": {"sha256": "0" * 64},
        },
    }
    lock = write_lock(
        tmp_path / "pylock.toml", [good, misnamed, unhashed, wrong_version, sdist_only],
        created_by=None, environments=["python_version >= '3'", 7],
    )  # fmt: skip
    message = _refused(lock, tmp_path)
    lines = message.splitlines()[1:]
    assert lines == [
        "  created-by: missing required key 'created-by'",
        "  environments[1]: Unexpected type int (expected str)",
        "  packages[1].name: Alpha_Pkg: Name 'Alpha_Pkg' is not normalized",
        "  packages[2].wheels[0].hashes: alpha: At least one hash must be provided",
        f"  packages[3].wheels[0]: alpha: Version in '{alpha.name}' is not consistent with "
        "package version '3.0'",
    ]
    # Once the file is valid, selecting reports every package it cannot install.
    lock = write_lock(tmp_path / "pylock.toml", [good, sdist_only, {**good}])
    assert _refused(lock, tmp_path).splitlines()[1:] == [
        "  packages[1]: src-only 1.0: the lock gives only its sdist; vsite installs wheels",
        "  packages[2]: zeta 2.0: selected twice: also at packages[0]",
    ]


def test_a_lock_for_another_python_is_refused(tmp_path: Path, two: tuple[Path, Path]) -> None:
    lock = write_lock(
        tmp_path / "pylock.toml", [package(two[0], "zeta", "2.0", requires_python="<3")]
    )
    assert "packages[0]: zeta 2.0: requires Python <3; this is Python 3." in _refused(
        lock, tmp_path
    )
    lock = write_lock(
        tmp_path / "pylock.toml", [package(two[0], "zeta", "2.0")], requires_python=">=4"
    )
    assert "requires-python: requires Python >=4; this is Python 3." in _refused(lock, tmp_path)


def test_offline_names_every_missing_wheel_at_once(tmp_path: Path, two: tuple[Path, Path]) -> None:
    zeta, alpha = two
    packages = [
        package(zeta, "zeta", "2.0", url=f"https://example.invalid/{zeta.name}"),
        package(alpha, "alpha", url=f"https://example.invalid/{alpha.name}"),
    ]
    message = _refused(write_lock(tmp_path / "pylock.toml", packages), tmp_path, "--offline")
    assert (
        "2 wheels are not at hand (--offline: only the store, --find-links and local files)"
        in message
    )
    assert (
        f"packages[0].wheels[0]: {zeta.name}: not found in the store, "
        f"https://example.invalid/{zeta.name} (not fetched: --offline)" in message
    )
    assert f"packages[1].wheels[0]: {alpha.name}: not found" in message
    assert not (tmp_path / "store").exists()


def test_a_lock_file_is_installed_alone(tmp_path: Path, two: tuple[Path, Path]) -> None:
    lock = write_lock(tmp_path / "pylock.toml", [package(two[0], "zeta", "2.0")])
    with pytest.raises(UsageError, match="a lock file is installed alone"):
        install_command([os.fspath(lock), os.fspath(two[1])], [], f"{tmp_path}/m.json")
    with pytest.raises(UsageError, match="--extra and --group select from a lock file"):
        install_command([os.fspath(two[1])], [], f"{tmp_path}/m.json", groups=["dev"])


# -- hashed requirements --------------------------------------------------------------------


def test_a_requirement_without_a_hash_in_a_hashed_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "more.txt").write_text("included==1.0\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# hashed\n"
        f"alpha==1.0 \\\n    --hash=sha256:{'a' * 64}\n"
        "zeta==2.0\n"
        f"loose>=1 --hash=sha256:{'b' * 64}\n"
        "old==1.0 ; python_version < '3'\n"  # not installed here: not asked for a hash
        "-r more.txt\n"
    )
    with pytest.raises(WheelError) as caught:
        install_command(
            ["cli-req"], [os.fspath(requirements)], f"{tmp_path}/m.json", store_path=f"{tmp_path}/s"
        )
    assert str(caught.value).splitlines() == [
        "hashes are required for every requirement once one has a hash (as pip requires "
        "them); 4 lack one",
        f"  {requirements}:4: zeta==2.0: no --hash",
        f"  {requirements}:5: loose>=1: not pinned with ==",
        f"  {tmp_path / 'more.txt'}:1: included==1.0: no --hash",
        "  <command line>: cli-req: given on the command line: no --hash",
    ]
    assert not (tmp_path / "s").exists()


def _hashed(tmp_path: Path, wheels: list[Path], *, wrong: str = "") -> Path:
    requirements = tmp_path / "requirements.txt"
    lines = []
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        digest = "0" * 64 if name == wrong else sha256(wheel)
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    requirements.write_text("\n".join(lines) + "\n")
    return requirements


def _no_pip(*args: object, **kwargs: object) -> list[str]:
    raise AssertionError("pip ran")


def test_hashed_requirements_install_offline_from_a_directory_and_the_store(
    tmp_path: Path, two: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vsite.tools.install as install_module

    monkeypatch.setattr(install_module, "download", _no_pip)
    requirements = _hashed(tmp_path, list(two))
    args = ["-r", os.fspath(requirements), "--offline", "--no-env"]
    args += ["--store", f"{tmp_path}/store"]
    out = tmp_path / "m.json"
    assert main(["install", *args, "-f", os.fspath(two[0].parent), "-o", os.fspath(out)]) == 0
    first = json.loads(out.read_text())["roots"]
    assert [root["name"] for root in first] == ["alpha", "zeta"]  # sorted as pip's downloads
    for wheel in two:
        wheel.unlink()
    assert main(["install", *args, "-o", os.fspath(out)]) == 0  # from the store, by hash
    assert json.loads(out.read_text())["roots"] == first


def test_a_hash_mismatch_in_requirements_is_refused_before_unpacking(
    tmp_path: Path, two: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vsite.tools.install as install_module

    requirements = _hashed(tmp_path, list(two), wrong="zeta")
    store = f"{tmp_path}/store"
    with pytest.raises(
        WheelError,
        match=r"1 wheel cannot be used\n.*requirements.txt:1: zeta==2.0: .* does not match its "
        "pinned hash",
    ):
        install_command(
            [],
            [os.fspath(requirements)],
            f"{tmp_path}/m.json",
            store_path=store,
            offline=True,
            find_links=[os.fspath(two[0].parent)],
        )
    # Online, pip checks the hashes; vsite checks what pip hands over again.
    monkeypatch.setattr(install_module, "download", lambda *a, **k: [os.fspath(w) for w in two])
    with pytest.raises(
        WheelError,
        match=r"1 downloaded wheel failed the hash check\n.*requirements.txt:1: "
        r"zeta-2.0-py3-none-any.whl does not match its --hash: sha256 is",
    ):
        install_command([], [os.fspath(requirements)], f"{tmp_path}/m.json", store_path=store)
    assert not os.path.exists(store)


def test_hashed_requirements_are_downloaded_by_pip_and_checked(
    tmp_path: Path, two: tuple[Path, Path]
) -> None:
    pytest.importorskip("pip")
    requirements = _hashed(tmp_path, list(two))
    out = tmp_path / "m.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    command = [sys.executable, "-m", "vsite", "install", "-r", os.fspath(requirements), "--no-env"]
    command += ["-f", os.fspath(two[0].parent), "--store", f"{tmp_path}/s", "-o", f"{out}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
    assert [root["name"] for root in json.loads(out.read_text())["roots"]] == ["alpha", "zeta"]


# -- a local index -------------------------------------------------------------------------


@pytest.fixture
def served(two: tuple[Path, Path]) -> Iterator[str]:
    """``http://127.0.0.1:PORT``: the wheels' directory over HTTP, for the test."""
    directory = os.fspath(two[0].parent)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
