"""Shared fixtures: in-process tests leave the interpreter as they found it.

``require_or_skip`` is the one place that decides whether a real-wheel suite that cannot
get what it needs fails (required mode: ``CI=true``, or ``VSITE_REQUIRE_REAL_WHEELS=1``)
or skips with the reason (a newcomer's machine without the wheels).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from vsite.activation import active, deactivate

#: "1" makes the real-wheel suites required, "0" optional; unset, ``CI=true`` decides.
REQUIRE_REAL_WHEELS = "VSITE_REQUIRE_REAL_WHEELS"


def required_mode() -> str | None:
    """The setting that makes the real-wheel suites required here, or None when they may skip."""
    value = os.environ.get(REQUIRE_REAL_WHEELS, "")
    if value == "1":
        return f"{REQUIRE_REAL_WHEELS}=1"
    if value == "0":
        return None
    if value:
        raise pytest.UsageError(f"{REQUIRE_REAL_WHEELS}={value!r}: use 1 (required) or 0")
    ci = os.environ.get("CI", "")
    return f"CI={ci}" if ci.lower() in ("true", "1") else None


def require_or_skip(reason: str) -> NoReturn:
    """Something a real-wheel suite needs cannot be had: a failure carrying ``reason`` in
    required mode (CI), a skip carrying it on one line (as ``-rs`` shows it) elsewhere.
    Not for skips about the interpreter or platform, which stay skips everywhere."""
    why = required_mode()
    if why is not None:
        note = f"[required because {why}; {REQUIRE_REAL_WHEELS}=0 skips instead]"
        pytest.fail(f"{reason}\n{note}", pytrace=False)
    one_line = " | ".join(line.strip() for line in reason.splitlines() if line.strip())
    pytest.skip(f"{one_line} (a failure under CI=true or {REQUIRE_REAL_WHEELS}=1)")


class SysState:
    """A copy of the import system's global state, to compare or restore."""

    def __init__(self) -> None:
        self.path = list(sys.path)
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.path_importer_cache = dict(sys.path_importer_cache)
        self.modules = dict(sys.modules)

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.path,
            self.meta_path,
            self.path_hooks,
            self.path_importer_cache,
            self.modules,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SysState):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    __hash__ = None  # type: ignore[assignment]

    def changes_since(self, before: SysState) -> dict[str, object]:
        """What differs from ``before``, per part (empty when nothing does)."""
        found: dict[str, object] = {}
        for part in ("path", "meta_path", "path_hooks"):
            old, new = getattr(before, part), getattr(self, part)
            if old != new:
                found[part] = {"before": old, "after": new}
        for part in ("path_importer_cache", "modules"):
            old, new = getattr(before, part), getattr(self, part)
            added = sorted(set(new) - set(old))
            if part == "modules":  # vsite loads its own modules on first use: no program state
                added = [name for name in added if name.split(".")[0] != "vsite"]
            removed = sorted(set(old) - set(new))
            replaced = sorted(k for k in set(old) & set(new) if old[k] is not new[k])
            if added or removed or replaced:
                found[part] = {"added": added, "removed": removed, "replaced": replaced}
        return found

    def restore(self) -> None:
        sys.path[:] = self.path
        sys.meta_path[:] = self.meta_path
        sys.path_hooks[:] = self.path_hooks
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(self.path_importer_cache)
        for name in set(sys.modules) - set(self.modules):
            del sys.modules[name]
        sys.modules.update(self.modules)


@pytest.fixture(scope="session", autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Farms, index caches and bytecode of this test session go to its own directory,
    not /tmp or the user's cache."""
    state = tmp_path_factory.mktemp("state")
    wanted = {"VSITE_DIR": state / "vsite", "VSITE_BYTECODE_DIR": state / "bytecode"}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update({name: str(path) for name, path in wanted.items()})
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _no_site_left_active() -> Iterator[None]:
    """A test that activates a site in this process gets it deactivated afterwards."""
    yield
    if active() is not None:
        deactivate(purge=True)


@pytest.fixture
def sys_state() -> Iterator[SysState]:
    """The import system's state before the test; restored after it."""
    state = SysState()
    yield state
    if active() is not None:
        deactivate(purge=True)
    state.restore()
