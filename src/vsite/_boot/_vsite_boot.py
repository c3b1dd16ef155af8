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
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def boot_from_environment() -> None:
    """Activate ``$VSITE_MANIFEST`` (``vsite exec``); exit 2 with one line on failure."""
    _forget_self()
    _load_vsite_or_exit(required=bool(os.environ.get("VSITE_MANIFEST")))
    from vsite._startup import activate_from_environment

    activate_from_environment()


def boot_shell(manifest: str, version: str, site_packages: "str | None" = None) -> None:
    """Activate the environment shell's ``manifest``; exit 2 with one line on failure.

    ``site_packages`` is the shell's own (the ``.pth``'s ``sitedir``): it ranks before
    the site, so what pip installs there replaces the site's distribution of that name.

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
    _load_vsite_or_exit(required=True)
    from vsite._startup import activate_from_shell

    activate_from_shell(manifest, site_packages)


def _forget_self() -> None:
    sys.modules.pop(__name__, None)
    sys.path[:] = [
        entry
        for entry in sys.path
        if not (isinstance(entry, str) and os.path.abspath(entry or os.curdir) == _HERE)
    ]


def _load_vsite_or_exit(*, required: bool) -> None:
    package = os.path.dirname(_HERE)
    try:
        if "vsite" not in sys.modules:
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
    # importlib.machinery's classes, from the frozen modules they live in: importing
    # importlib would cost warnings at every start (see vsite._machinery).
    try:
        ModuleSpec = sys.modules["_frozen_importlib"].ModuleSpec
        SourceFileLoader = sys.modules["_frozen_importlib_external"].SourceFileLoader
    except KeyError:
        from importlib.machinery import ModuleSpec, SourceFileLoader

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
