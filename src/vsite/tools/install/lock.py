"""Lock files in: a PEP 751 ``pylock.toml`` read, checked, and what it installs here.

Reading: the TOML is parsed (``tomllib``, ``tomli`` before Python 3.11) and validated
with ``packaging.pylock``, one top-level key and one package at a time, so that every
problem is reported at once, each with its TOML key path (``packages[3].wheels[0]``)
and the package's name.

Selecting, for this interpreter, as PEP 751 tells installers to: the lock's
``requires-python`` and ``environments`` must hold; a package whose ``marker`` is false
(``extras`` and ``dependency-groups`` in it are the ones asked for: ``--extra``,
``--group``, else the lock's ``default-groups``) is left out; a selected package's
``requires-python`` must hold, its name must be selected once, and of its ``wheels``
the one whose tags this interpreter ranks best is taken. vsite installs wheels only:
a package with only an sdist, or a vcs, directory or archive source, is a problem, as
is a package with no wheel for this interpreter. No resolver runs: the lock is the set.

Order: the roots are the selected packages in the order of the lock's ``packages``
array, so the manifest's precedence (an earlier root wins a file two roots share) is
the lock file's, the same on every install of the same file. pip and uv write
``packages`` sorted by name.

``packaging.pylock`` as of packaging 26.1 is needed (vsite requires it); with an older
packaging in the environment anyway, reading a lock file is refused in one line.

Tooling path: the standard library, ``packaging``, ``tomli`` before Python 3.11.
"""

from __future__ import annotations

import os
import sys

from vsite.errors import Problem, UsageError, WheelError
from vsite.tools.install.fetch import Wanted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    # packaging 26.1+; ignored where a mypy environment holds an older one without it.
    from packaging.pylock import PackageWheel, Pylock  # type: ignore[import-not-found, unused-ignore]

__all__ = ["is_lock_file", "read_lock"]

#: The top-level keys PEP 751 requires.
_REQUIRED = ("lock-version", "created-by", "packages")
_SHOWN_WHEELS = 3


def is_lock_file(item: str) -> bool:
    """Whether the command-line ``item`` names a lock file: ``pylock.toml``,
    ``pylock.NAME.toml`` (PEP 751's names), or any other existing ``*.toml`` file."""
    name = os.path.basename(item)
    pep751 = name == "pylock.toml" or (
        name.startswith("pylock.") and name.endswith(".toml") and name.count(".") == 2
    )
    return pep751 or (name.endswith(".toml") and os.path.isfile(item))


def read_lock(
    path: str, *, extras: Sequence[str] = (), groups: Sequence[str] | None = None
) -> list[Wanted]:
    """The wheels the lock file at ``path`` installs on this interpreter, in its order.

    ``extras`` and ``groups`` are the extras and dependency groups asked for (None: the
    lock's ``default-groups``). WheelError names the file and lists every problem, of
    the file or of selecting from it.
    """
    data = _load(path)
    _require_pylock()
    lock, problems = _validate(data)
    if not problems:
        assert lock is not None
        selected, problems = _select(lock, path, extras, groups)
        if not problems:
            return selected
    count = len(problems)
    raise WheelError(
        f"lock file cannot be used ({count} problem{'s' if count > 1 else ''})",
        manifest=path,
        problems=problems,
    )


