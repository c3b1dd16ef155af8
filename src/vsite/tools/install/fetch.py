"""Wheels pinned by their hashes (from a lock or a hashed requirements file), found and
checked before anything is unpacked.

Each :class:`Wanted` wheel is looked for, in this order:

1. in the store, by its pinned sha256 (the store's key is the sha256 of the wheel file):
   a sound entry is reused and no file is needed;
2. in the ``--find-links`` directories: the file of its name (a lock names it), or the
   wheel files of its name and version that fit this interpreter (a requirements line);
3. at the local file its source names (a lock's ``path``, relative to the lock file's
   directory, or a ``file:`` URL);
4. at its ``http(s)`` URL, downloaded into a temporary directory, unless offline.

Every file found is hashed and checked against the pinned hashes before it is used;
a wheel that matches nowhere, or is found nowhere, is a problem. All the wheels are
looked for (``jobs`` at a time) and every problem is reported at once in one
WheelError: nothing is unpacked when any wheel is missing or does not match.

Tooling path: the standard library and ``packaging``.
"""

from __future__ import annotations

import os
import sys

from vsite.errors import Problem, WheelError
from vsite.tools.install.hashes import checkable, digests, mismatch, unchecked
from vsite.tools.install.sources import Wheel, display_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from packaging.version import Version

    from vsite.tools.install.store import Store

__all__ = ["Wanted", "fetch"]

_TIMEOUT = 60.0  # seconds without a byte before a download is given up


class Wanted:
    """A wheel to install, pinned by ``hashes`` (algorithm -> allowed hex digests).

    ``pointer`` says where it was pinned (``packages[3]``, ``requirements.txt:12``);
    ``filename`` is None when only the name and version are known (a requirements line);
    ``url`` and ``path`` are where its source says it is (a local ``path`` absolute).
    """

    __slots__ = (
        "canonical",
        "filename",
        "hashes",
        "name",
        "path",
        "pointer",
        "require_all",
        "size",
        "url",
        "version",
    )

    def __init__(
        self,
        pointer: str,
        name: str,
        version: str,
        hashes: Mapping[str, Collection[str]],
        *,
        require_all: bool,
        filename: str | None = None,
        url: str | None = None,
        path: str | None = None,
        size: int | None = None,
    ) -> None:
        from packaging.utils import canonicalize_name

        self.pointer = pointer
        self.name = name
        self.canonical = str(canonicalize_name(name))
        self.version = version
        self.hashes = {
            algo.lower(): frozenset(d.lower() for d in hex_) for algo, hex_ in hashes.items()
        }
        self.require_all = require_all
        self.filename = filename
        self.url = url
        self.path = path
        self.size = size

    @property
    def label(self) -> str:
        return self.filename or f"{self.name}=={self.version}"

    def __repr__(self) -> str:
        return f"Wanted({self.pointer!r}, {self.label!r})"


def fetch(
    wanted: Sequence[Wanted],
    store: Store,
    downloads: str,
    *,
    find_links: Sequence[str] = (),
    offline: bool = False,
    source: str | None = None,
    jobs: int | None = None,
) -> list[Wheel]:
    """The wheels of ``wanted``, in their order: store entries reused by hash, or files
    checked against their hashes (downloads go into ``downloads``).

    Raises WheelError listing every wheel that is missing or does not match, naming
    ``source`` (the lock or requirements file) and each wheel's pointer.
    """
    from concurrent.futures import ThreadPoolExecutor

    directories = [os.path.abspath(d) for d in find_links]
    listing = _Listing(directories)
    found: list[Wheel | None] = [None] * len(wanted)
    problems: list[Problem | None] = [None] * len(wanted)
    missing: list[bool] = [False] * len(wanted)
    rest: list[int] = []
    for number, item in enumerate(wanted):
        why = unchecked(item.hashes)
        if why:
            problems[number] = Problem(f"{item.label}: {why}", item.pointer)
            continue
        reused = _from_store(item, store)
        if reused is not None:
            found[number] = reused
        else:
            rest.append(number)

    def look(number: int) -> None:
        item = wanted[number]
        wheel, problem = _from_files(item, listing, downloads, offline=offline)
        found[number] = wheel
        if problem is not None:
            problems[number] = problem
        elif wheel is None:
            missing[number] = True

    # Downloads wait on the network and hashing releases the GIL: more threads than CPUs.
    with ThreadPoolExecutor(max_workers=jobs or 8) as pool:
        list(pool.map(look, rest))
    listed: list[Problem] = []
    for number, item in enumerate(wanted):
        problem = problems[number]
        if problem is not None:
            listed.append(problem)
        elif missing[number]:
            places = ["the store", *directories]
            if item.url and _file_url_path(item.url) is None:
                places.append(f"{item.url} (not fetched: --offline)" if offline else item.url)
            message = f"{item.label}: not found in {', '.join(places)}"
            listed.append(Problem(message, item.pointer))
    if listed:
        count = sum(missing)
        if count == len(listed):
            where = " (--offline: only the store, --find-links and local files)" if offline else ""
            head = f"{count} wheel{'s are' if count > 1 else ' is'} not at hand{where}"
        else:
            head = f"{len(listed)} wheel{'s' if len(listed) > 1 else ''} cannot be used"
        raise WheelError(head, manifest=source, problems=listed)
    return [wheel for wheel in found if wheel is not None]


