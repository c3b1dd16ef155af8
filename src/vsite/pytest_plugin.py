"""pytest plugin: run a test session against a manifest's virtual site.

``pytest --vsite-manifest PATH`` (or the ini option ``vsite_manifest``, relative to the
rootdir) activates the site before conftest files and test modules are imported, as if
the manifest's roots were the interpreter's site-packages. Python processes the tests
start (``subprocess`` with ``sys.executable``, multiprocessing children) see the site
too, through the environment ``vsite exec`` uses; pytest-xdist workers activate it from
the same option. The ``vsite`` fixture activates a manifest for one test only.
"""

from __future__ import annotations

import os

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator

    from vsite.activation import Handle
    from vsite.manifest import Manifest

__all__ = ["SiteFixture"]

_SESSION = pytest.StashKey["_Session"]()


class _Session:
    """The session's site: its handle, whether we activated it, the env we replaced."""

    def __init__(self, handle: Handle, owned: bool) -> None:
        self.handle = handle
        self.owned = owned
        self.saved_env: dict[str, str | None] | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vsite", "virtual site-packages (vsite)")
    group.addoption(
        "--vsite-manifest",
        dest="vsite_manifest",
        metavar="PATH",
        default=None,
        help="activate this vsite manifest for the whole session (overrides the ini option)",
    )
    parser.addini(
        "vsite_manifest",
        "vsite manifest to activate for the whole session, relative to the rootdir",
        default="",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Activate before any conftest or test module is imported."""
    path = _manifest_path(early_config)
    if path is None:
        return
    # Imported only when used: pytest loads this plugin in every session of the env.
    from vsite.activation import activate, active
    from vsite.errors import VsiteError, one_line

    before = active()
    try:
        handle = activate(path)
    except VsiteError as exc:
        message = f"vsite: cannot activate the virtual site: {one_line(exc)}"
        raise pytest.UsageError(message) from None
    early_config.stash[_SESSION] = _Session(handle, owned=handle is not before)


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    # Export the site to child interpreters only once the session has started:
    # pytest-xdist's workers are spawned in this hook and activate from the option
    # themselves (they replace sys.path with the controller's start-up copy, which
    # would drop a site activated at their interpreter start).
    yield
    state = session.config.stash.get(_SESSION, None)
    if state is not None and state.saved_env is None:
        state.saved_env = _export(state.handle)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_SESSION, None)
    if state is None:
        return
    del config.stash[_SESSION]
    if state.saved_env is not None:
        for name, value in state.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if state.owned:
        state.handle.deactivate()


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_SESSION, None)
    if state is None:
        return None
    handle = state.handle
    return f"vsite: {handle.index.source} ({len(handle.roots)} roots)"


class SiteFixture:
    """Activates a manifest for the current test; the site is removed after it.

    Calling it again with another manifest replaces the first. At teardown the site is
    deactivated and the modules imported from its roots are purged from ``sys.modules``.
    A site that was already active (the session's) is left as it is; a different
    manifest while the session's site is active raises ActivationError.
    """

    def __init__(self) -> None:
        self.handle: Handle | None = None
        self._owned = False

    def __call__(self, manifest: Manifest | str | os.PathLike[str]) -> Handle:
        from vsite.activation import activate, active

        self.close()
        before = active()
        self.handle = activate(manifest)
        self._owned = self.handle is not before
        return self.handle

    def close(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None and self._owned:
            handle.deactivate(purge=True)
        self._owned = False


@pytest.fixture
def vsite() -> Generator[SiteFixture, None, None]:
    """``vsite(manifest) -> Handle``: the manifest's site active until the test ends."""
    site = SiteFixture()
    try:
        yield site
    finally:
        site.close()


def _manifest_path(config: pytest.Config) -> str | None:
    option = getattr(config.known_args_namespace, "vsite_manifest", None)
    if isinstance(option, str) and option:
        return os.path.abspath(os.path.expanduser(option))
    value = config.getini("vsite_manifest")
    if isinstance(value, str) and value.strip():
        return os.path.join(str(config.rootpath), os.path.expanduser(value.strip()))
    return None


def _export(handle: Handle) -> dict[str, str | None]:
    """Make child interpreters boot the site as ``vsite exec`` does; return what was set."""
    from vsite._startup import BOOT_DIR, ENV_MANIFEST

    saved = {name: os.environ.get(name) for name in (ENV_MANIFEST, "PYTHONPATH")}
    if saved[ENV_MANIFEST] == handle.index.source:
        return {}  # Already inherited from an outer `vsite exec`.
    os.environ[ENV_MANIFEST] = handle.index.source
    previous = saved["PYTHONPATH"]
    os.environ["PYTHONPATH"] = BOOT_DIR + (os.pathsep + previous if previous else "")
    return saved
