"""Nothing is written inside a root or the farm when a user who could write there imports
with bytecode writing on: the bytecode goes to that user's cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from tests.builders import Tree, make_root, write_manifest
from tests.native_builders import EXT
from tests.reliability._support import (
    as_other_user,
    listing,
    owned_by_nobody,
    require_root,
    warm_for_other_user,
)


def test_roots_and_farm_are_never_written_by_a_user_who_owns_them(
    extension_bytes: bytes, shared_tmp: Path
) -> None:
    require_root()
    tree: Tree = {
        "ownnat": {
            "__init__.py": "from .rel_ext import KIND\n",
            "rel_ext" + EXT: extension_bytes,
            "more.py": "VALUE = 1\n",
        }
    }
    native = make_root(shared_tmp, "native", tree)
    pure = make_root(shared_tmp, "pure", {"ownpure": {"__init__.py": "", "mod.py": "VALUE = 2\n"}})
    manifest = write_manifest(shared_tmp / "m.json", [native, pure])
    for dirpath, dirnames, filenames in os.walk(shared_tmp):
        for name in [".", *dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), 65534, 65534)
    home = owned_by_nobody(shared_tmp / "home")
    warm_for_other_user()
    before = listing(native, pure)

    def owner() -> dict[str, Any]:
        import importlib

        import vsite

        os.environ["VSITE_DIR"] = str(home / "state")
        os.environ["VSITE_BYTECODE_DIR"] = str(home / "bytecode")
        sys.dont_write_bytecode = False
        handle = vsite.activate(manifest)
        try:
            names = ("ownnat", "ownnat.more", "ownpure", "ownpure.mod")
            modules = [importlib.import_module(name) for name in names]
            return {
                "writable": os.access(native, os.W_OK) and os.access(pure, os.W_OK),
                "farm": handle.farm.path if handle.farm is not None else None,
                "cached": [module.__cached__ for module in modules],
            }
        finally:
            vsite.deactivate(purge=True)

    found = as_other_user(owner)
    assert isinstance(found, dict)
    assert found["writable"]  # the importing user could have written into the roots
    assert listing(native, pure) == before
    farm = Path(found["farm"])
    assert [p for p in map(str, farm.rglob("*")) if "__pycache__" in p] == []
    for cached in found["cached"]:
        assert cached.startswith(str(home / "bytecode")), cached
        assert os.path.isfile(cached)
