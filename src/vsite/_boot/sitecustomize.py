"""vsite's boot hook, found through PYTHONPATH set by ``vsite exec``.

It activates ``$VSITE_MANIFEST`` (through ``_vsite_boot`` beside it, which loads the
``vsite`` package by location so nothing else of vsite's installation environment
becomes importable, and takes this directory back off ``sys.path``), then imports the
``sitecustomize`` it shadows, the one a flat site would run: the first on ``sys.path``
after the site is active (a later ``PYTHONPATH`` entry, the standard library, a root of
the site, the interpreter's site-packages). ``site`` reports that module's errors as it
would without vsite.
"""


def _boot() -> None:
    import sys

    from _vsite_boot import boot_from_environment  # type: ignore[import-not-found]  # beside

    boot_from_environment()
    # Import the sitecustomize this file shadows, in its place.
    this = sys.modules.pop("sitecustomize")
    try:
        __import__("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
        # None to chain to: the import system expects this module back in its place.
        sys.modules["sitecustomize"] = this


_boot()
del _boot
