"""``vsite store gc``: remove the store entries no environment uses.

What an entry is used by:

- a **registered environment**: ``vsite install -o M`` registers M in
  ``STORE/environments/`` (one small file naming it). A registration whose manifest is
  gone is dropped; an entry one of the registered manifests lists as a root is kept. A
  registered manifest that cannot be read stops the collection (it might list anything):
  one line naming it, nothing removed.
- a **live process**: each process whose site has store roots holds a shared lock on a
  file listing them under vsite's per-user state directory (:mod:`vsite.store_holds`);
  an entry in a file whose lock cannot be taken is kept. Those files are the current
  user's: another user's running process on a manifest nobody registered is not seen.

Removal renames the entry aside first (``wheels/.tmp-gc-*``), so an entry is either
whole under its key or gone; the renamed copy is then made writable and deleted.
Manifests written by hand or by ``vsite manifest`` are not registered: register them by
running ``vsite install -o`` for them, or keep them out of a collected store.

Tooling path.
"""

from __future__ import annotations

import json
import os
import stat

from vsite._fs import remove_tree, write_atomic
from vsite._paths import short_hash
from vsite.errors import StoreError
from vsite.store_holds import HOLDS_DIR, store_entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["Collected", "collect", "register", "users"]

ENVIRONMENTS = "environments"
_WHEELS = "wheels"


class Collected:
    """What a collection found and did."""

    __slots__ = ("dropped", "entries", "held", "kept", "removed")

    def __init__(self) -> None:
        self.entries = 0  # entries in the store before
        self.removed: list[str] = []  # entry paths removed (or, dry run, to remove)
        self.kept = 0  # entries a registered environment uses
        self.held = 0  # entries kept only because a live process holds them
        self.dropped: list[str] = []  # registrations whose manifest is gone


def register(store: str, manifest: str) -> None:
    """Record that the manifest file ``manifest`` (absolute) uses ``store``; silently
    nothing where the store cannot be written (another user's, read-only)."""
    directory = os.path.join(store, ENVIRONMENTS)
    path = os.path.join(directory, f"{short_hash(manifest):08x}.json")
    try:
        os.makedirs(directory, exist_ok=True)
        write_atomic(path, json.dumps({"manifest": manifest}).encode(), 0o644)
    except OSError:
        pass


def users(store: str) -> dict[str, list[str]]:
    """Entry path -> the registered manifests that list it (unreadable ones left out)."""
    from vsite.errors import ManifestError
    from vsite.manifest import Manifest

    found: dict[str, list[str]] = {}
    for _, manifest in _registrations(store):
        try:
            roots = Manifest.load(manifest).roots
        except ManifestError:
            continue
        for entry in _entries(os.path.realpath(root.path) for root in roots):
            found.setdefault(entry, []).append(manifest)
    return found


def _registrations(store: str) -> Iterator[tuple[str, str]]:
    """(registration file, the manifest it names) for each registration of ``store``."""
    directory = os.path.join(store, ENVIRONMENTS)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as stream:
                manifest = json.load(stream)["manifest"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a registration (a half write is never renamed into place)
        if isinstance(manifest, str):
            yield path, manifest


def collect(store: str, *, dry_run: bool = False) -> Collected:
    """Remove (unless ``dry_run``) every entry of ``store`` nothing uses."""
    result = Collected()
    wheels = os.path.join(store, _WHEELS)
    try:
        names = sorted(n for n in os.listdir(wheels) if not n.startswith("."))
    except FileNotFoundError:
        return result
    except OSError as exc:
        raise StoreError(f"cannot read the store {wheels}: {exc.strerror or exc}") from None
    result.entries = len(names)
    used = _registered_entries(store, result, dry_run=dry_run)
    held = _held_entries(dry_run=dry_run)
    for name in names:
        entry = os.path.join(wheels, name)
        if entry in used:
            result.kept += 1
        elif entry in held:
            result.held += 1
        else:
            if not dry_run:
                _remove_entry(wheels, name)
            result.removed.append(entry)
    return result


def _registered_entries(store: str, result: Collected, *, dry_run: bool) -> set[str]:
    from vsite.errors import ManifestError
    from vsite.manifest import Manifest

    used: set[str] = set()
    for path, manifest in _registrations(store):
        if not os.path.exists(manifest):
            result.dropped.append(manifest)
            if not dry_run:
                _unlink(path)
            continue
        try:
            roots = Manifest.load(manifest).roots
        except ManifestError as exc:
            raise StoreError(
                f"cannot collect {store}: the registered environment {manifest} cannot "
                f"be read ({exc.args[0] if exc.args else exc}); fix or delete it first"
            ) from None
        used.update(_entries(os.path.realpath(root.path) for root in roots))
    return used


def _held_entries(*, dry_run: bool) -> set[str]:
    """Entries listed in hold files a live process holds; stale hold files removed."""
    import fcntl

    from vsite._paths import state_dir

    held: set[str] = set()
    try:
        directory = state_dir(HOLDS_DIR)
        names = os.listdir(directory)
    except OSError:
        return held
    for name in names:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process holds it
                with os.fdopen(os.dup(fd), encoding="utf-8") as stream:
                    held.update(line.strip() for line in stream if line.strip())
                continue
            if not dry_run:
                _unlink(path)  # held by no one: stale
        finally:
            os.close(fd)
    return {os.path.realpath(entry) for entry in held}


def _entries(roots: Iterable[str]) -> set[str]:
    return {entry for entry in map(store_entry, roots) if entry is not None}


def _remove_entry(wheels: str, name: str) -> None:
    aside = os.path.join(wheels, f".tmp-gc-{name}-{os.getpid()}")
    try:
        os.rename(os.path.join(wheels, name), aside)
    except OSError as exc:
        raise StoreError(f"cannot remove {name} from {wheels}: {exc.strerror or exc}") from None
    for directory, dirs, _files in os.walk(aside):  # entries are read-only: open them up
        os.chmod(directory, stat.S_IRWXU)
        for child in dirs:
            path = os.path.join(directory, child)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
    remove_tree(aside)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
