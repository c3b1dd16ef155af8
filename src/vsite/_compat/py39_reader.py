"""Python 3.9 only (delete with 3.9): a resource reader with ``files()`` for the site's
source loader.

On 3.9 the stdlib's ``FileLoader.get_resource_reader`` returns the loader itself: the
legacy ResourceReader API, no ``files()``. The ``importlib_resources`` backport knows
that and, for loaders of the frozen import system, reads the package directory itself;
it recognises them by their module name, which vsite's subclass does not share, and then
falls back to an adapter that cannot list subdirectories. So the subclass answers what
the backport would have used: the legacy methods of the loader, plus ``files()`` over the
package's directory.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pathlib
    from typing import Any, BinaryIO

__all__ = ["PackageReader"]


class PackageReader:
    """The 3.9 loader's own ResourceReader methods, and ``files()`` as the backport's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def files(self) -> pathlib.Path:
        import pathlib

        return pathlib.Path(os.path.dirname(self._loader.path))

    def open_resource(self, resource: str) -> BinaryIO:
        return self._loader.open_resource(resource)  # type: ignore[no-any-return]

    def resource_path(self, resource: str) -> str:
        return self._loader.resource_path(resource)  # type: ignore[no-any-return]

    def is_resource(self, name: str) -> bool:
        return self._loader.is_resource(name)  # type: ignore[no-any-return]

    def contents(self) -> Any:
        return self._loader.contents()
