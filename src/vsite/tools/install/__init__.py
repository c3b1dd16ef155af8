"""``vsite install``: wheels into the shared store (each unpacked once), then a manifest.

Wheels come from files named on the command line (installed as given, their
dependencies not resolved), from requirements, which ``pip download
--only-binary=:all:`` resolves with this interpreter, or from a lock file
(``pylock.toml``, PEP 751), which is installed as it is: no resolver runs. Every wheel
is checked (file name, tags against this interpreter, duplicate distributions, and the
hashes a lock or a hashed requirements file pins) before any is unpacked; RECORD names
and hashes are checked while unpacking. A root already in the store is reused, not
unpacked again (a wheel pinned by its sha256 needs no file then: ``--offline``).
Roots are byte-compiled for this interpreter unless asked not to, a reused root too
when it holds no bytecode of this interpreter yet.

The package, beside the command's logic here: ``store`` (the content-addressed store),
``unpack`` (one wheel, RECORD checked), ``hashes`` (wheel digests, pinned hashes),
``bytecode`` (compiling store entries), ``sources`` (wheel files and requirements in),
``lock`` (lock files), ``requirements`` (hash-checking mode), ``fetch`` (wheels pinned
by hash: from the store, directories or their URLs).

May import: the standard library, ``packaging``, ``installer``, the runtime
(``vsite.*``) and the rest of ``vsite.tools``. Prints nothing: progress goes to a
:class:`Listener`, and :mod:`vsite.tools.cli` reports.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Protocol

from vsite.errors import UsageError, WheelError
from vsite.tools.compose import RootEntry, manifest_text, write_manifest
from vsite.tools.install.bytecode import BYTECODE_TAG
from vsite.tools.install.sources import Wheel, check_wheels, download
from vsite.tools.install.store import Store, StoreEntry, default_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "InstallResult",
    "Listener",
    "Wheel",
    "check_wheels",
    "download",
    "install",
    "install_command",
    "manifest_roots",
]


class Listener(Protocol):
    """What an install reports as it goes (the CLI draws it)."""

    def resolving(self) -> None:
        """Requirements are being resolved (``pip download``)."""

    def start(self, total: int) -> None:
        """``total`` wheels are about to be installed."""

    def update(self, count: int, message: str) -> None:
        """Work under way; ``count`` wheels done."""

    def done(self, count: int, message: str) -> None:
        """One more wheel finished: ``count`` done."""

    def close(self) -> None:
        """No more reports."""


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


def install(
    wheels: Sequence[Wheel],
    store: Store,
    *,
    compile_bytecode: bool = True,
    progress: Listener | None = None,
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
    store.sweep()  # temp dirs of killed installs, whether or not this one unpacks
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        hashes = list(
            pool.map(lambda wheel: wheel.sha256 or store.wheel_sha256(wheel.path), wheels)
        )
        found = [store.get(sha256) for sha256 in hashes]
        gone = [w.filename for w, entry in zip(wheels, found) if entry is None and not w.path]
        if gone:  # reused by hash a moment ago, damaged since, and no file to unpack
            raise WheelError(
                f"store entries damaged or removed meanwhile, and no wheel file at hand: "
                f"{', '.join(gone)}; install again (without --offline, or with --find-links)"
            )
        pending: dict[Future[tuple[StoreEntry, bool]], int] = {}
        reusing: set[int] = set()
        for number, sha256 in enumerate(hashes):
            entry = found[number]
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
                    finished(number, entry, "repaired" if entry.repaired else "unpacked")
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
    listener: Listener | None = None,
    find_links: Sequence[str] = (),
    offline: bool = False,
    extras: Sequence[str] = (),
    groups: Sequence[str] | None = None,
) -> InstallResult:
    """The ``vsite install`` command: ``items`` are wheel files, requirement strings, or
    one lock file (alone).

    Installs every wheel into the store, writes the manifest at ``output`` and returns
    what was done; ``listener`` hears of the progress. ``find_links`` are directories of
    wheels to look in first; ``offline`` fetches nothing from the network; ``extras``
    and ``groups`` select from a lock file.
    """
    from vsite.tools.install.lock import is_lock_file

    started = time.monotonic()
    locks = [item for item in items if is_lock_file(item)]
    files = [item for item in items if item.endswith(".whl") and os.path.isfile(item)]
    requirements = [item for item in items if item not in files and item not in locks]
    if locks and (len(items) > 1 or requirement_files):
        raise UsageError(
            f"a lock file is installed alone: {locks[0]} was given with other wheels, "
            "requirements or lock files"
        )
    if (extras or groups is not None) and not locks:
        raise UsageError("--extra and --group select from a lock file (pylock.toml)")
    store = Store(store_path or default_store())
    with tempfile.TemporaryDirectory(prefix="vsite-download-") as downloads:
        if locks:
            wheels = _locked_wheels(
                locks[0], store, downloads, listener, find_links, offline, extras, groups
            )
        else:
            wheels = _wheels(
                files, requirements, requirement_files, store, downloads, listener,
                find_links=find_links, offline=offline, no_deps=no_deps,
            )  # fmt: skip
        if not wheels:
            raise WheelError("nothing to install: give wheel files, requirements or a lock file")
        if listener is not None:
            listener.start(len(wheels))
        result = install(wheels, store, compile_bytecode=compile_bytecode, progress=listener)
    output = os.path.abspath(output)
    base = os.path.dirname(output)
    absolute = os.path.commonpath([store.path, base]) != base
    write_manifest(manifest_text(manifest_roots(result.entries), output, absolute=absolute), output)
    from vsite.tools.install.collect import register

    register(store.path, output)  # vsite store gc keeps what this environment uses
    result.seconds = time.monotonic() - started
    result.store, result.manifest = store.path, output
    return result


def _locked_wheels(
    lock: str,
    store: Store,
    downloads: str,
    listener: Listener | None,
    find_links: Sequence[str],
    offline: bool,
    extras: Sequence[str],
    groups: Sequence[str] | None,
) -> list[Wheel]:
    """The wheels ``lock`` selects here, found and checked, in the lock's order."""
    from vsite.tools.install.fetch import fetch
    from vsite.tools.install.lock import read_lock

    wanted = read_lock(lock, extras=extras, groups=groups)
    if listener is not None:
        listener.update(0, f"finding and checking the {len(wanted)} wheels of {lock}")
    return fetch(wanted, store, downloads, find_links=find_links, offline=offline, source=lock)