def _load(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as exc:
        raise WheelError(f"cannot read lock file: {exc.strerror or exc}", manifest=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WheelError(f"lock file is not UTF-8 (byte {exc.start})", manifest=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WheelError(f"lock file is not valid TOML: {exc}", manifest=path) from None


def _require_pylock() -> None:
    import packaging
    from packaging.version import Version

    if Version(packaging.__version__) < Version("26.1"):
        raise UsageError(
            "reading a lock file needs packaging 26.1 or later (packaging.pylock); this "
            f"Python has packaging {packaging.__version__}"
        )


def _validate(data: Mapping[str, Any]) -> tuple[Pylock | None, list[Problem]]:
    """The validated Pylock, or every problem of ``data``: each top-level key checked
    alone, then each package alone, so one problem does not hide the next."""
    from packaging.pylock import Pylock  # type: ignore[import-not-found, unused-ignore]

    base = {"lock-version": "1.0", "created-by": "vsite", "packages": []}
    if "lock-version" in data:
        problems = _problems({**base, "lock-version": data["lock-version"]}, "lock-version")
        if problems:  # another version's file may mean anything: read no further
            return None, problems
    problems = []
    for key in _REQUIRED:
        if key not in data:
            problems.append(Problem(f"missing required key {key!r}", key))
    for key, value in data.items():
        if key not in ("packages", "lock-version"):
            problems += _problems({**base, key: value}, key)
    packages = data.get("packages")
    if isinstance(packages, list):
        for number, package in enumerate(packages):
            where = f"packages[{number}]"
            name = package.get("name") if isinstance(package, dict) else None
            for problem in _problems({**base, "packages": [package]}, where):
                pointer = problem.pointer.replace("packages[0]", where, 1)
                named = f"{name}: " if isinstance(name, str) else ""
                problems.append(Problem(named + problem.message, pointer))
    elif "packages" in data:
        problems += _problems({**base, "packages": packages}, "packages")
    if problems:
        return None, problems
    return Pylock.from_dict(data), []


def _problems(data: Mapping[str, Any], key: str) -> list[Problem]:
    """What ``packaging.pylock`` finds wrong in ``data`` (its first problem), pointed at
    by TOML key path (``key`` where it names no key of its own)."""
    from packaging.pylock import (  # type: ignore[import-not-found, unused-ignore]
        Pylock,
        PylockUnsupportedVersionError,
        PylockValidationError,
    )

    try:
        Pylock.from_dict(data)
    except PylockUnsupportedVersionError as exc:
        version = data.get("lock-version")
        return [Problem(f"unsupported lock-version {version!r} ({exc}; vsite reads 1.x)", key)]
    except PylockValidationError as exc:
        return [Problem(str(exc.message), str(exc.context) if exc.context else key)]
    return []


def _select(
    lock: Pylock, path: str, extras: Sequence[str], groups: Sequence[str] | None
) -> tuple[list[Wanted], list[Problem]]:
    """The wheels ``lock`` installs here, or every problem in selecting them."""
    from packaging.markers import default_environment

    python = default_environment()["python_full_version"].rstrip("+")
    environment, problems = _environment(lock, python, extras, groups)
    if problems:
        return [], problems
    rank = _tag_rank()
    selected: list[Wanted] = []
    first: dict[str, int] = {}
    base = os.path.dirname(os.path.abspath(path))
    for number, package in enumerate(lock.packages):
        where = f"packages[{number}]"
        label = f"{package.name} {package.version}" if package.version else str(package.name)
        marker = package.marker
        if marker is not None and not marker.evaluate(environment, context="lock_file"):
            continue  # not for this interpreter, or an extra or group not asked for
        why = ""
        wheels = package.wheels or ()
        needs = package.requires_python
        if needs is not None and not needs.contains(python, prereleases=True):
            why = f"requires Python {needs}; this is Python {python}"
        elif package.name in first:
            why = f"selected twice: also at packages[{first[package.name]}]"
        elif not wheels:
            kind = next(k for k in ("vcs", "directory", "archive", "sdist") if getattr(package, k))
            why = f"the lock gives only its {kind}; vsite installs wheels"
        first.setdefault(package.name, number)
        best = None if why else _best_wheel(wheels, rank)
        if best is None:
            problems.append(Problem(f"{label}: {why or _no_wheel(wheels)}", where))
            continue
        index, wheel = best
        local = wheel.path and os.path.join(base, wheel.path)  # an absolute path stays
        selected.append(
            Wanted(
                f"{where}.wheels[{index}]",
                str(package.name),
                str(package.version or _wheel_version(wheel.filename)),
                {algorithm: [digest] for algorithm, digest in wheel.hashes.items()},
                require_all=True,
                filename=str(wheel.filename),
                url=wheel.url,
                path=local or None,
                size=wheel.size,
            )
        )
    return selected, problems


def _environment(
    lock: Pylock, python: str, extras: Sequence[str], groups: Sequence[str] | None
) -> tuple[dict[str, frozenset[str]], list[Problem]]:
    """The marker environment of the extras and groups asked for, and what the lock's
    own keys refuse (extras or groups it does not declare, this Python, environments)."""
    from packaging.utils import canonicalize_name

    problems: list[Problem] = []
    asked = frozenset(str(canonicalize_name(extra)) for extra in extras)
    unknown = sorted(asked - set(lock.extras or ()))
    if unknown:
        problems.append(
            Problem(f"extras the lock does not declare: {', '.join(unknown)}", "extras")
        )
    declared = [*(lock.dependency_groups or ()), *(lock.default_groups or ())]
    chosen = frozenset(
        str(canonicalize_name(group))
        for group in (lock.default_groups or () if groups is None else groups)
    )
    unknown = sorted(chosen - {str(canonicalize_name(group)) for group in declared})
    if unknown:
        message = f"dependency groups the lock does not declare: {', '.join(unknown)}"
        problems.append(Problem(message, "dependency-groups"))
    needs = lock.requires_python
    if needs is not None and not needs.contains(python, prereleases=True):
        problems.append(
            Problem(f"requires Python {needs}; this is Python {python}", "requires-python")
        )
    markers = lock.environments
    if markers is not None and not any(m.evaluate(context="requirement") for m in markers):
        shown = " or ".join(f"({marker})" for marker in markers)
        message = f"this interpreter is in none of the lock's environments: {shown}"
        problems.append(Problem(message, "environments"))
    return {"extras": asked, "dependency_groups": chosen}, problems


def _no_wheel(wheels: Sequence[PackageWheel]) -> str:
    from packaging.tags import sys_tags

    names = sorted(str(wheel.filename) for wheel in wheels)
    shown = ", ".join(names[:_SHOWN_WHEELS])
    if len(names) > _SHOWN_WHEELS:
        shown += f" (+{len(names) - _SHOWN_WHEELS})"
    return (
        f"no wheel for this interpreter (best tag {next(iter(sys_tags()))}); the lock has {shown}"
    )


def _tag_rank() -> dict[object, int]:
    from packaging.tags import sys_tags

    rank: dict[object, int] = {}
    for number, tag in enumerate(sys_tags()):
        rank.setdefault(tag, number)
    return rank


def _best_wheel(
    wheels: Sequence[PackageWheel], rank: Mapping[object, int]
) -> tuple[int, PackageWheel] | None:
    """(index, wheel) of the wheel whose best tag this interpreter ranks first."""
    from packaging.utils import parse_wheel_filename

    best: tuple[int, int, PackageWheel] | None = None
    for number, wheel in enumerate(wheels):
        tags = parse_wheel_filename(wheel.filename)[3]
        score = min((rank[tag] for tag in tags if tag in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, number, wheel)
    return None if best is None else (best[1], best[2])


def _wheel_version(filename: str) -> str:
    from packaging.utils import parse_wheel_filename

    return str(parse_wheel_filename(filename)[1])
