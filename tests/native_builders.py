"""Shared libraries and tiny extension modules with chosen RUNPATH/RPATH, built by ``cc``.

Every library gets a SONAME equal to its file name, so a dependent records the soname
(not a path) in DT_NEEDED and the dynamic loader must search for it: through RUNPATH /
RPATH, exactly as in the wheels vsite has to serve (torch -> nvidia, auditwheel
``.libs``). The builders return bytes, to be placed into roots with ``make_root`` (whose
RECORD must list them). :func:`dynamic_tags` reads the dynamic section back, so a test
can show that the link options had the intended effect.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

__all__ = [
    "EXT",
    "DynamicTags",
    "NativeBuild",
    "dynamic_tags",
    "needs_elf_platform",
]

#: The suffix this interpreter gives extension modules (``.cpython-311-x86_64-linux-gnu.so``).
EXT = EXTENSION_SUFFIXES[0]

_LIB_SOURCE = """\
%(externs)s
int %(func)s(void) { return %(value)d%(calls)s; }
"""

_EXTENSION_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
%(externs)s

static PyObject *value(PyObject *self, PyObject *args) {
    return PyLong_FromLong(0%(calls)s);
}

static PyMethodDef methods[] = {
    {"value", value, METH_NOARGS, "sum of the linked libraries' values"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "%(name)s", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit_%(name)s(void) { return PyModule_Create(&module); }
"""


def needs_elf_platform() -> None:
    """Skip unless the platform's loader reads ELF RUNPATH/RPATH with ``$ORIGIN``."""
    if not sys.platform.startswith("linux"):
        pytest.skip(f"ELF $ORIGIN rpaths are a Linux matter, not {sys.platform}")


def _func(soname: str) -> str:
    """The C function a library exports: ``libcu_a.so.1`` -> ``cu_a_value``."""
    stem = soname.split(".so")[0]
    stem = stem[3:] if stem.startswith("lib") else stem
    return "".join(c if c.isalnum() else "_" for c in stem) + "_value"


