"""vsite's boot hook, found through PYTHONPATH set by ``vsite exec``.

It loads the ``vsite`` package by location (so nothing else of vsite's installation
environment becomes importable), activates ``$VSITE_MANIFEST``, takes its own
directory back off ``sys.path`` and then imports the ``sitecustomize`` it shadows, the
one a flat site would run: the first on ``sys.path`` after the site is active (a later
``PYTHONPATH`` entry, the standard library, a root of the site, the interpreter's
site-packages). ``site`` reports that module's errors as it would without vsite.
"""


def _boot() -> None:
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [
        entry
        for entry in sys.path
        if not (isinstance(entry, str) and os.path.abspath(entry or os.curdir) == here)
    ]
    package = os.path.dirname(here)
    try:
        if "vsite" not in sys.modules:
            _load_vsite(package)
        from vsite._startup import activate_from_environment
    except Exception as exc:
        if not os.environ.get("VSITE_MANIFEST"):
            raise  # Nothing asked for a site: site reports this like any sitecustomize error.
        # Running on without the site would run the program against the wrong packages.
        sys.stderr.write(f"vsite: error: cannot load vsite from {package}: {exc!r}\n")
        sys.stderr.flush()
        os._exit(2)
    activate_from_environment()
    # Import the sitecustomize this file shadows, in its place.
    this = sys.modules.pop("sitecustomize")
    try:
        __import__("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
        # None to chain to: the import system expects this module back in its place.
        sys.modules["sitecustomize"] = this


def _load_vsite(package: str) -> None:
    """Import the package at ``package`` as ``vsite``, as an import from its parent would.

    What importlib.util.module_from_spec does, spelled out: importlib.util costs
    contextlib, functools and collections at every interpreter start.
    """
    import os
    import sys

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


_boot()
del _boot
