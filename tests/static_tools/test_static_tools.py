"""Type checkers, IDEs and completion see the site (issue 16, SPEC section 5).

Tools that read an environment's directories instead of importing from it (mypy's and
pyright's module search, jedi's and IPython's module listings, pipdeptree's metadata scan)
must find in a vsite site what they find in a venv holding the same distributions.
Each test runs one tool against two environments made from the same pins
(requirements.txt: requests with types-requests, attrs, numpy, and the tools mypy, jedi,
ipython and pipdeptree, with every dependency):

- ``flat``: a venv made by ``python -m venv`` + ``pip install --no-deps -r``;
- ``site``: ``vsite install -r requirements.txt --no-deps -o DIR/manifest.json``, DIR being
  its environment shell (DIR/bin/python the front door).

A tool runs INSIDE an environment (after ``source ENV/bin/activate``: ``python -m mypy``,
a script using jedi or IPython, ``python -m pipdeptree``) or from OUTSIDE it, told the
environment's interpreter (the tool venv's ``mypy --python-executable ENV/bin/python``,
``jedi.create_environment(ENV/bin/python)``, ``pipdeptree --python ENV/bin/python``, and
the npm package pyright's ``--pythonpath ENV/bin/python``). Each test first checks that the
flat venv gives the expected, non-trivial answer (the imports resolve, the deliberate type
errors are found, the completions hold the site's packages), then that the site gives the
same one. Outputs are compared after normalising paths only (``<env>``, ``<cwd>``,
``<home>``, ``<tools>``, and ``<site-packages>`` for every directory packages come from:
tests/static_tools/tools.py) and the order of lines.

The suite runs on Python 3.11 (the pins are cp311 wheels) and skips elsewhere.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from tests.environment.envs import Outcome
from tests.static_tools.tools import Probe, Side, pinned

pytestmark = [pytest.mark.realwheels, pytest.mark.slow]

#: The file the type checkers check: a stub-only import (requests: its types come from
#: types-requests), an inline-typed one (attrs), a native package with inline types
#: (numpy), and a deliberate type error against each.
SAMPLE = """\
import attrs
import numpy
import requests


@attrs.define
class Point:
    x: int
    y: int


