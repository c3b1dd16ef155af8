"""Factories that build install roots, manifests and extension modules on ``tmp_path``.

A tree is a nested dict: ``{"pkg": {"__init__.py": "X = 1", "data.bin": b"\\0"}}``;
a ``str`` value is a text file (UTF-8), ``bytes`` a binary file, a ``dict`` a directory.
Roots are laid out as ``pip install --target`` lays out one wheel: the files, plus a
``{dist}-{version}.dist-info`` with METADATA, WHEEL, INSTALLER and a RECORD that lists
every file of the root with its hash and size.

Use: ``from tests.builders import make_root, write_manifest``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any, Union

import pytest

__all__ = [
    "Tree",
    "compile_extension",
    "dist_info_name",
    "make_root",
    "write_manifest",
    "write_record",
    "write_tree",
]

Tree = Mapping[str, Union[str, bytes, "Tree"]]


def write_tree(base: str | os.PathLike[str], tree: Tree) -> Path:
    """Write ``tree`` under ``base`` (created if missing, merged if present); return base."""
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    for name, content in tree.items():
        target = root / name
        if isinstance(content, Mapping):
            write_tree(target, content)
        elif isinstance(content, bytes):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        elif isinstance(content, str):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        else:
            raise TypeError(f"{target}: expected str, bytes or dict, got {type(content).__name__}")
    return root


def dist_info_name(dist: str, version: str) -> str:
    """The ``.dist-info`` directory name a wheel installer writes for ``dist``."""
    # The wheel spec escapes runs of "-", "_" and "." in the name to one "_".
    return f"{re.sub(r'[-_.]+', '_', dist)}-{version}.dist-info"


def make_root(
    base: str | os.PathLike[str],
    name: str,
    tree: Tree | None = None,
    *,
    dist: str | None = None,
    version: str = "1.0",
    entry_points: dict[str, dict[str, str]] | None = None,
    top_level: list[str] | None = None,
    pth: dict[str, str] | None = None,
    record: bool = True,
    metadata_name: str | None = None,
) -> Path:
    """Make the root ``base/name`` holding ``tree`` and one distribution's metadata.

    ``dist`` (default ``name``) names the ``{dist}-{version}.dist-info`` directory and,
    unless ``metadata_name`` overrides it, METADATA's ``Name:``. ``entry_points`` maps a
    group to ``{name: "module:attr"}``; ``top_level`` writes top_level.txt; ``pth`` maps
    ``.pth`` file names to their content. For a root without any metadata use
    :func:`write_tree` directly.
    """
    root = write_tree(Path(base) / name, tree or {})
    for filename, content in (pth or {}).items():
        (root / filename).write_text(content, encoding="utf-8")
    dist = name if dist is None else dist
    info = root / dist_info_name(dist, version)
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {metadata_name or dist}\nVersion: {version}\n"
        f"Summary: test distribution {dist}\n",
        encoding="utf-8",
    )
    (info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nGenerator: vsite-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        encoding="utf-8",
    )
    (info / "INSTALLER").write_text("vsite-tests\n", encoding="utf-8")
    if entry_points:
        text = "".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in items.items()) + "\n"
            for group, items in entry_points.items()
        )
        (info / "entry_points.txt").write_text(text, encoding="utf-8")
    if top_level is not None:
        (info / "top_level.txt").write_text("".join(f"{n}\n" for n in top_level), "utf-8")
    if record:
        _write_record(root, info)
    return root


def write_record(root: str | os.PathLike[str]) -> None:
    """Rewrite the RECORD of every distribution in ``root`` to list its files as they are.

    Call it after adding files to a root made by :func:`make_root` (vsite reads RECORD to
    find native code); or build such files first: ``make_root`` merges into an existing
    directory.
    """
    for info in Path(root).glob("*.dist-info"):
        _write_record(Path(root), info)


def _write_record(root: Path, info: Path) -> None:
    record = info / "RECORD"
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p != record):
        data = path.read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        relative = path.relative_to(root).as_posix()
        lines.append(f"{_csv(relative)},sha256={digest.decode()},{len(data)}\n")
    lines.append(f"{_csv(record.relative_to(root).as_posix())},,\n")
    record.write_text("".join(lines), encoding="utf-8")


def _csv(field: str) -> str:
    return f'"{field}"' if any(c in field for c in ',"\n') else field


def write_manifest(
    path: str | os.PathLike[str],
    roots: Sequence[str | os.PathLike[str] | Mapping[str, Any]],
    **extra: Any,
) -> Path:
    """Write a schema-v1 manifest listing ``roots`` (paths, or root objects as given).

    ``extra`` keys are added at the top level (to write invalid manifests on purpose).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    entries = [dict(entry) if isinstance(entry, Mapping) else os.fspath(entry) for entry in roots]
    data = {"vsite": 1, "roots": entries, **extra}
    target.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return target


_EXTENSION_SOURCE = """\
#include <Python.h>

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "%(name)s", "vsite test extension", -1, NULL,
};

PyMODINIT_FUNC PyInit_%(name)s(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "KIND", "%(kind)s") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
"""


def compile_extension(
    dest_dir: str | os.PathLike[str], modname: str, *, kind: str = "extension"
) -> Path:
    """Compile a C extension module ``modname`` into ``dest_dir``; return the file.

    The module has one attribute, ``KIND == kind``. Built with the system C compiler
    against this interpreter's headers; the test is skipped when either is missing, and
    fails with the compiler's message when the build does.
    """
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build a test extension module")
    include = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(include, "Python.h")):
        pytest.skip(f"no Python.h under {include} to build a test extension module")
    tail = modname.rpartition(".")[2]
    target = Path(dest_dir) / (tail + EXTENSION_SUFFIXES[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / f"{tail}.c"
        source.write_text(_EXTENSION_SOURCE % {"name": tail, "kind": kind}, encoding="utf-8")
        command = [compiler, "-shared", "-fPIC", "-O0", f"-I{include}", str(source)]
        command += ["-o", str(target)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # The compiler and headers are there: a failed build is a broken test, not a skip.
        pytest.fail(
            f"cannot build test extension module {modname!r} ({' '.join(command)}):\n"
            f"{result.stderr.strip()}",
            pytrace=False,
        )
    return target
