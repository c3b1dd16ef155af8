"""vsite's start-up loader, shared by both ways a process boots a site.

- ``vsite exec``: ``sitecustomize`` beside this file (vsite's boot directory on
  ``PYTHONPATH``) calls :func:`boot_from_environment` for ``$VSITE_MANIFEST``;
- an environment shell (``vsite env``, ``vsite install -o DIR/manifest.json``): the one
  line of ``DIR/lib/pythonX.Y/site-packages/_vsite.pth`` puts this directory first on
  ``sys.path`` for a moment and calls :func:`boot_shell` while ``site`` processes that
  directory, so the site is active before any later ``.pth`` or ``sitecustomize`` runs.

Either way the ``vsite`` package is loaded by location (nothing else of vsite's
installation environment becomes importable) and this module and its directory are
taken back off ``sys.modules`` and ``sys.path``. Stdlib only, like all of the runtime.

**The boot bundle.** A warm start loads the same ten modules of vsite every time
(:data:`BUNDLED`). Imported one by one, each costs a spec search of the package's
directory, a stat of its source and an open and read of its bytecode: ~0.1 ms apiece on
the 2-core VMs, about as much as the code itself. So their code objects are also kept
together in one file beside their bytecode, ``vsite/__pycache__/_boot.TAG.bundle``
(its own ``.pyc`` files' directory, with their trust: whoever can write there can
already replace vsite's bytecode), read with one ``open`` and one ``marshal.loads``.
The modules only some starts load (:data:`BUNDLED_IF_USED`: a store's holds, what runs
the site's ``.pth`` files) are in it too, each read, checked and decoded only when
imported, so a start that does not use them pays nothing for them. The
modules are still imported by the import system, through a finder that is on
``sys.meta_path`` only while the site boots and a ``SourceFileLoader`` whose
``get_code`` returns the bundled code once and that hands each module a plain
``SourceFileLoader`` once it ran: their specs, loaders, ``__file__``, ``__cached__`` and
source are what a plain import gives (``vsite._startup.bundled`` lists the modules
read from the bundle). The bundle records each source's size and ``mtime_ns``; a start
whose sources differ (an upgraded or edited vsite), another interpreter's magic number,
or a damaged file imports the modules as usual and writes the bundle again, when
bytecode may be written (not under ``-B``/``PYTHONDONTWRITEBYTECODE``, not with
``sys.pycache_prefix``, only where the directory is writable).
"""

import _imp
import io
import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec, SourceFileLoader
    from types import CodeType, ModuleType
    from typing import IO, Optional, Protocol  # local annotations: never evaluated

    from _typeshed.importlib import MetaPathFinderProtocol

    class _BundleFinder(MetaPathFinderProtocol, Protocol):
        served: "list[str]"
        stale: bool
        stream: "IO[bytes]"

    #: A bundled module (see read_bundle).
    _Entry = tuple[str, str, Optional[CodeType], Optional[tuple[int, int, int, int]]]


_HERE = os.path.dirname(os.path.abspath(__file__))

#: What a warm start loads of vsite, in an order that imports each after what it
#: imports at module level (tests/test_architecture.py holds a start to this set).
BUNDLED = (
    "vsite",
    "vsite._paths",
    "vsite._farm_lock",
    "vsite.index",
    "vsite.index_cache",
    "vsite.finder",
    "vsite.finder.meta_finder",
    "vsite.finder.path_hook",
    "vsite.activation",
    "vsite._startup",
)
#: What some starts load too, bundled with the code decoded only when imported: a site
#: in a vsite store holds its entries; a site with ``.pth`` files (setuptools' among
#: them) runs them, and one that imports from the site loads the union and the bytecode
#: loader.
BUNDLED_IF_USED = (
    "vsite.store_holds",
    "vsite._compat",
    "vsite._compat.py312_dot_pth",
    "vsite.pth",
    "vsite._machinery",
    "vsite._fs",
    "vsite.finder.union",
    "vsite.finder.bytecode",
)
#: 2: each module's __cached__ recorded; 3: the modules of BUNDLED_IF_USED, each
#: module's code marshalled apart (decoded when imported)
_BUNDLE_TAG = b"vsite-boot-3"


