"""setuptools 28.8 to 67 (delete when they are no longer supported): ``find_on_path``
takes a directory's entries by version descending, later ones plainly sorted.

The order is read off the running pkg_resources' code, not its version number, so a
patched or vendored copy answers for itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

__all__ = ["by_version_descending"]


def by_version_descending(pr: Any) -> Callable[[Iterable[str]], Iterable[str]] | None:
    """``pkg_resources._by_version_descending`` when ``find_on_path`` orders by it;
    None when it sorts entries by name."""
    by_version = getattr(pr, "_by_version_descending", None)
    code = getattr(pr.find_on_path, "__code__", None)
    if by_version is not None and "_by_version_descending" in getattr(code, "co_names", ()):
        return by_version  # type: ignore[no-any-return]
    return None
