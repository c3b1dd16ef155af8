"""Where the site's bytecode is read and written: what the root ships, then a user cache.

The stdlib's SourceFileLoader reads and writes bytecode at ``cache_from_source(path)``,
the ``__pycache__`` beside the source: inside a root. Roots are read-only and shared (one
store entry serves every environment and user), so bytecode a root does not ship would
be compiled again by every process; and a process running as root would write into the
"immutable" store. :class:`CachingSourceLoader` is SourceFileLoader with only those two
places moved:

- read: the root's own ``__pycache__`` (what ``vsite install`` compiled, or the root
  shipped), also when the source is reached through a symlinked view (the native farm, a
  sandbox): then beside the REAL file; else the per-user cache;
- write: the per-user cache only, never beside the source.

The per-user cache mirrors ``sys.pycache_prefix``'s layout, keyed by the source's real
path: ``<cache>/<real dir of the source>/<name>.<cache tag>.pyc``, so every farm, sandbox
or symlinked view of one file shares one entry. It lives at ``$VSITE_BYTECODE_DIR`` or
``${XDG_CACHE_HOME:-~/.cache}/vsite/bytecode``, private (0700, owned, never a symlink:
bytecode read from a directory someone else can write would run their code), and is
refused otherwise: then modules are compiled in each process, with one line on stderr.

Validation (timestamp, hash, ``--check-hash-based-pycs``), compiling and honouring
``-B`` / ``sys.dont_write_bytecode`` stay the stdlib's: ``get_code`` is inherited. With
``sys.pycache_prefix`` set, the user chose where bytecode goes: the stdlib's rules apply
unchanged. Runtime path: stdlib only.
"""

import _imp
import io
import os
import sys

from vsite._fs import write_atomic
from vsite._machinery import MAGIC_NUMBER, SourceFileLoader, cache_from_source
from vsite._paths import check_private_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Optional

    from _typeshed import ReadableBuffer

    # (where the bytecode is, its contents or None when there is none yet)
    Found = tuple[str, Optional[bytes]]

__all__ = [
    "ENV_DIR",
    "CachingSourceLoader",
    "UserCache",
    "default_cache_dir",
    "is_fresh",
    "read_bytecode",
    "shipped_bytecode",
    "user_cache",
]

ENV_DIR = "VSITE_BYTECODE_DIR"
_MAX_HOPS = 8  # links followed one by one before handing a chain to realpath


