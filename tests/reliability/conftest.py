"""Fixtures of the reliability suite: a compiled extension module, built once."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import Tree, compile_extension, make_root, write_manifest
from tests.native_builders import EXT


@pytest.fixture(scope="session")
def extension_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny C extension module ``rel_ext`` (``KIND == "native"``); skip without cc."""
    built = compile_extension(tmp_path_factory.mktemp("rel-ext"), "rel_ext", kind="native")
    return built.read_bytes()


def native_manifest(base: Path, extension: bytes, *, packages: int = 1) -> Path:
    """A manifest whose first root holds native code (``relnat*`` packages, staged in the
    farm), next to a pure root (``relpure``)."""
    tree: Tree = {
        f"relnat{n}": {"__init__.py": "from .rel_ext import KIND\n", "rel_ext" + EXT: extension}
        for n in range(packages)
    }
    native = make_root(base, "relnative", tree)
    pure = make_root(base, "relpure", {"relpure": {"__init__.py": "WHO = 'pure'\n"}})
    return write_manifest(base / "manifest.json", [native, pure])


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A scratch directory another user can reach (pytest's tmp_path is private to root),
    for tests that drop to another user; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="vsite-reliability-"))
    path.chmod(0o755)
    yield path
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    shutil.rmtree(path, ignore_errors=True)