def boot_from_environment() -> None:
    """Activate ``$VSITE_MANIFEST`` (``vsite exec``); exit 2 with one line on failure."""
    _forget_self()
    bundle = _Bundle(os.path.dirname(_HERE))
    try:
        _load_vsite_or_exit(bundle, required=bool(os.environ.get("VSITE_MANIFEST")))
        from vsite._startup import activate_from_environment

        activate_from_environment()
    finally:
        bundle.close()


def boot_shell(
    manifest: str, version: str, site_packages: "str | None" = None, held: bool = False
) -> None:
    """Activate the environment shell's ``manifest``; exit 2 with one line on failure.

    ``site_packages`` is the shell's own (the ``.pth``'s ``sitedir``): it ranks before
    the site, so what pip installs there replaces the site's distribution of that name.
    ``held``: the process holds the shell (``sys.prefix``) for life, as a farm (``vsite
    exec``'s shells: ``vsite gc`` removes those no process holds).

    ``version`` is the ``X.Y`` the shell was made for: another interpreter behind
    ``bin/python`` (upgraded in place) would import extension modules and bytecode
    built for a different Python, so it stops with one line saying so.
    """
    _forget_self()
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if running != version:
        _fail(
            f"this environment was made for Python {version}, but {sys.executable} is "
            f"Python {running} (the interpreter behind it was replaced): make it again "
            "with `vsite env`"
        )
    bundle = _Bundle(os.path.dirname(_HERE))
    try:
        _load_vsite_or_exit(bundle, required=True)
        from vsite._startup import activate_from_shell

        activate_from_shell(manifest, site_packages, held=held)
    finally:
        bundle.close()


def _forget_self() -> None:
    sys.modules.pop(__name__, None)
    sys.path[:] = [
        entry
        for entry in sys.path
        if not (isinstance(entry, str) and os.path.abspath(entry or os.curdir) == _HERE)
    ]


def _load_vsite_or_exit(bundle: "_Bundle", *, required: bool) -> None:
    package = bundle.package
    try:
        if "vsite" not in sys.modules:
            if bundle.open():
                __import__("vsite")  # found by the bundle's finder, at its location
            else:
                bundle.missed = True  # this start imports vsite: it may write the bundle
                _load_vsite(package)
    except Exception as exc:
        if not required:
            raise  # Nothing asked for a site: site reports this like any sitecustomize error.
        # Running on without the site would run the program against the wrong packages.
        _fail(f"cannot load vsite from {package}: {exc!r}")


def _fail(message: str) -> None:
    sys.stderr.write(f"vsite: error: {message}\n")
    sys.stderr.flush()
    os._exit(2)


def _load_vsite(package: str) -> None:
    """Import the package at ``package`` as ``vsite``, as an import from its parent would.

    What importlib.util.module_from_spec does, spelled out: importlib.util costs
    contextlib, functools and collections at every interpreter start.
    """
    ModuleSpec, SourceFileLoader = _machinery()
    init = os.path.join(package, "__init__.py")
    loader = SourceFileLoader("vsite", init)
    spec = ModuleSpec("vsite", loader, origin=init, is_package=True)
    spec.submodule_search_locations = [package]
    spec.has_location = True
    module = type(sys)("vsite")
    module.__spec__ = spec
    module.__loader__ = loader
    module.__package__ = "vsite"
    module.__path__ = spec.submodule_search_locations
    module.__file__ = init
    module.__cached__ = spec.cached  # type: ignore[attr-defined]
    sys.modules["vsite"] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules["vsite"]
        raise


def _machinery() -> "tuple[type[ModuleSpec], type[SourceFileLoader]]":
    """ModuleSpec and SourceFileLoader."""
    # importlib.machinery's classes, from the frozen modules they live in: importing
    # importlib would cost warnings at every start (see vsite._machinery).
    try:
        return (
            sys.modules["_frozen_importlib"].ModuleSpec,
            sys.modules["_frozen_importlib_external"].SourceFileLoader,
        )
    except KeyError:
        from importlib.machinery import ModuleSpec, SourceFileLoader

        return ModuleSpec, SourceFileLoader


def _magic() -> bytes:
    try:
        return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER  # type: ignore[no-any-return]
    except KeyError:
        from importlib.util import MAGIC_NUMBER

        return MAGIC_NUMBER


