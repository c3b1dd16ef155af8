"""Run the site's ``.pth`` files in site order with the running interpreter's rules.

Each file goes through ``site.addpackage`` itself, so comment/blank lines, ``import``
lines executed in a frame whose local ``sitedir`` is the file's root, relative path
lines, stderr error reports, decoding and the hidden-file check are exactly the
interpreter's. The one rule that lives in ``site.addsitedir`` instead (skipping
dot-files) is read off the running interpreter's ``addsitedir``.

Where entries land: ``site`` processes a site-packages directory before the ones after
it on ``sys.path`` exist, so whatever its ``.pth`` files append comes right after it. The
virtual site is activated after the interpreter's own site-packages were added; entries
its ``.pth`` files append at the end of ``sys.path`` are moved up to follow the site's
entry, where the flat site's would be (ahead of the interpreter's site-packages).
"""

import sys

from vsite._compat.py312_dot_pth import skips_dot_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from vsite.manifest import Manifest

__all__ = ["run_pth_files", "skips_dot_files"]


def run_pth_files(
    pth: "Sequence[tuple[str, str]]",
    site_path: "str | None" = None,
    manifest: "Manifest | Callable[[], Manifest] | None" = None,
) -> None:
    """Process ``(file name, root)`` pairs, already in site order, like ``addsitedir``.

    Entries the files append to ``sys.path`` are moved to follow ``site_path`` (when
    given and on ``sys.path``). A file that cannot be decoded stops the run, as it
    stops ``site``: ActivationError names it.
    """
    if not pth:
        return
    import site

    # One shared known_paths set: N roots cost N lookups, not N re-scans of sys.path.
    known_paths = _known_paths(site)
    # Every root is part of the site's entry, which a flat site's known_paths holds: a
    # line naming the root itself (a blank line does before 3.10) adds nothing.
    makepath = site.makepath
    known_paths.update(makepath(root)[1] for _, root in pth)
    skip_dots = skips_dot_files()
    anchor = site_path
    modules_before = set(sys.modules)
    for name, root in pth:
        if skip_dots and name.startswith("."):
            continue
        before = list(sys.path)
        try:
            site.addpackage(root, name, known_paths)
        except UnicodeDecodeError as exc:
            raise _undecodable(root, name, exc, manifest) from exc
        if anchor is not None:
            anchor = _follow(anchor, before)
    _recompute_namespaces(set(sys.modules) - modules_before)


def _recompute_namespaces(names: set[str]) -> None:
    """Namespace packages made by ``.pth`` lines compute their path again on next use.

    An old ``*-nspkg.pth`` line makes the package from its own root's portion only
    (``PathFinder.find_spec(name, [sitedir])``): for the flat site that one directory
    holds every portion; here the others are in other roots. The package's path would
    recompute over ``sys.path``, through the site's entry, once sys.path changes; it
    may never change again, so the recorded sys.path is forgotten now.
    """
    for name in names:
        path = getattr(sys.modules.get(name), "__path__", None)
        # importlib's _NamespacePath (3.9-3.13) recomputes when this differs.
        if path is not None and hasattr(path, "_last_parent_path"):
            path._last_parent_path = None


def _follow(anchor: str, before: list[str]) -> "str | None":
    """Move what was appended to ``sys.path`` since ``before`` to just after ``anchor``;
    return the new anchor (the last moved entry), None if ``anchor`` left sys.path."""
    path = sys.path
    if path[: len(before)] == before:
        start = len(before)
    else:
        # An import line also changed sys.path elsewhere: the appended entries are
        # those after the last entry that was there before.
        start = len(path)
        last = before[-1] if before else None
        for number in range(len(path) - 1, -1, -1):
            if path[number] is last:
                start = number + 1
                break
    added = path[start:]
    spot = _index(path, anchor, start)
    if spot is None:
        return None
    if added and spot + 1 < start:
        del path[start:]
        path[spot + 1 : spot + 1] = added
    return added[-1] if added else anchor


def _index(path: list[str], entry: str, end: int) -> "int | None":
    for number in range(min(end, len(path))):
        if path[number] is entry:
            return number
    for number in range(min(end, len(path))):
        if path[number] == entry:
            return number
    return None


def _known_paths(site: object) -> set[str]:
    import os

    makepath = site.makepath  # type: ignore[attr-defined]
    known: set[str] = set()
    for entry in sys.path:
        try:
            if os.path.exists(entry):
                known.add(makepath(entry)[1])
        except TypeError:
            continue
    return known


def _undecodable(
    root: str,
    name: str,
    exc: UnicodeDecodeError,
    manifest: "Manifest | Callable[[], Manifest] | None",
) -> Exception:
    import os

    from vsite.errors import ActivationError

    if callable(manifest):  # decoded only now, for the message: starts never need it
        manifest = manifest()

    pointer = None
    if manifest is not None:
        pointer = next((r.pointer for r in manifest.roots if r.path == root), None)
    return ActivationError(
        f"cannot decode .pth file {os.path.join(root, name)}: {exc}",
        manifest=manifest.source if manifest is not None else None,
        pointer=pointer,
        root=root,
    )