class NativeBuild:
    """A scratch directory where libraries are compiled and linked against each other.

    ``lib(soname, value, needs=[...], rpath=...)`` builds ``soname`` whose function
    returns ``value`` plus the values of the libraries it needs (so a call proves which
    libraries were loaded); ``extension(name, needs=[...], rpath=...)`` builds a module
    whose ``value()`` sums its libraries'. ``dtags="rpath"`` writes DT_RPATH
    (``--disable-new-dtags``) instead of the default DT_RUNPATH.
    """

    def __init__(self, work: str | os.PathLike[str]) -> None:
        needs_elf_platform()
        compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if compiler is None:
            pytest.skip("no C compiler (cc) to build test shared libraries")
        self.compiler = compiler
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.values: dict[str, int] = {}

    def lib(
        self,
        soname: str,
        value: int,
        *,
        needs: tuple[str, ...] | list[str] = (),
        rpath: str | None = None,
        dtags: str = "runpath",
    ) -> bytes:
        """Build shared library ``soname``; return its bytes."""
        externs, calls = self._linkage(needs)
        code = _LIB_SOURCE % {
            "externs": externs,
            "func": _func(soname),
            "value": value,
            "calls": calls,
        }
        target = self.work / soname
        self._link(target, code, soname=soname, needs=needs, rpath=rpath, dtags=dtags)
        self.values[soname] = value + sum(self.values[n] for n in needs)
        return target.read_bytes()

    def extension(
        self,
        name: str,
        *,
        needs: tuple[str, ...] | list[str] = (),
        rpath: str | None = None,
        dtags: str = "runpath",
    ) -> bytes:
        """Build extension module ``name`` (file name ``name + EXT``); return its bytes."""
        include = sysconfig.get_paths()["include"]
        if not os.path.isfile(os.path.join(include, "Python.h")):
            pytest.skip(f"no Python.h under {include} to build a test extension module")
        externs, calls = self._linkage(needs)
        code = _EXTENSION_SOURCE % {"externs": externs, "calls": calls, "name": name}
        target = self.work / "ext" / (name + EXT)
        target.parent.mkdir(exist_ok=True)
        self._link(target, code, needs=needs, rpath=rpath, dtags=dtags, include=include)
        return target.read_bytes()

    def value(self, *needs: str) -> int:
        """What ``value()`` of something linked to ``needs`` returns."""
        return sum(self.values[n] for n in needs)

    def _linkage(self, needs: tuple[str, ...] | list[str]) -> tuple[str, str]:
        externs = "".join(f"extern int {_func(n)}(void);\n" for n in needs)
        calls = "".join(f" + {_func(n)}()" for n in needs)
        return externs, calls

    def _link(
        self,
        target: Path,
        code: str,
        *,
        soname: str | None = None,
        needs: tuple[str, ...] | list[str],
        rpath: str | None,
        dtags: str,
        include: str | None = None,
    ) -> None:
        if dtags not in ("runpath", "rpath"):
            raise ValueError(f"dtags must be 'runpath' or 'rpath', not {dtags!r}")
        source = target.with_name(target.name + ".c")
        source.write_text(code, encoding="utf-8")
        command = [self.compiler, "-shared", "-fPIC", "-O0", "-o", str(target), str(source)]
        if include:
            command.append(f"-I{include}")
        if soname:
            command.append(f"-Wl,-soname,{soname}")
        # Linking a library by path records its SONAME in DT_NEEDED, never the path.
        command += [str(self.work / n) for n in needs]
        command.append(f"-Wl,-rpath-link,{self.work}")
        if rpath is not None:
            command.append(f"-Wl,-rpath,{rpath}")
            command.append(
                "-Wl,--disable-new-dtags" if dtags == "rpath" else "-Wl,--enable-new-dtags"
            )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        source.unlink()
        if result.returncode != 0:
            # The compiler is there (headers checked by extension()): a failed build or
            # link is a broken test, not a skip.
            pytest.fail(
                f"cannot build {target.name} ({' '.join(command)}):\n{result.stderr.strip()}",
                pytrace=False,
            )


class DynamicTags:
    """The dynamic-section strings of an ELF file that matter to library lookup."""

    __slots__ = ("needed", "rpath", "runpath", "soname")

    def __init__(self) -> None:
        self.needed: list[str] = []
        self.soname: str | None = None
        self.rpath: str | None = None
        self.runpath: str | None = None

    def __repr__(self) -> str:
        return (
            f"DynamicTags(needed={self.needed}, soname={self.soname!r}, "
            f"rpath={self.rpath!r}, runpath={self.runpath!r})"
        )


_DT_NEEDED, _DT_STRTAB, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 5, 14, 15, 29


def dynamic_tags(data: bytes | str | os.PathLike[str]) -> DynamicTags:
    """DT_NEEDED / DT_SONAME / DT_RPATH / DT_RUNPATH of a 64-bit little-endian ELF."""
    if not isinstance(data, bytes):
        data = Path(data).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:  # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:  # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
    tags = DynamicTags()
    if dynamic is None:
        return tags
    entries: list[tuple[int, int]] = []
    strtab = 0
    for offset in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, offset)
        if tag == 0:
            break
        if tag == _DT_STRTAB:
            strtab = next(off + val - va for va, off, size in loads if va <= val < va + size)
        entries.append((tag, val))

    def string(at: int) -> str:
        start = strtab + at
        return data[start : data.index(b"\0", start)].decode("utf-8", "surrogateescape")

    for tag, val in entries:
        if tag == _DT_NEEDED:
            tags.needed.append(string(val))
        elif tag == _DT_SONAME:
            tags.soname = string(val)
        elif tag == _DT_RPATH:
            tags.rpath = string(val)
        elif tag == _DT_RUNPATH:
            tags.runpath = string(val)
    return tags