class _Bundle:
    """The boot bundle of the vsite package at ``package`` (see the module's docstring)."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.path = bundle_path(package)  # None: this interpreter keeps no bundle
        self._finder: Optional[_BundleFinder] = None
        self.missed = False  # this start loaded vsite without a bundle to read

    def open(self) -> bool:
        """Put the bundle's finder first on ``sys.meta_path``, if the bundle is current."""
        if self.path is None:
            return False
        try:
            # open_code, as the stdlib's loaders open code: audit hooks see the same open.
            stream = io.open_code(self.path)  # noqa: SIM115 - the finder reads it until close()
        except OSError:
            return False
        entries = read_bundle(stream, self.package)
        if entries is None:
            stream.close()
            return False
        self._finder = _finder(entries, stream)
        sys.meta_path.insert(0, self._finder)
        return True

    def close(self) -> None:
        """Take the finder back off; write the bundle if this start loaded vsite and had
        no bundle to read, or found a module of it stale (not when vsite was loaded
        before: nested boots)."""
        finder, self._finder = self._finder, None
        if finder is not None:
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            finder.stream.close()
            startup = sys.modules.get("vsite._startup")
            if startup is not None:
                startup.bundled = tuple(finder.served)  # type: ignore[attr-defined]
            self.missed = finder.stale
        if self.missed and self.path is not None and not sys.dont_write_bytecode:
            write_bundle(self.path, self.package)


def bundle_path(package: str) -> "str | None":
    """Where the bundle of the vsite package at ``package`` is kept for this interpreter
    (its optimization level included, as a ``.pyc``'s name has it); None where bytecode
    is not kept beside the sources."""
    tag = sys.implementation.cache_tag
    if tag is None or getattr(sys, "pycache_prefix", None) is not None:
        return None
    level = sys.flags.optimize
    suffix = f".opt-{level}" if level else ""
    return os.path.join(package, "__pycache__", f"_boot.{tag}{suffix}.bundle")


def read_bundle(stream: "IO[bytes]", package: str) -> "dict[str, _Entry] | None":
    """Module name -> (its source, its bytecode's path, its code, and for a module of
    :data:`BUNDLED_IF_USED`, None instead of its code and where its code lies in
    ``stream`` (offset, length) with its source's recorded (mtime_ns, size): read and
    checked when imported, as most starts never import them) from the bundle open as
    ``stream``; None if it was written by another interpreter, it is damaged, or a
    source of :data:`BUNDLED` changed."""
    head = _magic() + _BUNDLE_TAG
    if stream.read(len(head)) != head:
        return None
    entries: dict[str, _Entry] = {}
    code_type = type(read_bundle.__code__)
    try:
        # The table, then the code of BUNDLED (one marshalled tuple: decoded at once, as
        # every warm start runs it), then that of each module of BUNDLED_IF_USED apart.
        table = marshal.loads(_section(stream))
        codes = iter(marshal.loads(_section(stream)))
        at = stream.tell()
        for name, relative, mtime_ns, size, cached, length in table:
            if os.path.isabs(relative) or os.path.isabs(cached):
                return None
            source = os.path.join(package, relative)
            cached = os.path.join(package, cached)
            if name in BUNDLED:
                code = next(codes)
                if type(code) is not code_type or not _unchanged(source, (mtime_ns, size)):
                    return None  # vsite was edited or upgraded: import it as usual
                entries[name] = (source, cached, code, None)
            elif name in BUNDLED_IF_USED:
                entries[name] = (source, cached, None, (at, length, mtime_ns, size))
                at += length
            else:
                return None
    except (EOFError, OSError, StopIteration, TypeError, ValueError):  # damaged, a source gone
        return None
    return entries


def _section(stream: "IO[bytes]") -> bytes:
    """The next section of ``stream``: a u32 length, then its bytes."""
    return _read_exactly(stream, int.from_bytes(stream.read(4), "little"))


def _read_later(stream: "IO[bytes]", later: "tuple[int, int, int, int]", source: str) -> bytes:
    """The marshalled code of a module of BUNDLED_IF_USED (see :func:`read_bundle`)."""
    at, length, mtime_ns, size = later
    if not _unchanged(source, (mtime_ns, size)):
        raise ValueError(f"{source} changed")
    stream.seek(at)
    return _read_exactly(stream, length)


def _read_exactly(stream: "IO[bytes]", length: int) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise ValueError("truncated")
    return data


def _unchanged(source: str, recorded: "tuple[int, int]") -> bool:
    try:
        st = os.stat(source)
    except OSError:
        return False
    return (st.st_mtime_ns, st.st_size) == recorded


