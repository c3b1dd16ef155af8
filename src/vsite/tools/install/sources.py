"""Wheels in: wheel files checked before anything is unpacked, requirements resolved
to wheels with ``pip download`` (lock files and hashed requirements: :mod:`.lock`,
:mod:`.requirements`, :mod:`.fetch`).

Tooling path: imports ``packaging``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from vsite.errors import WheelError
from vsite.tools.install.hashes import wheel_sha256

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Wheel", "check_wheels", "display_name", "download"]


class Wheel:
    """A wheel to install, with what its file name says.

    ``sha256``, when given, is the file's digest, already checked (it keys the store).
    A wheel whose store entry is reused by that digest may have no file: ``path`` is
    empty and ``file`` names the wheel the entry was unpacked from.
    """

    __slots__ = ("_file", "canonical", "name", "path", "sha256", "version")

    def __init__(
        self,
        path: str,
        name: str,
        canonical: str,
        version: str,
        *,
        sha256: str | None = None,
        file: str | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self.canonical = canonical
        self.version = version
        self.sha256 = sha256
        self._file = file

    @property
    def filename(self) -> str:
        return self._file or os.path.basename(self.path)

    def __repr__(self) -> str:
        return f"Wheel({self.path or self.filename!r})"


def check_wheels(paths: Sequence[str]) -> list[Wheel]:
    """Parse and check ``paths`` before anything is unpacked.

    WheelError names every wheel that is missing, misnamed or built for another
    interpreter; a wheel listed twice (same distribution, same file contents) is kept
    once; two different wheels of one distribution are refused.
    """
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    supported = set(sys_tags())
    problems: list[str] = []
    wheels: list[Wheel] = []
    seen: dict[str, Wheel] = {}
    for path in paths:
        path = os.path.abspath(path)
        label = os.path.basename(path)
        if not os.path.isfile(path):
            problems.append(f"{path}: no such wheel file")
            continue
        try:
            name, version, _build, tags = parse_wheel_filename(label)
        except InvalidWheelFilename as exc:
            problems.append(f"{label}: not a wheel file name ({exc})")
            continue
        if not tags & supported:
            problems.append(f"{label}: built for {_tag_text(tags)}, not for {_interpreter()}")
            continue
        wheel = Wheel(path, display_name(path, name), str(name), str(version))
        earlier = seen.get(wheel.canonical)
        if earlier is not None:
            if wheel_sha256(earlier.path) != wheel_sha256(path):
                problems.append(
                    f"{label}: distribution {wheel.canonical!r} is also given as "
                    f"{earlier.filename}; one environment holds one version"
                )
            continue
        seen[wheel.canonical] = wheel
        wheels.append(wheel)
    if problems:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} wheels cannot be used"
        text = head if len(problems) == 1 else head + "".join(f"\n  {p}" for p in problems)
        raise WheelError(text)
    return wheels


def display_name(path: str, canonical: str) -> str:
    """The distribution name as the wheel file spells it (``Pillow``, not ``pillow``)."""
    return os.path.basename(path).split("-", 1)[0].replace("_", "-") or canonical


def _tag_text(tags: frozenset[object]) -> str:
    text = sorted(str(tag) for tag in tags)
    return ", ".join(text[:3]) + (f" (+{len(text) - 3})" if len(text) > 3 else "")


def _interpreter() -> str:
    from packaging.tags import interpreter_name, interpreter_version

    return f"this interpreter ({interpreter_name()}{interpreter_version()}, {sys.platform})"


def download(
    requirements: Sequence[str],
    requirement_files: Sequence[str],
    dest: str,
    *,
    no_deps: bool = False,
    find_links: Sequence[str] = (),
    offline: bool = False,
    require_hashes: bool = False,
) -> list[str]:
    """Resolve requirements to wheels in ``dest`` with ``pip download``; their paths.

    pip runs with this interpreter, so it picks wheels for it and honours the user's
    pip configuration (indexes, find-links, constraints). ``offline`` gives pip no
    index (``--no-index``): only ``find_links`` and the configured find-links.
    """
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-q"]
    command += ["--disable-pip-version-check", "-d", dest]
    if no_deps:
        command.append("--no-deps")
    if offline:
        command.append("--no-index")
    if require_hashes:
        command.append("--require-hashes")
    for directory in find_links:
        command += ["--find-links", os.path.abspath(directory)]
    for path in requirement_files:
        command += ["-r", path]
    command += list(requirements)
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        raise WheelError(f"cannot run pip to resolve requirements: {exc.strerror}") from None
    if result.returncode != 0:
        what = " ".join([*requirements, *(f"-r {f}" for f in requirement_files)])
        raise WheelError(f"pip download failed (exit {result.returncode}) for: {what}")
    return sorted(
        (os.path.join(dest, name) for name in os.listdir(dest) if name.endswith(".whl")),
        key=lambda path: os.path.basename(path).lower(),
    )