def _wheels(
    files: Sequence[str],
    requirements: Sequence[str],
    requirement_files: Sequence[str],
    store: Store,
    downloads: str,
    listener: Listener | None,
    *,
    find_links: Sequence[str],
    offline: bool,
    no_deps: bool,
) -> list[Wheel]:
    """Wheel files as given, and the wheels of requirements: pip resolves them, or,
    offline in hash-checking mode, they are found by hash without pip."""
    from vsite.tools.install.requirements import check_downloaded, read_requirements, wanted

    paths = list(files)
    found: list[Wheel] = []
    known: dict[str, str] = {}
    if requirements or requirement_files:
        pinned = read_requirements(requirement_files, requirements)
        if pinned.hashed and offline:
            from vsite.tools.install.fetch import fetch

            found = fetch(wanted(pinned), store, downloads, find_links=find_links, offline=True)
            found.sort(key=lambda wheel: wheel.filename.lower())  # as pip download's are
        else:
            if listener is not None:
                listener.resolving()
            downloaded = download(
                requirements, requirement_files, downloads, no_deps=no_deps,
                find_links=find_links, offline=offline, require_hashes=pinned.hashed,
            )  # fmt: skip
            if pinned.hashed:
                known = check_downloaded(downloaded, pinned)
            paths += downloaded
    wheels = check_wheels(paths)
    for wheel in wheels:
        wheel.sha256 = known.get(wheel.path)
    names = {wheel.canonical for wheel in wheels}
    clash = sorted(wheel.filename for wheel in found if wheel.canonical in names)
    if clash:
        raise WheelError(f"given both as a wheel file and by a requirement: {', '.join(clash)}")
    return wheels + found