response = requests.get(1)
reveal_type(response)
zeros = numpy.zeros("a")
reveal_type(numpy.zeros(3))
point = Point("one", 2)
"""
#: Lines of SAMPLE with a deliberate type error, and the lines revealing a type.
ERROR_LINES = {12: "requests.get(1)", 14: 'numpy.zeros("a")', 16: 'Point("one", 2)'}
REVEAL_LINES = {13: "Response", 15: "ndarray"}


def _sample(cwd: Path) -> str:
    (cwd / "sample.py").write_text(SAMPLE, encoding="utf-8")
    return "sample.py"


def _same(flat: Any, site: Any, what: str, limit: int = 40) -> None:
    """``site`` equals ``flat``, or a failure naming what is missing from the site (for
    lists of names or lines) and showing the first differences."""
    if site == flat:
        return
    summary = ""
    if isinstance(flat, list) and isinstance(site, list):
        missing = [item for item in flat if item not in site]
        extra = [item for item in site if item not in flat]
        summary = f"missing from the site ({len(missing)}): {missing[:25]}\n"
        summary += f"only in the site ({len(extra)}): {extra[:25]}\n"
    expected = json.dumps(flat, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    got = json.dumps(site, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    diff = difflib.unified_diff(expected, got, "flat venv", "vsite site", lineterm="", n=1)
    shown = "\n".join(line for _, line in zip(range(limit), diff))
    pytest.fail(f"{what}: the site differs from the flat venv\n{summary}{shown}", pytrace=False)


# -- mypy -----------------------------------------------------------------------------------

#: No cache, no configuration file (an empty name reads none), plain output.
MYPY = ["--cache-dir", os.devnull, "--config-file", "", "--no-color-output"]
_MYPY_LINE = re.compile(r"^sample\.py:(\d+): (error|note): (.*?)(?:  \[([\w-]+)\])?$")


def _mypy(outcome: Outcome) -> dict[str, Any]:
    return {"code": outcome.code, "out": sorted(outcome.out.splitlines()), "err": outcome.err}


def _mypy_inside(side: Side, cwd: Path) -> dict[str, Any]:
    return _mypy(side.inside.run(["python", "-m", "mypy", *MYPY, _sample(cwd)], cwd))


def _mypy_outside(side: Side, cwd: Path) -> dict[str, Any]:
    tool = [str(side.tools / "bin" / "python"), "-m", "mypy"]
    target = ["--python-executable", str(side.inside.python)]
    return _mypy(side.outside.run([*tool, *target, *MYPY, _sample(cwd)], cwd))


def _check_mypy_flat(result: dict[str, Any]) -> None:
    """mypy in the flat venv resolves every import (requests through its stubs) and
    reports exactly the deliberate errors."""
    found: dict[int, list[tuple[str, str | None, str]]] = {}
    for line in result["out"]:
        match = _MYPY_LINE.match(line)
        if match:
            found.setdefault(int(match[1]), []).append((match[2], match[4], match[3]))
    kinds = {line: [(kind, code) for kind, code, _ in told] for line, told in found.items()}
    expected = {
        **{line: [("error", "arg-type")] for line in ERROR_LINES},
        **{line: [("note", None)] for line in REVEAL_LINES},
    }
    assert kinds == expected, f"flat venv: unexpected mypy diagnostics\n{result}"
    assert found[13][0][2] == 'Revealed type is "requests.models.Response"', result
    assert found[15][0][2].startswith('Revealed type is "numpy.ndarray['), result
    assert "Found 3 errors in 1 file (checked 1 source file)" in result["out"], result
    assert result["code"] == 1, result


def test_mypy_in_the_environment(probe: Probe, flat: Side, site: Side) -> None:
    """``python -m mypy sample.py`` with mypy installed in the environment: the site's
    mypy finds requests' stubs, attrs and numpy as the venv's does, so it reports the same
    three errors and revealed types."""
    expected = probe(_mypy_inside, flat)
    _check_mypy_flat(expected)
    _same(expected, probe(_mypy_inside, site), "python -m mypy sample.py")


def test_mypy_from_a_tool_venv(probe: Probe, flat: Side, site: Side) -> None:
    """mypy from a venv of its own (no requests, stubs, attrs or numpy there), run as
    ``mypy --python-executable ENV/bin/python``: it asks that interpreter where packages
    are, then reads those directories; pointed at the site's front door it must report what
    it reports for the venv."""
    expected = probe(_mypy_outside, flat)
    _check_mypy_flat(expected)
    _same(expected, probe(_mypy_outside, site), "mypy --python-executable ENV/bin/python")


# -- pyright --------------------------------------------------------------------------------

#: Rules pyright reports an import it cannot resolve (or resolves to a stub only) under.
UNRESOLVED = ("reportMissingImports", "reportMissingModuleSource", "reportMissingTypeStubs")


def _pyright(outcome: Outcome) -> dict[str, Any]:
    try:
        report = json.loads(outcome.out)
    except ValueError:
        raise AssertionError(f"pyright printed no JSON: {outcome}") from None
    diagnostics = [
        {
            "file": item.get("file", ""),
            "line": item["range"]["start"]["line"] + 1,
            "column": item["range"]["start"]["character"] + 1,
            "severity": item["severity"],
            "rule": item.get("rule", ""),
            "message": item["message"],
        }
        for item in report["generalDiagnostics"]
    ]
    diagnostics.sort(key=lambda d: (d["file"], d["line"], d["column"], d["rule"], d["message"]))
    counts = ("filesAnalyzed", "errorCount", "warningCount", "informationCount")
    summary = {key: report["summary"].get(key) for key in counts}
    return {"code": outcome.code, "diagnostics": diagnostics, "summary": summary}


def test_pyright(probe: Probe, flat: Side, site: Side, pyright_command: Path) -> None:
    """pyright (npm) given the environment's interpreter (``--pythonpath ENV/bin/python``)
    takes that interpreter's ``sys.path`` and resolves imports by reading it. In the venv
    every import resolves (no reportMissingImports / reportMissingModuleSource) and the
    deliberate errors are found; the site must give the same diagnostics."""

    def _pyright_outside(side: Side, cwd: Path) -> dict[str, Any]:
        argv = [str(pyright_command), "--outputjson", "--pythonpath", str(side.inside.python)]
        return _pyright(side.outside.run([*argv, _sample(cwd)], cwd))

    expected = probe(_pyright_outside, flat)
    diagnostics = expected["diagnostics"]
    unresolved = [d for d in diagnostics if d["rule"] in UNRESOLVED]
    assert not unresolved, f"flat venv: pyright does not resolve imports: {unresolved}"
    errors = {d["line"] for d in diagnostics if d["severity"] == "error"}
    assert errors == set(ERROR_LINES), f"flat venv: unexpected pyright errors: {diagnostics}"
    revealed = {d["line"]: d["message"] for d in diagnostics if d["severity"] == "information"}
    assert revealed.keys() == REVEAL_LINES.keys(), diagnostics
    assert revealed[13] == 'Type of "response" is "Response"', diagnostics
    assert expected["code"] == 1, expected
    _same(expected, probe(_pyright_outside, site), "pyright --pythonpath ENV/bin/python")


# -- jedi -----------------------------------------------------------------------------------

JEDI_QUERIES = ("import req", "from attr import a")
#: Run by the environment's python: jedi as an editor plugin running there uses it, the
#: environment it finds itself in (VIRTUAL_ENV, set by the activation).
JEDI_INSIDE = """\
import json, sys
import jedi
print(json.dumps({q: sorted(c.name for c in jedi.Script(q).complete()) for q in sys.argv[1:]}))
"""
#: Run by the tool venv's python: ``jedi.create_environment(ENV/bin/python)``.
JEDI_OUTSIDE = """\
import json, sys
import jedi
env = jedi.create_environment(sys.argv[1], safe=False)
done = {q: sorted(c.name for c in jedi.Script(q, environment=env).complete()) for q in sys.argv[2:]}
print(json.dumps(done))
"""


def _jedi_inside(side: Side, cwd: Path) -> Any:
    return json.loads(side.inside.run(["python", "-c", JEDI_INSIDE, *JEDI_QUERIES], cwd).ok())


def _jedi_outside(side: Side, cwd: Path) -> Any:
    python = str(side.tools / "bin" / "python")
    argv = [python, "-c", JEDI_OUTSIDE, str(side.inside.python), *JEDI_QUERIES]
    return json.loads(side.outside.run(argv, cwd).ok())


def _check_completions(found: list[str], query: str) -> None:
    """In the flat venv ``import req`` offers requests; ``from attr import a`` offers
    attr's names that start with an a (jedi also offers capitalised ones)."""
    if query == "import req":
        assert "requests" in found, f"flat venv: {query!r} completes to {found}"
    elif query == "from attr import a":
        assert {"asdict", "attrib", "attrs"} <= set(found), f"flat venv: {query!r}: {found}"
        assert all(name[:1].lower() == "a" for name in found), found
    else:
        assert found, f"flat venv: {query!r} completes to nothing"