def write_bundle(path: str, package: str) -> None:
    """Write the bundle of the modules of ``package`` (:data:`BUNDLED` and
    :data:`BUNDLED_IF_USED`), each compiled as its import would be; atomically (a reader
    sees all of it or nothing). Never an error: a start without a bundle only costs
    what it cost before there was one."""
    # A read-only installation: checked first, so each start does not compile in vain.
    if not os.access(os.path.dirname(path), os.W_OK):
        return
    _, SourceFileLoader = _machinery()
    cache_from_source = sys.modules["_frozen_importlib_external"].cache_from_source
    try:
        from vsite._fs import write_atomic  # vsite is loaded: this start imported it

        table = []
        core = []
        apart = []
        for name in BUNDLED + BUNDLED_IF_USED:
            relative = os.path.join(*name.split(".")[1:], "__init__.py")
            if not os.path.isfile(os.path.join(package, relative)):
                relative = os.path.dirname(relative) + ".py"
            source = os.path.join(package, relative)
            st = os.stat(source)  # before the code: a later edit makes the entry stale
            code = SourceFileLoader(name, source).get_code(name)
            # The path a plain import gives __cached__ (this interpreter's tag and -O
            # level, which the bundle's own name carries; no pycache_prefix).
            cached = os.path.relpath(cache_from_source(source), package)
            length = 0
            if name in BUNDLED:
                core.append(code)
            else:
                apart.append(marshal.dumps(code))
                length = len(apart[-1])
            table.append((name, relative, st.st_mtime_ns, st.st_size, cached, length))
        sections = [marshal.dumps(tuple(table)), marshal.dumps(tuple(core))]
        data = [_magic() + _BUNDLE_TAG]
        for section in sections:
            data += [len(section).to_bytes(4, "little"), section]
        write_atomic(path, b"".join(data + apart), 0o666)
    except Exception:  # a full disk, a source that does not compile, ...
        pass  # write_atomic left no temporary behind


def _finder(codes: "dict[str, _Entry]", stream: "IO[bytes]") -> "_BundleFinder":
    """A meta path finder for the bundle's modules (each found once, at its location)."""
    spec_type, loader_type = _machinery()

    class BundledLoader(loader_type):  # type: ignore[misc,valid-type]
        """Runs the bundled code, then hands the module a plain SourceFileLoader: from
        then on it is what an import without the bundle gives (a reload reads its
        source's bytecode as usual)."""

        def __init__(self, fullname: str, path: str, code: "CodeType") -> None:
            super().__init__(fullname, path)
            self._bundled: Optional[CodeType] = code

        def get_code(self, fullname: str) -> "CodeType":
            code, self._bundled = self._bundled, None
            if code is None or fullname != self.name:
                return super().get_code(fullname)  # type: ignore[no-any-return]
            # As for a .pyc: the code names the file it is loaded from.
            _imp._fix_co_filename(code, self.path)  # type: ignore[attr-defined]
            return code

        def exec_module(self, module: "ModuleType") -> None:
            super().exec_module(module)
            plain = loader_type(self.name, self.path)
            module.__loader__ = plain
            if module.__spec__ is not None:
                module.__spec__.loader = plain

    class BundleFinder:
        def __init__(self) -> None:
            self.served: list[str] = []
            self.stale = False
            self.stream = stream

        def find_spec(
            self, name: str, path: "object" = None, target: "ModuleType | None" = None
        ) -> "ModuleSpec | None":
            entry = codes.pop(name, None)
            if entry is None:
                return None
            source, cached, code, later = entry
            if later is not None:  # one of BUNDLED_IF_USED: read and checked now
                try:
                    code = marshal.loads(_read_later(stream, later, source))
                    if type(code) is not type(read_bundle.__code__):
                        raise TypeError(name)
                except (EOFError, OSError, TypeError, ValueError):  # edited since, damaged
                    self.stale = True  # imported as usual; the bundle is written again
                    return None
            is_package = os.path.basename(source) == "__init__.py"
            loader = BundledLoader(name, source, code)  # type: ignore[arg-type] # not None now
            spec = spec_type(name, loader, origin=source, is_package=is_package)
            if is_package:
                spec.submodule_search_locations = [os.path.dirname(source)]
            spec.has_location = True
            # The .pyc path a plain import gives (recorded: cache_from_source costs more
            # than the rest of finding the module).
            spec.cached = cached
            self.served.append(name)
            return spec

    return BundleFinder()
