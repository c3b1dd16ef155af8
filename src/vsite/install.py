"""``vsite install``: wheels into the shared store (each unpacked once), then a manifest.

Wheels come from files named on the command line (installed as given, their
dependencies not resolved) and from requirements, which ``pip download
--only-binary=:all:`` resolves with this interpreter. Every wheel is checked (file
name, tags against this interpreter, duplicate distributions) before any is unpacked;
RECORD names and hashes are checked while unpacking. A root already in the store is
reused, not unpacked again. Roots are byte-compiled for this interpreter unless asked
not to, a reused root too when it holds no bytecode of this interpreter yet.

Tooling path: imports ``packaging`` and ``installer``; activation never imports this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from vsite.compose import RootEntry, manifest_text, write_manifest
from vsite.store import Store, StoreEntry, WheelError, default_store, wheel_sha256
from vsite.store_bytecode import BYTECODE_TAG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

__all__ = ["InstallResult", "Wheel", "check_wheels", "download", "install"]


class Wheel:
    """A wheel file to install, with what its file name says."""

    __slots__ = ("canonical", "name", "path", "version")

    def __init__(self, path: str, name: str, canonical: str, version: str) -> None:
        self.path = path
        self.name = name
        self.canonical = canonical
        self.version = version

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)

    def __repr__(self) -> str:
        return f"Wheel({self.path!r})"


class InstallResult:
    """What an install did: the store entries in manifest order, and how each came.

    ``bytecode_added`` counts the reused entries that this install gave this
    interpreter's bytecode; ``store`` and ``manifest`` are set by :func:`install_command`,
    whose ``seconds`` include resolving requirements.
    """

    __slots__ = ("bytecode_added", "entries", "manifest", "reused", "seconds", "store", "unpacked")

    def __init__(self) -> None:
        self.entries: list[StoreEntry] = []
        self.unpacked = 0
        self.reused = 0
        self.bytecode_added = 0
        self.seconds = 0.0
        self.store = ""
        self.manifest = ""


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
        wheel = Wheel(path, _display_name(path, name), str(name), str(version))
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


def _display_name(path: str, canonical: str) -> str:
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
) -> list[str]:
    """Resolve requirements to wheels in ``dest`` with ``pip download``; their paths.

    pip runs with this interpreter, so it picks wheels for it and honours the user's
    pip configuration (indexes, find-links, constraints).
    """
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-q"]
    command += ["--disable-pip-version-check", "-d", dest]
    if no_deps:
        command.append("--no-deps")
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


def install(
    wheels: Sequence[Wheel],
    store: Store,
    *,
    compile_bytecode: bool = True,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> InstallResult:
    """Put every wheel into ``store``, unpacking (``jobs`` at a time) those not there.

    With ``compile_bytecode``, every root holds this interpreter's bytecode: compiled on
    unpacking, or added to a reused entry that lacks it (where the store can be written).
    Entries come back in the order of ``wheels``. On the first failure the wheels not
    yet started are not unpacked, and the error propagates once the others finish.
    """
    from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

    result = InstallResult()
    started = time.monotonic()
    jobs = jobs or min(8, os.cpu_count() or 1)
    entries: list[StoreEntry | None] = [None] * len(wheels)
    count = 0

    def finished(number: int, entry: StoreEntry, action: str) -> None:
        nonlocal count
        entries[number] = entry
        count += 1
        if progress is not None:
            progress.done(count, f"{action} {wheels[number].filename}")

    def unpack(number: int, sha256: str) -> tuple[StoreEntry, bool]:
        path = wheels[number].path
        return store.add(path, sha256, compile_bytecode=compile_bytecode), False

    def reuse(entry: StoreEntry) -> tuple[StoreEntry, bool]:
        return entry, store.add_bytecode(entry)

    # Zip inflation, hashing and file writes release the GIL: threads overlap them.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        hashes = list(pool.map(lambda wheel: store.wheel_sha256(wheel.path), wheels))
        pending: dict[Future[tuple[StoreEntry, bool]], int] = {}
        reusing: set[int] = set()
        for number, sha256 in enumerate(hashes):
            entry = store.get(sha256)
            if entry is None:
                pending[pool.submit(unpack, number, sha256)] = number
            elif compile_bytecode and entry.lacks_bytecode():
                pending[pool.submit(reuse, entry)] = number
                reusing.add(number)
            else:
                result.reused += 1
                finished(number, entry, "reused")
        unpacking = len(pending) - len(reusing)
        if progress is not None and unpacking:
            progress.update(count, f"unpacking {unpacking} wheels")
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                number = pending.pop(future)
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    wait(pending)
                    if progress is not None:
                        progress.close()
                    raise error
                entry, added = future.result()
                if number not in reusing:
                    result.unpacked += 1
                    finished(number, entry, "unpacked")
                    continue
                result.reused += 1
                if added:
                    result.bytecode_added += 1
                    finished(number, entry, f"reused (+{BYTECODE_TAG} bytecode)")
                else:
                    finished(number, entry, "reused")
    result.entries = [entry for entry in entries if entry is not None]
    result.seconds = time.monotonic() - started
    if progress is not None:
        progress.close()
    return result


def manifest_roots(entries: Sequence[StoreEntry]) -> list[RootEntry]:
    return [RootEntry(entry.root, entry.name, entry.version) for entry in entries]


def install_command(
    items: Sequence[str],
    requirement_files: Sequence[str],
    output: str,
    *,
    store_path: str | None = None,
    compile_bytecode: bool = True,
    no_deps: bool = False,
    stream: TextIO | None = None,
) -> InstallResult:
    """The ``vsite install`` command: ``items`` are wheel files or requirement strings.

    Progress goes to ``stream`` (stdout); the result, for the CLI to report.
    """
    out = sys.stdout if stream is None else stream
    started = time.monotonic()
    files = [item for item in items if item.endswith(".whl") and os.path.isfile(item)]
    requirements = [item for item in items if item not in files]
    store = Store(store_path or default_store())
    with tempfile.TemporaryDirectory(prefix="vsite-download-") as downloads:
        paths = list(files)
        if requirements or requirement_files:
            out.write("vsite: resolving requirements with pip download\n")
            out.flush()
            paths += download(requirements, requirement_files, downloads, no_deps=no_deps)
        wheels = check_wheels(paths)
        if not wheels:
            raise WheelError("nothing to install: give wheel files or requirements")
        progress = Progress(len(wheels), out)
        result = install(wheels, store, compile_bytecode=compile_bytecode, progress=progress)
    output = os.path.abspath(output)
    base = os.path.dirname(output)
    absolute = os.path.commonpath([store.path, base]) != base
    write_manifest(manifest_text(manifest_roots(result.entries), output, absolute=absolute), output)
    result.seconds = time.monotonic() - started
    result.store, result.manifest = store.path, output
    return result


class Progress:
    """A progress bar on a terminal; one plain line per wheel otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._width = 0

    def update(self, count: int, message: str) -> None:
        """Work under way (drawn on a terminal only)."""
        if self.tty:
            self._draw(count, message)

    def done(self, count: int, message: str) -> None:
        """One wheel finished."""
        if self.tty:
            self._draw(count, message)
        else:
            self.stream.write(f"[{count}/{self.total}] {message}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, count: int, message: str) -> None:
        import shutil

        columns = shutil.get_terminal_size((80, 24)).columns
        cells = 24
        filled = cells * count // max(self.total, 1)
        text = f"[{'#' * filled}{'-' * (cells - filled)}] {count}/{self.total} {message}"
        text = text[: max(columns - 1, 10)]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
