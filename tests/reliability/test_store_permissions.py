"""``vsite install`` into a store the user may not write: a StoreError, nothing left.

The suite runs as root, whom no file mode denies, so the attempt runs as ``nobody``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.reliability._support import as_other_user, warm_for_other_user
from tests.test_install import make_wheel


def test_a_store_the_user_cannot_write_is_a_store_error_and_stays_empty(
    shared_tmp: Path,
) -> None:
    wheel = make_wheel(shared_tmp / "wheels", "relstore", {"relstore.py": "X = 1\n"})
    store = shared_tmp / "store"
    store.mkdir(mode=0o755)  # root's: nobody may read it, not write it
    warm_for_other_user()
    # What the install path loads lazily, loaded here: nobody cannot read the stdlib.
    import concurrent.futures.thread  # noqa: F401

    from vsite.errors import StoreError
    from vsite.tools.install import check_wheels, install
    from vsite.tools.install.store import Store

    wheels = check_wheels([os.fspath(wheel)])  # tags need sysconfig: read them here

    def attempt() -> str:
        try:
            install(wheels, Store(os.fspath(store)), jobs=1)
        except StoreError as exc:
            return f"StoreError: {exc}"
        return "installed"

    outcome = as_other_user(attempt)
    assert isinstance(outcome, str)
    assert outcome.startswith("StoreError: cannot create the store"), outcome
    assert str(store) in outcome
    assert os.listdir(store) == []
