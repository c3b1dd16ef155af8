"""The environment tests give the child processes they start.

Use: ``from tests.children import child_env``.
"""

from __future__ import annotations

import os

__all__ = ["child_env"]


def child_env(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH or an active manifest, plus ``extra``.

    Bytecode writing is off so children never write ``__pycache__`` into test roots.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VSITE_MANIFEST")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env
