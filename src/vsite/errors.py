"""The one error hierarchy: every error vsite raises derives from VsiteError.

Each error carries the manifest file, the JSON pointer of the offending entry and the
root path where they are known, prints them all, and pickles (errors cross
multiprocessing boundaries).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ActivationError",
    "EnvironmentShellError",
    "FarmError",
    "ManifestError",
    "Problem",
    "RootError",
    "StoreError",
    "UsageError",
    "VsiteError",
    "WheelError",
    "one_line",
]


#: How many problems an error's text lists (a manifest of 100,000 missing roots would
#: otherwise print megabytes on one line).
SHOWN_PROBLEMS = 20


class Problem:
    """One thing wrong with a manifest: where it is and what it is."""

    __slots__ = ("message", "pointer", "root")

    def __init__(self, message: str, pointer: str = "", root: str | None = None) -> None:
        self.message = message
        self.pointer = pointer
        self.root = root

    def __str__(self) -> str:
        where = self.pointer or "/"
        text = f"{where}: {self.message}"
        if self.root is not None:
            text += f" (root {self.root})"
        return text

    def __repr__(self) -> str:
        return f"Problem({self.message!r}, {self.pointer!r}, {self.root!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (self.message, self.pointer, self.root) == (
            other.message,
            other.pointer,
            other.root,
        )

    def __hash__(self) -> int:
        return hash((self.message, self.pointer, self.root))

    def __reduce__(self) -> tuple[type[Problem], tuple[str, str, str | None]]:
        return (Problem, (self.message, self.pointer, self.root))


class VsiteError(Exception):
    """Base of every error vsite raises."""

    def __init__(
        self,
        message: str,
        *,
        manifest: str | None = None,
        pointer: str | None = None,
        root: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.manifest = manifest
        self.pointer = pointer
        self.root = root
        self.problems = tuple(problems)

    def __str__(self) -> str:
        head = self.message
        if self.manifest is not None:
            head = f"{self.manifest}: {head}"
        if self.pointer is not None:
            head += f" at {self.pointer}"
        if self.root is not None:
            head += f" (root {self.root})"
        if self.problems:
            head += "".join(f"\n  {problem}" for problem in self.problems[:SHOWN_PROBLEMS])
            hidden = len(self.problems) - SHOWN_PROBLEMS
            if hidden > 0:  # all stay in .problems; the text stays readable
                head += f"\n  ... and {hidden} more"
        return head

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default exception pickling.
        return (
            _rebuild,
            (
                type(self),
                self.message,
                self.manifest,
                self.pointer,
                self.root,
                self.problems,
            ),
        )


def _rebuild(
    cls: type[VsiteError],
    message: str,
    manifest: str | None,
    pointer: str | None,
    root: str | None,
    problems: tuple[Problem, ...],
) -> VsiteError:
    return cls(message, manifest=manifest, pointer=pointer, root=root, problems=problems)


class ManifestError(VsiteError, ValueError):
    """The manifest cannot be used: unreadable, not JSON, or not schema v1."""


class RootError(VsiteError, OSError):
    """A root listed by the manifest is missing, unreadable or not a directory."""


class ActivationError(VsiteError, RuntimeError):
    """Activation cannot proceed (e.g. another manifest is already active)."""


class FarmError(VsiteError, OSError):
    """The native-code farm cannot be created or trusted."""


class WheelError(VsiteError, ValueError):
    """A wheel cannot be used: unreadable, corrupt, RECORD mismatch, or wrong tags."""


class StoreError(VsiteError, OSError):
    """The store of unpacked wheels cannot be written or read."""


class EnvironmentShellError(VsiteError, OSError):
    """The environment shell (``vsite env``) cannot be written."""


class UsageError(VsiteError, ValueError):
    """A command was given arguments it cannot use."""


def one_line(exc: BaseException) -> str:
    """The error and every problem it lists, on one line (how vsite reports an error)."""
    head, *problems = str(exc).splitlines() or [""]
    if not problems:
        return head
    return f"{head}: " + "; ".join(problem.strip() for problem in problems)
