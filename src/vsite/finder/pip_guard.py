"""pip inside a site never removes the site's files: they are shared store entries.

A site's distributions live in its roots, which a store shares between environments
(and which are read-only, what root ignores). In an environment shell, pip already
leaves them alone: they are outside ``sys.prefix`` ("Not uninstalling X at ROOT,
outside environment ENV"), and what pip installs there lands in the environment's own
site-packages, which ranks first. A Python that is no venv (named by path under
``vsite exec``, or running ``vsite run -m pip``) takes every distribution for its own,
so pip's ``uninstall``, ``install --upgrade`` and ``--force-reinstall`` would delete a
root's files. This guard gives those distributions pip's own treatment of one outside
the environment: pip's ``UninstallPathSet.from_dist`` returns an empty set for them,
with one line naming vsite and what to do instead. It is attached when pip's
uninstaller is first imported (:mod:`vsite.finder.after_import`, from the metadata
finder); vsite never imports pip. Runtime path: stdlib only.
"""

from __future__ import annotations

import logging
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any

__all__ = ["guard"]


def guard(module: ModuleType, roots: Sequence[str], manifest: str) -> None:
    """Make ``module``'s ``UninstallPathSet.from_dist`` leave ``roots`` alone."""
    path_set = getattr(module, "UninstallPathSet", None)
    original = getattr(path_set, "from_dist", None)
    if path_set is None or original is None:
        return  # another pip than the ones this knows: its own rules apply
    prefixes = tuple(os.path.join(os.path.realpath(root), "") for root in roots)
    logger = logging.getLogger(module.__name__)

    def from_dist(cls: Any, dist: Any) -> Any:
        location = getattr(dist, "location", None)
        if (
            isinstance(location, str)
            and getattr(dist, "local", True)  # else pip's own "outside environment" says it
            and os.path.join(os.path.realpath(location), "").startswith(prefixes)
        ):
            logger.info(
                "Not uninstalling %s at %s: it is a root of the vsite site %s, shared and "
                "read-only (change the manifest with vsite install instead)",
                getattr(dist, "canonical_name", dist),
                location,
                manifest,
            )
            return cls(dist)
        return original.__func__(cls, dist)

    from_dist.__wrapped__ = original  # type: ignore[attr-defined]
    path_set.from_dist = classmethod(from_dist)