@pytest.mark.parametrize("where", ["inside", "outside"])
@pytest.mark.parametrize("query", JEDI_QUERIES)
def test_jedi_completion(probe: Probe, flat: Side, site: Side, query: str, where: str) -> None:
    """jedi's completions (what an editor offers) with the environment's python: run in
    the environment, or from the tool venv through ``jedi.create_environment``. Module
    names for ``import req`` come from listing the directories of ``sys.path``; the names
    of ``from attr import a`` from the module jedi finds and reads."""
    case = _jedi_inside if where == "inside" else _jedi_outside
    expected = probe(case, flat)[query]
    _check_completions(expected, query)
    _same(expected, probe(case, site)[query], f"jedi completion of {query!r} ({where})")


# -- IPython --------------------------------------------------------------------------------

#: "import " asks for every top-level module: the whole of what the site exposes.
IPYTHON_QUERIES = ("import req", "from attr import a", "import ")
IPYTHON = """\
import json, sys
from IPython.core.completerlib import module_completion
from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.instance()  # module_completion lists nothing but builtins without a shell
found = {}
for line in sys.argv[1:]:
    word = line.rsplit(" ", 1)[-1]
    found[line] = sorted(n for n in set(module_completion(line)) if n.startswith(word))
print(json.dumps(found))
"""


