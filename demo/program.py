"""The demo program: uses real wheels the way applications do, one line per check.

Run it under some layout of the roots; it prints one JSON object (check -> what it saw).
``program.py --compare A.json B.json`` prints two such outputs side by side.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

# Importing distutils from the standard library warns on 3.10/3.11 (removed in 3.12).
warnings.simplefilter("ignore", DeprecationWarning)


def namespace() -> str:
    """PEP 420: ``jaraco`` has no __init__; three wheels each add a subpackage."""
    import jaraco.context
    import jaraco.functools
    import jaraco.text

    lorem = jaraco.text.lorem_ipsum.split(",")[0]  # read through importlib.resources
    return f"jaraco.* from {len(list(jaraco.__path__))} roots; text.lorem_ipsum = {lorem!r}"


def pkgutil_package() -> str:
    """backports/__init__.py (pkgutil-style) from backports.tarfile; configparser adds a portion."""
    from importlib.resources import files

    # Both subpackages import either way: backports/__init__.py extends its __path__ ...
    from backports import configparser, tarfile  # noqa: F401

    # ... but the package's resources are those of the directory that holds __init__.py.
    listing = sorted(p.name for p in files("backports").iterdir() if p.name != "__pycache__")
    return "files('backports') lists " + ", ".join(listing)


def pth_file() -> str:
    """setuptools' distutils-precedence.pth makes ``import distutils`` setuptools' copy."""
    try:
        import distutils
    except ImportError as exc:
        return f"import distutils: {type(exc).__name__}: {exc}"
    where = os.path.dirname(distutils.__file__ or "")
    if where.endswith(os.path.join("setuptools", "_distutils")):
        return "distutils is setuptools/_distutils (the .pth ran)"
    return "distutils is the stdlib's (the .pth never ran)"


def metadata() -> str:
    from importlib.metadata import distributions, entry_points, version

    names = {d.metadata["Name"] for d in distributions()}
    found = entry_points()
    if hasattr(found, "select"):
        found = found.select(group="console_scripts")
    else:  # Python 3.9: a dict of groups
        found = found.get("console_scripts", [])
    scripts = sorted({ep.name for ep in found})
    return f"{len(names)} distributions, scipy {version('scipy')}, scripts: {' '.join(scripts)}"


def native() -> str:
    """numpy + scipy: extension modules that load their bundled *.libs through rpaths."""
    import numpy
    import scipy.linalg
    import scipy.special

    det = scipy.linalg.det(numpy.array([[2.0, 1.0], [1.0, 3.0]]))
    return (
        f"numpy {numpy.__version__}, scipy.linalg.det = {det:.1f}, "
        f"scipy.special.gamma(5) = {scipy.special.gamma(5):.0f}"
    )


def native_across_wheels() -> str:
    """eigenpy's extension module finds libboost_python in ANOTHER wheel, cmeel-boost.

    Its RUNPATH, ``$ORIGIN/../../../../lib``, is ``<site-packages>/cmeel.prefix/lib``: one
    directory in a flat site-packages, filled by both wheels. And eigenpy itself lives in
    ``cmeel.prefix/lib/pythonX.Y/site-packages``, which cmeel.pth puts on sys.path.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("eigenpy")
    except PackageNotFoundError:  # the pins have it only where wheels exist
        return "eigenpy not in this site (its wheels are for Python 3.10+)"
    try:
        import eigenpy
    except ModuleNotFoundError as exc:
        # cmeel.pth never ran. Do what it does, as a user working around that would:
        # each sys.path entry's cmeel.prefix sitelib appended; then the import gets as
        # far as loading the extension module, whose rpath must find libboost_python.
        missing = f"{type(exc).__name__}: {exc} (cmeel.pth never ran)"
        python = "python{}.{}".format(*sys.version_info[:2])
        sitelib = os.path.join("cmeel.prefix", "lib", python, "site-packages")
        for entry in list(sys.path):
            candidate = os.path.join(entry, sitelib)
            if os.path.isdir(candidate) and candidate not in sys.path:
                sys.path.append(candidate)
        try:
            import eigenpy
        except ImportError as again:
            return f"FAILS: {missing}; with its sitelib added by hand: {again}"
    import numpy

    # A call into the boost.python extension, numpy -> Eigen -> numpy.
    rotation = eigenpy.AngleAxis(numpy.pi / 2, numpy.array([0.0, 0.0, 1.0])).matrix()
    column = ", ".join(f"{x:.0f}" for x in rotation[:, 0] + 0.0)
    return f"eigenpy {eigenpy.__version__}, AngleAxis(pi/2, z).matrix()[:, 0] = [{column}]"


def _child_report() -> str:
    return pth_file() + " | " + pkgutil_package()


def spawned_child() -> str:
    """A multiprocessing 'spawn' worker: a fresh interpreter, started by this one."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        child = pool.apply(_child_report)
    same = child == _child_report()
    return "spawn worker sees the same site" if same else f"spawn worker differs: {child}"


# metadata first: importing distutils through setuptools' shim imports setuptools, which
# puts its vendored distributions on sys.path (as it does in any site-packages).
CHECKS = {
    "importlib.metadata": metadata,
    "namespace package (PEP 420)": namespace,
    "pkgutil package over 2 wheels": pkgutil_package,
    ".pth file (distutils shim)": pth_file,
    "native code (numpy, scipy)": native,
    "native code across wheels (eigenpy -> cmeel-boost)": native_across_wheels,
    "multiprocessing child": spawned_child,
}


def run_checks() -> dict[str, str]:
    results = {}
    for title, check in CHECKS.items():
        try:
            results[title] = check()
        except Exception as exc:  # A check that fails is a result, not a crash.
            results[title] = f"FAILS: {type(exc).__name__}: {exc}"
    return results


def compare(left_file: str, right_file: str) -> None:
    with open(left_file, encoding="utf-8") as stream:
        left = json.load(stream)
    with open(right_file, encoding="utf-8") as stream:
        right = json.load(stream)
    for title in CHECKS:
        a, b = left.get(title, "?"), right.get(title, "?")
        print(f"{title}")
        print(f"  front door : {a}")
        if a == b:
            print("  PYTHONPATH : same")
        else:
            print(f"  PYTHONPATH : {b}    <-- differs")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        compare(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(run_checks()))
