"""Distribution-name normalisation without importing ``re`` or ``packaging`` at start-up."""

from __future__ import annotations

__all__ = ["canonicalize", "dist_name_from_dir"]

_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def canonicalize(name: str) -> str:
    """The PEP 503 name: runs of ``-``, ``_`` and ``.`` become ``-``, lower-cased.

    Equal to ``packaging.utils.canonicalize_name`` (a property test holds it to that).
    """
    text = name.lower().replace("_", "-").replace(".", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text


def dist_name_from_dir(dirname: str) -> str | None:
    """The canonical distribution name of a ``*.dist-info``/``*.egg-info`` dir, else None.

    Splits at the first ``-`` as importlib.metadata does for its own lookups.
    """
    for suffix in _METADATA_SUFFIXES:
        if dirname.endswith(suffix):
            stem = dirname[: -len(suffix)]
            name = stem.partition("-")[0]
            return canonicalize(name) if name else None
    return None
