"""vsite's boot hook, found through PYTHONPATH set by ``vsite exec``.

It loads the ``vsite`` package by location (so nothing else of vsite's installation
environment becomes importable), activates ``$VSITE_MANIFEST``, takes its own
directory back off ``sys.path`` and then runs the ``sitecustomize`` it shadows, so an
interpreter's (or the site's) own sitecustomize still runs.
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
    if "vsite" not in sys.modules:
        from importlib.util import module_from_spec, spec_from_file_location

        package = os.path.dirname(here)
        spec = spec_from_file_location(
            "vsite", os.path.join(package, "__init__.py"), submodule_search_locations=[package]
        )
        assert spec is not None and spec.loader is not None
        module = module_from_spec(spec)
        sys.modules["vsite"] = module
        spec.loader.exec_module(module)
    from vsite._startup import activate_from_environment

    activate_from_environment()
    # Run the sitecustomize this file shadows: the interpreter's, or the virtual site's.
    this = sys.modules.pop("sitecustomize")
    try:
        import sitecustomize  # noqa: F401
    except ImportError as exc:
        # None to chain to: the import system expects this module back in its place.
        sys.modules["sitecustomize"] = this
        if exc.name != "sitecustomize":
            raise


_boot()
del _boot
