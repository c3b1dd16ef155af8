"""Requirements files with ``--hash`` options: hash-checking mode, as pip has it.

A requirements file (or one it includes with ``-r``) that pins any requirement with
``--hash``, or says ``--require-hashes``, puts the install in hash-checking mode: then
every requirement to install (its marker true here) must carry a hash and be pinned with
``==`` (or ``===``), and a requirement given on the command line is refused, as pip
refuses them. :func:`read_requirements` reports every such line at once, with its file
and line number, before pip runs.

In that mode every wheel is checked against its requirement's hashes before it is
unpacked (:func:`check_downloaded`): the wheels pip downloaded (pip checks them too, and
vsite checks again), or, offline, the wheels found by hash in the store and the
``--find-links`` directories (:func:`wanted`, then :mod:`.fetch`), without pip.

The reader follows pip's format where it matters here: ``\\`` continuations, ``#``
comments, ``${VAR}`` expansion, ``-r``/``--requirement`` includes (relative to the
including file), per-requirement options after the requirement; other options lines
(``--index-url``, ``-c`` ...) are left to pip.

Tooling path: the standard library and ``packaging``.
"""

from __future__ import annotations

import os
import re

from vsite.errors import Problem, WheelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from packaging.requirements import Requirement

    from vsite.tools.install.fetch import Wanted

__all__ = ["Pinned", "Requirements", "check_downloaded", "read_requirements", "wanted"]

_COMMENT = re.compile(r"(^|\s+)#.*$")
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")
_INCLUDE = ("-r", "--requirement")
_EDITABLE = ("-e", "--editable")


class Pinned:
    """One requirement line: where it is, the requirement, and its ``--hash`` digests."""

    __slots__ = ("file", "hashes", "line", "text")

    def __init__(self, file: str, line: int, text: str, hashes: dict[str, set[str]]) -> None:
        self.file = file
        self.line = line
        self.text = text  # the requirement, without its options
        self.hashes = hashes

    @property
    def pointer(self) -> str:
        return f"{self.file}:{self.line}"

    def __repr__(self) -> str:
        return f"Pinned({self.pointer!r}, {self.text!r})"


class Requirements:
    """The requirement lines of some files, and whether they ask for hash checking."""

    __slots__ = ("hashed", "lines")

    def __init__(self, lines: list[Pinned], hashed: bool) -> None:
        self.lines = lines
        self.hashed = hashed

    def installed(self) -> list[tuple[Pinned, Requirement | None]]:
        """(line, parsed requirement) for each line whose marker holds here (None for a
        line that is no valid requirement: pip reports it)."""
        from packaging.requirements import InvalidRequirement, Requirement

        found: list[tuple[Pinned, Requirement | None]] = []
        for line in self.lines:
            try:
                requirement = Requirement(line.text)
            except InvalidRequirement:
                found.append((line, None))
                continue
            if requirement.marker is None or requirement.marker.evaluate():
                found.append((line, requirement))
        return found


def read_requirements(files: Sequence[str], command_line: Sequence[str] = ()) -> Requirements:
    """Read ``files`` (and what they include); in hash-checking mode, WheelError lists
    every requirement to install that has no hash or is not pinned with ``==``, and every
    requirement given on the ``command_line``."""
    lines: list[Pinned] = []
    hashed = [False]
    problems: list[Problem] = []
    seen: set[str] = set()
    for path in files:
        _read(path, lines, hashed, problems, seen)
    if problems:
        raise WheelError(f"cannot read requirements: {problems[0]}", problems=problems[1:])
    result = Requirements(lines, hashed[0] or any(line.hashes for line in lines))
    if result.hashed:
        _check_hash_mode(result, command_line)
    return result


def _read(
    path: str, lines: list[Pinned], hashed: list[bool], problems: list[Problem], seen: set[str]
) -> None:
    real = os.path.realpath(path)
    if real in seen:
        return  # included twice (or in a loop): pip reads it again, to the same effect
    seen.add(real)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(getattr(exc, "strerror", None) or exc), path))
        return
    for number, line in _logical_lines(text):
        tokens = line.split()
        if tokens[0].startswith("-"):
            option, _, value = tokens[0].partition("=")
            value = value or (tokens[1] if len(tokens) > 1 else "")
            if option in _INCLUDE and value:
                _read(os.path.join(os.path.dirname(path), value), lines, hashed, problems, seen)
            elif option == "--require-hashes":
                hashed[0] = True
            elif option in _EDITABLE:
                lines.append(Pinned(path, number, line, {}))  # no hash possible: see below
            continue
        text, hashes = _split_options(tokens)
        lines.append(Pinned(path, number, text, hashes))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with continuations joined, comments and blanks gone,
    ``${VAR}`` expanded from the environment."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        line = _COMMENT.sub("", " ".join([*pending, raw])).strip()
        pending = []
        line = _VARIABLE.sub(lambda m: os.environ.get(m.group(1), m.group(0)), line)
        if line:
            found.append((start, line))
    return found


