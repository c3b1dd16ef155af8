"""Resources of a regular package whose directory exists in several roots.

The stdlib loaders give a regular package a reader over ONE directory (its
``__init__``'s); the flat site would show the union of all portions. These loaders are
the standard ones plus a ``get_resource_reader`` over every portion; everything else
(``get_source``, bytecode caching) is inherited unchanged, and ``get_data`` finds a
resource of the package's directory in whichever portion holds it, as
``pkgutil.get_data`` would in the flat directory.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.abc import FileLoader

    UnionLoaderFactory = Callable[[str, str, tuple[str, ...]], FileLoader]

    from vsite._compat.resources import Traversable

__all__ = ["UnionReader", "union_loader_class"]

_classes: dict[type[FileLoader], UnionLoaderFactory] = {}


class UnionReader:
    """A TraversableResources-style reader over several directories, first one winning."""

    def __init__(self, portions: tuple[str, ...]) -> None:
        self.portions = portions

    def files(self) -> Traversable:
        from vsite._compat.resources import multiplexed_path

        return multiplexed_path(self.portions)

    # The pre-files() API, as importlib.abc.TraversableResources defines it on top of
    # files(); kept here so the reader needs no import at class-definition time.
    def open_resource(self, resource: str) -> object:
        return self.files().joinpath(resource).open("rb")

    def resource_path(self, resource: str) -> str:
        raise FileNotFoundError(resource)

    def is_resource(self, path: str) -> bool:
        return bool(self.files().joinpath(path).is_file())

    def contents(self) -> object:
        return (item.name for item in self.files().iterdir())


def union_loader_class(base: type[FileLoader]) -> UnionLoaderFactory:
    """``base`` (a stdlib file loader) with a resource reader over all portions."""
    made = _classes.get(base)
    if made is not None:
        return made

    def __init__(self: FileLoader, fullname: str, path: str, portions: tuple[str, ...]) -> None:
        base.__init__(self, fullname, path)
        self.portions = portions  # type: ignore[attr-defined]

    def get_resource_reader(self: FileLoader, name: str | None = None) -> UnionReader:
        return UnionReader(self.portions)  # type: ignore[attr-defined]

    def get_data(self: FileLoader, path: str) -> bytes:
        # pkgutil.get_data() reads <directory of __init__>/<resource>; in the flat site
        # that directory holds every portion's files, the first root's copy winning.
        # The module's own source and bytecode cache stay where they are.
        portions: tuple[str, ...] = self.portions  # type: ignore[attr-defined]
        owner = next((p for p in portions if path.startswith(p + os.sep)), None)
        if owner is not None and path != self.path:
            relative = path[len(owner) + 1 :]
            if relative.partition(os.sep)[0] != "__pycache__":
                for portion in portions:
                    try:
                        return base.get_data(self, os.path.join(portion, relative))
                    except (FileNotFoundError, NotADirectoryError):
                        continue
        return base.get_data(self, path)

    name = "Union" + base.__name__
    namespace = {
        "__init__": __init__,
        "get_data": get_data,
        "get_resource_reader": get_resource_reader,
        "__module__": __name__,
        "__doc__": f"{base.__name__} whose resources span every portion.",
    }
    cls: UnionLoaderFactory = type(name, (base,), namespace)
    setattr(sys.modules[__name__], name, cls)  # picklable by qualified name
    _classes[base] = cls
    return cls
