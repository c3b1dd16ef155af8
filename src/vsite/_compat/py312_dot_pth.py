"""Python 3.12 and older (delete with 3.12): whether ``site.addsitedir`` skips ``.pth``
files whose name starts with ``.``.

gh-113659 added the filter in 3.13.0 and backported it to 3.8.19, 3.9.19, 3.10.14,
3.11.8 and 3.12.2; from 3.13 every release has it, and this module's answer is True.
"""

import sys

__all__ = ["skips_dot_files"]

# The first patch release of each feature release that has the filter.
_DOT_FILTER_SINCE = {(3, 8): 19, (3, 9): 19, (3, 10): 14, (3, 11): 8, (3, 12): 2}


def skips_dot_files(version: "tuple[int, ...] | None" = None) -> bool:
    """Whether ``site.addsitedir`` ignores ``.pth`` files whose name starts with ``.``.

    With ``version``, what CPython's releases do (gh-113659: 3.8.19, 3.9.19, 3.10.14,
    3.11.8, 3.12.2, 3.13+). Without, what the running interpreter's ``site`` does, read
    off its code, so a distribution's backport of the fix counts too.
    """
    if version is None:
        found = _addsitedir_filters_dots()
        if found is not None:
            return found
        version = tuple(sys.version_info[:3])
    since = _DOT_FILTER_SINCE.get((version[0], version[1]))
    if since is None:
        return version[:2] >= (3, 13)
    return version[2] >= since


def _addsitedir_filters_dots() -> "bool | None":
    """Whether the running ``site.addsitedir`` calls ``startswith`` (only the dot filter
    does); None when it is not a plain function to look into."""
    import site

    code = getattr(site.addsitedir, "__code__", None)
    if code is None:
        return None
    stack = [code]
    while stack:
        code = stack.pop()
        if "startswith" in code.co_names:
            return True
        # The filter sits in a list comprehension: its own code object before 3.12.
        stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return False
