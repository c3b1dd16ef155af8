"""Records with named fields that travel as plain tuples.

The persistent index is read with ``marshal``, which writes plain containers only (no
tuple subclass), and it is read on the start-up path, where ``typing`` (NamedTuple,
~14 ms to import) and ``dataclasses`` are too dear. A :class:`Record` names its fields
once, in ``_fields`` (also its ``__slots__``), and converts to and from a plain tuple in
that order, so adding a field touches that one line and its annotation.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R", bound="Record")

__all__ = ["Record"]


class Record:
    """Fields named in ``_fields`` (= ``__slots__``), built by keyword."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init__(self, **values: Any) -> None:
        if values.keys() != set(self._fields):
            wrong = sorted(set(self._fields).symmetric_difference(values))
            raise TypeError(f"{type(self).__name__}: missing or unknown fields {wrong}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"

    def as_tuple(self) -> tuple[Any, ...]:
        """The fields in order, as one plain tuple (what marshal writes)."""
        return tuple([getattr(self, name) for name in self._fields])

    @classmethod
    def from_tuple(cls: type[R], data: object) -> R | None:
        """The record ``as_tuple`` gave ``data``; None when ``data`` has another shape."""
        fields = cls._fields
        if type(data) is not tuple or len(data) != len(fields):
            return None
        record = cls.__new__(cls)
        for name, value in zip(fields, data):
            object.__setattr__(record, name, value)
        return record