def _from_store(item: Wanted, store: Store) -> Wheel | None:
    """The store entry of ``item``'s pinned sha256, when one is there and sound."""
    for sha256 in sorted(item.hashes.get("sha256", ())):
        entry = store.get(sha256)
        if entry is None:
            continue
        from packaging.utils import canonicalize_name

        if str(canonicalize_name(entry.name)) != item.canonical:
            continue  # a hash pinned to another distribution: never take it for this one
        if item.require_all and len(checkable(item.hashes)) > 1:
            return None  # other algorithms to check: they need the file
        return Wheel("", entry.name, item.canonical, entry.version, sha256=sha256, file=entry.wheel)
    return None


def _from_files(
    item: Wanted, listing: _Listing, downloads: str, *, offline: bool
) -> tuple[Wheel | None, Problem | None]:
    """``item`` from a directory, its local file or its URL: the wheel, or the problem;
    (None, None) when it is nowhere at hand."""
    wrong: list[str] = []
    candidates = listing.candidates(item)
    local = [path for path in (item.path, _file_url_path(item.url)) if path]
    for path in [*candidates, *local]:
        if not os.path.isfile(path):
            continue
        try:
            found = digests(path, checkable(item.hashes))
        except OSError as exc:
            wrong.append(f"{path} cannot be read: {exc.strerror or exc}")
            continue
        why = mismatch(found, item.hashes, require_all=item.require_all)
        if not why:
            return _wheel(item, path, found), None
        wrong.append(f"{path} does not match its pinned hash: {why}")
    if wrong:
        return None, Problem(f"{item.label}: " + "; ".join(wrong), item.pointer)
    remote = item.url is not None and _file_url_path(item.url) is None
    if remote and not offline:
        return _download(item, downloads)
    if local and not remote:
        return None, Problem(f"{item.label}: no such file {local[0]}", item.pointer)
    return None, None


def _wheel(item: Wanted, path: str, found: Mapping[str, str]) -> Wheel:
    return Wheel(
        os.path.abspath(path),
        display_name(path, item.name),
        item.canonical,
        item.version,
        sha256=found.get("sha256"),
    )


def _download(item: Wanted, downloads: str) -> tuple[Wheel | None, Problem | None]:
    """Download ``item.url`` into ``downloads`` (under the wheel's file name), hashing
    as it comes; the wheel, or the problem (a network error, a size or hash mismatch)."""
    import hashlib
    import urllib.error
    import urllib.request

    assert item.url is not None
    filename = item.filename or _url_name(item.url)
    target = os.path.join(downloads, filename)
    partial = target + ".part"
    algorithms = checkable(item.hashes)
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    request = urllib.request.Request(item.url, headers={"User-Agent": _user_agent()})
    try:
        with (
            urllib.request.urlopen(request, timeout=_TIMEOUT) as response,
            open(partial, "wb") as stream,
        ):
            for block in iter(lambda: response.read(1 << 20), b""):
                size += len(block)
                for hasher in hashers.values():
                    hasher.update(block)
                stream.write(block)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        _unlink(partial)
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        return None, Problem(f"{item.label}: cannot download {item.url}: {reason}", item.pointer)
    found = {name: hasher.hexdigest() for name, hasher in hashers.items()}
    why = mismatch(found, item.hashes, require_all=item.require_all)
    if not why and item.size is not None and size != item.size:
        why = f"{size} bytes, the lock says {item.size}"
    if why:
        _unlink(partial)
        return None, Problem(f"{item.label}: {item.url} does not match: {why}", item.pointer)
    os.replace(partial, target)
    return _wheel(item, target, found), None


def _file_url_path(url: str | None) -> str | None:
    if not url or not url.startswith("file:"):
        return None
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    return url2pathname(urlparse(url).path)


def _url_name(url: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path.rsplit("/", 1)[-1])


def _user_agent() -> str:
    from vsite import __version__

    return f"vsite/{__version__} Python/{sys.version.split()[0]}"


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _Listing:
    """The wheel files of the ``--find-links`` directories, listed once."""

    def __init__(self, directories: Sequence[str]) -> None:
        self.directories = directories
        self._names: dict[str, list[tuple[Version, int, str]]] | None = None

    def candidates(self, item: Wanted) -> list[str]:
        """Files that may be ``item``: the file of its name, or (no name pinned) the
        wheels of its name and version that fit this interpreter, best tags first."""
        if item.filename is not None:
            return [os.path.join(d, item.filename) for d in self.directories]
        from packaging.version import InvalidVersion, Version

        if self._names is None:
            self._names = _list_wheels(self.directories)
        try:
            version = Version(item.version)
        except InvalidVersion:
            return []
        found = [
            (rank, path) for v, rank, path in self._names.get(item.canonical, []) if v == version
        ]
        return [path for _, path in sorted(found)]


def _list_wheels(directories: Sequence[str]) -> dict[str, list[tuple[Version, int, str]]]:
    """Canonical name -> (version, tag rank, path) of each wheel file in ``directories``
    that fits this interpreter (rank 0: its best tag)."""
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    rank: dict[object, int] = {}
    for number, tag in enumerate(sys_tags()):
        rank.setdefault(tag, number)
    found: dict[str, list[tuple[Version, int, str]]] = {}
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for filename in names:
            if not filename.endswith(".whl"):
                continue
            try:
                name, version, _build, tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            best = min((rank[tag] for tag in tags if tag in rank), default=None)
            if best is not None:
                path = os.path.join(directory, filename)
                found.setdefault(str(name), []).append((version, best, path))
    return found
