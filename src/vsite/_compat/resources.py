"""Where ``MultiplexedPath`` lives: importlib.resources.readers (3.12+),
importlib.readers (3.10, 3.11), or the importlib_resources backport (3.9)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = ["Traversable", "multiplexed_path"]


def multiplexed_path(portions: tuple[str, ...]) -> Traversable:
    """One Traversable over several directories (the first portion wins a name)."""
    import importlib

    for where in (
        "importlib.resources.readers",
        "importlib.readers",
        "importlib_resources.readers",
    ):
        try:
            module = importlib.import_module(where)
        except ImportError:
            continue
        return module.MultiplexedPath(*portions)  # type: ignore[no-any-return]
    import pathlib  # Python 3.9 without the backport: stdlib files() ignores readers.

    return pathlib.Path(portions[0])