def default_cache_dir() -> str:
    """``$VSITE_BYTECODE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/vsite/bytecode``."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return os.path.abspath(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "vsite", "bytecode")


class UserCache:
    """The per-user bytecode cache of this process: its directory, checked once."""

    def __init__(self) -> None:
        self._base: Optional[str] = None
        self._checked = False  # _base is known: a safe directory, or None (none/refused)
        self._warned = False
        self._real_dirs: dict[str, str] = {}
        self._absent: set[str] = set()  # __pycache__ directories found missing

    def reset(self) -> None:
        """Forget the checked directory (after fork: the child may be another user)."""
        self._base, self._checked, self._warned = None, False, False

    # -- where ---------------------------------------------------------------------

    def base(self, *, create: bool) -> "str | None":
        """The cache directory if it is safe to use; created first when ``create``."""
        if self._checked:  # a safe directory, or refused once (warned) for this process
            return self._base
        path = default_cache_dir()
        try:
            if create:
                _make_private(path, explicit=bool(os.environ.get(ENV_DIR)))
            check_private_dir(path)
        except FileNotFoundError:
            if not create:
                return None  # nothing cached yet; not remembered: a write may create it
            self._refuse(f"cannot create {path}")
            return None
        except OSError as exc:
            self._refuse(str(exc))
            return None
        self._base, self._checked = path, True
        return path

    def location(self, real: str, bytecode_name: str, base: str) -> str:
        """Where the cache keeps the bytecode (named ``bytecode_name``) of the source
        whose real path is ``real``."""
        return os.path.join(base + os.path.dirname(real), bytecode_name)

    def real_path(self, source: str, _hops: int = 0) -> str:
        """``os.path.realpath(source)``: one lstat per file (plus a readlink and the
        target's lstat for a link: the native farm links files), one per new directory.
        realpath would lstat every component, for every file."""
        head, tail = os.path.split(source)
        if not os.path.islink(source):
            return os.path.join(self.real_dir(head), tail)
        try:
            target = os.readlink(source)
        except OSError:
            return os.path.realpath(source)
        if _hops >= _MAX_HOPS:  # a long chain, or a loop: realpath's own rules
            return os.path.realpath(source)
        # A relative target starts at the link's real directory, as the kernel's does;
        # a ``..`` in it is resolved by real_dir, through realpath.
        return self.real_path(os.path.join(self.real_dir(head), target), _hops + 1)

    def real_dir(self, path: str, _hops: int = 0) -> str:
        """``os.path.realpath(path)`` for a directory, from its parent's (remembered):
        one lstat of its last component (plus a readlink for a link: the farm links
        whole subtrees), where realpath would lstat every component."""
        real = self._real_dirs.get(path)
        if real is None:
            parent, name = os.path.split(path)
            # The root, a relative component or a long chain of links: realpath decides.
            plain = name and parent != path and name not in (os.curdir, os.pardir)
            if not plain or _hops >= _MAX_HOPS:
                real = os.path.realpath(path)
            elif os.path.islink(path):
                try:
                    target = os.readlink(path)
                except OSError:
                    real = os.path.realpath(path)
                else:
                    real = self.real_dir(os.path.join(self.real_dir(parent), target), _hops + 1)
            else:
                real = os.path.join(self.real_dir(parent), name)
            self._real_dirs[path] = real
        return real

    def read_shipped(self, path: str) -> "bytes | None":
        """``read_bytecode(path)`` of bytecode beside a source, skipped where its
        ``__pycache__`` is known to be absent: a root that ships no bytecode costs one
        failed open and one stat per directory, not a failed open per module."""
        pycache = os.path.dirname(path)
        if pycache in self._absent:
            return None
        data = read_bytecode(path)
        if data is None and not os.path.isdir(pycache):
            self._absent.add(pycache)
        return data

    # -- read and write -----------------------------------------------------------------

    def find(self, source: str, shipped: str, st: "os.stat_result | None" = None) -> "Found":
        """Where ``source``'s bytecode is read from, and its contents if there is some.

        ``shipped`` is the stdlib's place (``cache_from_source``); ``st`` the source's
        ``os.stat`` if the caller has it. Bytecode found beside the source but stale for
        it is passed over, so the cache's fresh copy is used.
        """
        data = self.read_shipped(shipped)
        if data is not None and is_fresh(data, source, st):
            return shipped, data
        real = self.real_path(source)
        if real != source:
            beside_real = cache_from_source(real)
            data = self.read_shipped(beside_real)
            if data is not None and is_fresh(data, real, st):
                return beside_real, data
        base = self.base(create=False)
        if base is None:
            if self._checked:  # refused: nothing is read from there
                return shipped, None
            base = default_cache_dir()
            return self.location(real, os.path.basename(shipped), base), None
        location = self.location(real, os.path.basename(shipped), base)
        return location, read_bytecode(location)

    def store(self, source: str, shipped: str, data: "ReadableBuffer") -> None:
        """Write ``data`` to the cache atomically: a reader sees all of it or nothing."""
        base = self.base(create=True)
        if base is None:
            return
        target = self.location(self.real_path(source), os.path.basename(shipped), base)
        try:
            os.makedirs(os.path.dirname(target), 0o700, exist_ok=True)
            write_atomic(target, data, 0o600)
        except OSError as exc:
            self._warn(f"cannot write {target}: {exc.strerror or exc}")

    # -- problems ----------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        self._base, self._checked = None, True
        self._warn(reason)

    def _warn(self, reason: str) -> None:
        # One line at most per process, on stderr: a warnings.warn() under -W error would
        # turn an unusable cache into a failed import, and a cache is never worth that.
        if self._warned:
            return
        self._warned = True
        try:
            sys.stderr.write(
                f"vsite: bytecode cache not used ({reason}); modules without shipped "
                f"bytecode are compiled in each process (set {ENV_DIR} to a private "
                "directory)\n"
            )
        except (AttributeError, OSError, ValueError):
            pass  # no usable stderr: still never an error


def _make_private(path: str, *, explicit: bool) -> None:
    """Create ``path`` mode 0700 (the default's ``vsite`` parent too)."""
    parent = os.path.dirname(path)
    os.makedirs(os.path.dirname(parent) if not explicit else parent, exist_ok=True)
    if not explicit:
        _mkdir_private(parent)
        check_private_dir(parent)
    _mkdir_private(path)


def _mkdir_private(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def shipped_bytecode(source: str, tag: str) -> str:
    """Where a root holds ``source``'s bytecode for the cache tag ``tag`` (what ``vsite
    install`` compiles, what ``vsite check`` surveys): ``cache_from_source`` without
    ``sys.pycache_prefix``, which points outside the root."""
    head, name = os.path.split(source)
    return os.path.join(head, "__pycache__", f"{name.rpartition('.')[0]}.{tag}.pyc")


def read_bytecode(path: str) -> "bytes | None":
    try:
        # open_code, as the stdlib's loaders open code: audit hooks see the same opens.
        with io.open_code(path) as stream:
            return stream.read()
    except OSError:
        return None


def is_fresh(data: bytes, source: str, st: "os.stat_result | None" = None) -> bool:
    """Whether bytecode found beside ``source`` would pass the stdlib's validation.

    Only to choose between the root's copy and the cache's: the stdlib validates again
    whatever is returned. Costs one stat for a timestamp pyc (none when ``st``, the
    source's, is given) and nothing for an unchecked hash-based one (what ``vsite
    install`` writes); a checked one is hashed.
    """
    if len(data) < 16 or data[:4] != MAGIC_NUMBER:
        return False
    flags = int.from_bytes(data[4:8], "little")
    if flags & ~0b11:
        return False
    if flags & 0b1:  # hash-based
        mode = _imp.check_hash_based_pycs
        if mode == "never" or (mode == "default" and not flags & 0b10):
            return True
        try:
            with open(source, "rb") as stream:
                digest = _imp.source_hash(_RAW_MAGIC, stream.read())
        except OSError:
            return False
        return digest == data[8:16]
    if st is None:
        try:
            st = os.stat(source)
        except OSError:
            return False
    return (
        int.from_bytes(data[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
        and int.from_bytes(data[12:16], "little") == st.st_size & 0xFFFFFFFF
    )


_RAW_MAGIC = int.from_bytes(MAGIC_NUMBER, "little")


class CachingSourceLoader(SourceFileLoader):
    """SourceFileLoader whose bytecode is read from the root or the user cache and
    written only to the user cache; loading, validation and compiling are inherited."""

    _found: "Found | None" = None
    _shipped: "str | None" = None
    _stat: "os.stat_result | None" = None

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        # The last hook before __cached__ is set from spec.cached: decide (and read) here,
        # so __cached__ names the file the bytecode really comes from, as CPython's does
        # under sys.pycache_prefix, at the syscalls the stdlib spends on reading it.
        shipped = self._bytecode_path()
        if shipped is not None:
            try:
                # The stat get_code takes of the source (path_stats), taken once for the
                # freshness of a timestamp pyc too.
                st = self._stat = os.stat(self.path)
            except OSError:
                st = None
            self._found = found = user_cache.find(self.path, shipped, st)
            spec.cached = found[0]
        return None

    def path_stats(self, path: str) -> "Mapping[str, Any]":
        st, self._stat = self._stat, None  # used once: a reload stats again
        if st is None or path != self.path:
            return super().path_stats(path)
        return {"mtime": st.st_mtime, "size": st.st_size}

    def get_data(self, path: str) -> bytes:
        if path.endswith(".pyc") and path == self._bytecode_path():
            found = self._found
            self._found = None  # read once: a reload looks again
            if found is None:
                found = user_cache.find(self.path, path)
            if found[1] is None:
                raise FileNotFoundError(2, "no bytecode", found[0])
            return found[1]
        return super().get_data(path)

    def set_data(self, path: str, data: "ReadableBuffer", *, _mode: int = 0o666) -> None:
        if path.endswith(".pyc") and path == self._bytecode_path():
            user_cache.store(self.path, path, data)
            return
        super().set_data(path, data, _mode=_mode)

    if sys.version_info < (3, 10):

        def get_resource_reader(  # type: ignore[override]  # a reader, not the loader
            self, name: "str | None" = None
        ) -> object:
            # As the 3.9 stdlib's: a reader for packages only; with files(), see there.
            if not self.is_package(self.name if name is None else name):
                return None
            from vsite._compat.py39_reader import PackageReader

            return PackageReader(self)

    def _bytecode_path(self) -> "str | None":
        """The stdlib's bytecode path for this source; None where vsite leaves bytecode
        to the stdlib (``sys.pycache_prefix`` set) or there is none (no cache tag)."""
        if sys.pycache_prefix is not None:
            return None
        shipped = self._shipped
        if shipped is None:
            try:
                shipped = self._shipped = cache_from_source(self.path)
            except NotImplementedError:
                return None
        return shipped


user_cache = UserCache()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=user_cache.reset)