def _split_options(tokens: list[str]) -> tuple[str, dict[str, set[str]]]:
    """The requirement (the tokens before the first option) and its ``--hash`` digests."""
    hashes: dict[str, set[str]] = {}
    for number, token in enumerate(tokens):
        if token.startswith("-"):
            requirement, options = tokens[:number], tokens[number:]
            break
    else:
        return " ".join(tokens), hashes
    for number, option in enumerate(options):
        value = ""
        if option.startswith("--hash="):
            value = option[len("--hash=") :]
        elif option == "--hash" and number + 1 < len(options):
            value = options[number + 1]
        if value:
            algorithm, _, digest = value.partition(":")
            hashes.setdefault(algorithm.lower(), set()).add(digest.lower())
    return " ".join(requirement), hashes


def _check_hash_mode(requirements: Requirements, command_line: Sequence[str]) -> None:
    problems: list[Problem] = []
    for line, parsed in requirements.installed():
        if line.text.startswith(_EDITABLE):
            problems.append(Problem(f"{line.text}: an editable cannot be hashed", line.pointer))
        elif not line.hashes:
            problems.append(Problem(f"{line.text}: no --hash", line.pointer))
        elif parsed is not None and parsed.url is None and not _pinned(parsed):
            problems.append(Problem(f"{line.text}: not pinned with ==", line.pointer))
    for text in command_line:
        problems.append(Problem(f"{text}: given on the command line: no --hash", "<command line>"))
    if problems:
        raise WheelError(
            "hashes are required for every requirement once one has a hash (as pip "
            f"requires them); {len(problems)} {'lack' if len(problems) > 1 else 'lacks'} one",
            problems=problems,
        )


def _pinned(requirement: Requirement) -> bool:
    specifiers = list(requirement.specifier)
    return (
        len(specifiers) == 1
        and specifiers[0].operator in ("==", "===")
        and "*" not in specifiers[0].version
    )


def wanted(requirements: Requirements) -> list[Wanted]:
    """The wheels hash-checking ``requirements`` pin (read without pip: offline)."""
    from vsite.tools.install.fetch import Wanted

    found: list[Wanted] = []
    for line, parsed in requirements.installed():
        if parsed is None:
            raise WheelError(f"{line.pointer}: not a valid requirement: {line.text}")
        specifiers = list(parsed.specifier)
        version = specifiers[0].version if specifiers else ""
        found.append(
            Wanted(
                line.pointer, parsed.name, version, line.hashes, require_all=False, url=parsed.url
            )
        )
    return found


def check_downloaded(paths: Sequence[str], requirements: Requirements) -> dict[str, str]:
    """Check each wheel pip downloaded against its requirement's hashes, before any is
    unpacked; WheelError lists every wheel that has no hashed requirement or does not
    match. Returns the sha256 of each wheel that was computed (path -> hex digest)."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    from vsite.tools.install.hashes import checkable, digests, mismatch, unchecked

    by_name: dict[str, Pinned] = {}
    for line, parsed in requirements.installed():
        if parsed is not None:
            by_name[str(canonicalize_name(parsed.name))] = line
    problems: list[Problem] = []
    known: dict[str, str] = {}
    for path in paths:
        label = os.path.basename(path)
        try:
            name = str(parse_wheel_filename(label)[0])
        except InvalidWheelFilename:
            continue  # check_wheels names it
        pinned = by_name.get(name)
        if pinned is None:
            problems.append(Problem("no requirement pins it with a hash", label))
            continue
        why = unchecked(pinned.hashes)
        if not why:
            found = digests(path, checkable(pinned.hashes))
            why = mismatch(found, pinned.hashes, require_all=False)
            if "sha256" in found:
                known[path] = found["sha256"]
        if why:
            problems.append(Problem(f"{label} does not match its --hash: {why}", pinned.pointer))
    if problems:
        count = len(problems)
        head = f"{count} downloaded wheel{'s' if count > 1 else ''} failed the hash check"
        raise WheelError(head, problems=problems)
    return known
