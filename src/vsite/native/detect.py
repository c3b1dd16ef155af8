"""Which top-level entries of a root carry native code (cheap: names only, no ELF parsing).

A root's dist-info ``RECORD`` lists every installed file, so one read per distribution
answers; a root without RECORD is walked instead.
"""

from __future__ import annotations

import os

__all__ = ["is_shared_object", "native_entries", "record_paths"]

_SHARED_SUFFIXES = (".so", ".pyd", ".dylib")
_LIB_DIR_SUFFIXES = (".libs", ".dylibs")  # auditwheel, delocate


def is_shared_object(name: str) -> bool:
    """``libx.so``, ``libx.so.13``, ``m.cpython-311-x86_64-linux-gnu.so``, ``x.pyd``..."""
    return name.endswith(_SHARED_SUFFIXES) or ".so." in name


def record_paths(dist_info: str) -> list[str] | None:
    """Relative paths listed by ``dist_info``/RECORD, or None when there is none."""
    text = _record_text(dist_info)
    return None if text is None else _parse_record(text)


def _record_text(dist_info: str) -> str | None:
    """RECORD decoded as a text-mode read would (universal newlines), minus its cost:
    a binary read skips the TextIOWrapper, a third of a cold scan's time per root."""
    try:
        with open(os.path.join(dist_info, "RECORD"), "rb") as f:
            data = f.read()
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _parse_record(text: str) -> list[str]:
    paths = []
    for line in text.split("\n"):  # not splitlines(): "\x85", "\x0c" are name characters
        if not line:
            continue
        # path,hash,size: only the path may hold commas (then it is quoted, "" escaped).
        path = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line.split(",", 1)[0]
        if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
            path = path[1:-1].replace('""', '"')
        paths.append(path)
    return paths


# Substrings every RECORD line naming native code contains (".so" covers ".so.13").
_NATIVE_MARKERS = (".so", ".pyd", ".dylib", ".libs/")


def native_entries(root: str, listing: dict[str, bool] | None = None) -> list[str]:
    """Sorted top-level names in ``root`` that hold shared objects (or are one)."""
    if listing is None:
        listing = {}
        with os.scandir(root) as entries:
            for entry in entries:
                listing[entry.name] = entry.is_dir()
    found: set[str] = set()
    unrecorded = dict(listing)
    for name, is_dir in listing.items():
        if not is_dir or not name.endswith(".dist-info"):
            continue
        text = _record_text(os.path.join(root, name))
        if text is None:
            continue
        if '"' not in text and "\\" not in text and not any(m in text for m in _NATIVE_MARKERS):
            # The common case, a pure wheel: which entries it records is all there is to
            # learn, and a substring search per entry beats parsing every line.
            lines = "\n" + text
            for top in listing:
                if f"\n{top}/" in lines or f"\n{top}," in lines:
                    unrecorded.pop(top, None)
            continue
        for path in _parse_record(text):
            top, sep, _ = path.replace("\\", "/").partition("/")
            if top.startswith(".."):
                continue
            unrecorded.pop(top, None)
            if top in listing and (
                is_shared_object(path) or (sep and top.endswith(_LIB_DIR_SUFFIXES))
            ):
                found.add(top)
    for name, is_dir in unrecorded.items():
        if name in found or name.endswith((".dist-info", ".egg-info")) or name == "__pycache__":
            continue
        if is_dir:
            if name.endswith(_LIB_DIR_SUFFIXES) or _walk_has_shared(os.path.join(root, name)):
                found.add(name)
        elif is_shared_object(name):
            found.add(name)
    return sorted(found)


def _walk_has_shared(path: str) -> bool:
    for _dirpath, _dirnames, filenames in os.walk(path):
        if any(is_shared_object(name) for name in filenames):
            return True
    return False