def _ipython(side: Side, cwd: Path) -> Any:
    return json.loads(side.inside.run(["python", "-c", IPYTHON, *IPYTHON_QUERIES], cwd).ok())


@pytest.mark.parametrize("query", IPYTHON_QUERIES, ids=["import req", "from attr", "import *"])
def test_ipython_module_completion(probe: Probe, flat: Side, site: Side, query: str) -> None:
    """IPython's ``import`` completer (``IPython.core.completerlib.module_completion``) in
    the environment: it lists the modules in each ``sys.path`` directory (and imports the
    module after ``from``). The site must offer the same names: requests for
    ``import req``, attr's names for ``from attr import a``, and the same top-level
    modules for ``import`` (stdlib and site alike)."""
    expected = probe(_ipython, flat)[query]
    if query == "import ":
        everything = {"requests", "attr", "attrs", "numpy", "mypy", "jedi", "IPython", "json"}
        assert everything <= set(expected), f"flat venv: missing {everything - set(expected)}"
    else:
        _check_completions(expected, query)
    _same(expected, probe(_ipython, site)[query], f"IPython module_completion({query!r})")


# -- pipdeptree -----------------------------------------------------------------------------

PIPDEPTREE = ["-o", "text", "--encoding", "utf-8"]
_RESOLVED = re.compile(r"^\(resolved python: <env>/bin/python\)$")
_TOP = re.compile(r"^(\S+)==(\S+)$")
_NESTED = re.compile(r"^[\s│├└─┣┗━┃]+(\S+) \[required: .*, installed: (\S+)\](?: \(\*\))?$")


def _pipdeptree_inside(side: Side, cwd: Path) -> Any:
    return side.inside.run(["python", "-m", "pipdeptree", *PIPDEPTREE], cwd)._asdict()


def _pipdeptree_outside(side: Side, cwd: Path) -> Any:
    argv = [str(side.tools / "bin" / "pipdeptree"), "--python", str(side.inside.python)]
    return side.outside.run([*argv, *PIPDEPTREE], cwd)._asdict()


def _check_tree(result: dict[str, Any]) -> None:
    """The flat venv's tree holds every pinned distribution at its pinned version, and no
    warning (the set is closed: pip check passes): stderr tells only which interpreter
    pipdeptree inspected."""
    assert result["code"] == 0, result
    told = [line for line in result["err"].splitlines() if not _RESOLVED.match(line)]
    assert not told, result
    seen: dict[str, str] = {}
    for line in result["out"].splitlines():
        match = _TOP.match(line) or _NESTED.match(line)
        assert match, f"flat venv: a pipdeptree line not understood: {line!r}"
        seen[canonicalize_name(match[1])] = match[2]
    assert seen == pinned(), f"flat venv: pipdeptree shows {seen}"


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_pipdeptree(probe: Probe, flat: Side, site: Side, where: str) -> None:
    """pipdeptree (its engine scans the metadata directories of the interpreter's
    ``sys.path``) run in the environment (``python -m pipdeptree``) and from the tool
    venv (``pipdeptree --python ENV/bin/python``): the site's dependency tree, every
    ``name==version`` line and requirement under it, is the venv's."""
    case = _pipdeptree_inside if where == "inside" else _pipdeptree_outside
    expected = probe(case, flat)
    _check_tree(expected)
    got = probe(case, site)
    _same(expected["out"].splitlines(), got["out"].splitlines(), f"pipdeptree ({where})")
    _same(expected, got, f"pipdeptree ({where}): status and stderr")
