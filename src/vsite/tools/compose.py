"""Write manifests: from existing per-wheel directories (``vsite manifest``) or a store.

A directory given to ``vsite manifest`` is a root itself, or, as rules_python and
vsite's own store lay them out, holds the root in its ``site-packages`` subdirectory.
Roots are written relative to the manifest's directory (so the tree can move as one),
unless absolute paths are asked for.
"""

from __future__ import annotations

import json
import os

from vsite._fs import write_atomic
from vsite._names import dist_name_from_dir
from vsite.errors import Problem, RootError, VsiteError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RootEntry", "manifest_text", "roots_from_dirs", "write_manifest"]

_SITE_PACKAGES = "site-packages"


class RootEntry:
    """A root to list, with the name/version hints of its one distribution (if one)."""

    __slots__ = ("name", "path", "version")

    def __init__(self, path: str, name: str | None = None, version: str | None = None) -> None:
        self.path = os.path.abspath(path)
        self.name = name
        self.version = version

    def __repr__(self) -> str:
        return f"RootEntry({self.path!r}, {self.name!r}, {self.version!r})"


def roots_from_dirs(dirs: Sequence[str]) -> list[RootEntry]:
    """The roots of ``dirs`` (each a root or a dir holding ``site-packages``).

    RootError lists every directory that is missing or not a directory, at once.
    """
    roots: list[RootEntry] = []
    problems: list[Problem] = []
    for number, given in enumerate(dirs):
        path = os.path.abspath(given)
        if not os.path.isdir(path):
            why = "does not exist" if not os.path.lexists(path) else "is not a directory"
            problems.append(Problem(f"{given} {why}", f"/roots/{number}", path))
            continue
        nested = os.path.join(path, _SITE_PACKAGES)
        root = nested if os.path.isdir(nested) else path
        name, version = _single_distribution(root)
        roots.append(RootEntry(root, name, version))
    if problems:
        first = problems[0]
        raise RootError(
            first.message if len(problems) == 1 else f"{len(problems)} directories are unusable",
            pointer=first.pointer,
            root=first.root,
            problems=problems if len(problems) > 1 else (),
        )
    return roots


def _single_distribution(root: str) -> tuple[str | None, str | None]:
    """Name and version of the root's distribution when it holds exactly one."""
    try:
        names = [n for n in os.listdir(root) if n.endswith(".dist-info")]
    except OSError:
        return None, None
    if len(names) != 1 or dist_name_from_dir(names[0]) is None:
        return None, None
    metadata = os.path.join(root, names[0], "METADATA")
    name = version = None
    try:
        with open(metadata, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if not line.strip():
                    break
                key, sep, value = line.partition(":")
                key = key.strip().lower()
                if sep and key == "name" and name is None:
                    name = value.strip()
                elif sep and key == "version" and version is None:
                    version = value.strip()
    except OSError:
        return None, None
    return name, version


def manifest_text(roots: Sequence[RootEntry], output: str | None, *, absolute: bool) -> str:
    """The manifest JSON listing ``roots``; paths relative to ``output``'s dir unless
    ``absolute`` (or no output file, e.g. written to stdout)."""
    base = os.path.dirname(os.path.abspath(output)) if output is not None else None
    entries: list[object] = []
    for root in roots:
        path = root.path
        if base is not None and not absolute:
            path = os.path.relpath(path, base)
        entry: dict[str, str] = {"path": path}
        if root.name is not None:
            entry["name"] = root.name
        if root.version is not None:
            entry["version"] = root.version
        entries.append(entry)
    return json.dumps({"vsite": 1, "roots": entries}, indent=1) + "\n"


def write_manifest(text: str, output: str) -> None:
    """Write ``text`` to ``output`` atomically (a reader never sees half a manifest)."""
    output = os.path.abspath(output)
    try:
        os.makedirs(os.path.dirname(output), exist_ok=True)
        write_atomic(output, text.encode("utf-8"), 0o666)
    except OSError as exc:
        message = f"cannot write the manifest: {exc.strerror or exc}"
        raise VsiteError(message, manifest=output) from None
