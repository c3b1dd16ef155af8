"""Acceptance: jsonschema's own test suite, shipped inside its wheel, under the plugin.

``pytest --pyargs jsonschema`` runs once against one flat ``--target`` directory holding
every wheel (on PYTHONPATH, ahead of the interpreter's site-packages like a venv's), and
once with ``--vsite-manifest`` over one root per wheel; the outcome counts and the
failing tests must be the same. The wheels (jsonschema, its dependencies and jsonpath-ng,
which its tests import) come from ``pip download`` for this interpreter into a cache
outside the repository (``VSITE_TESTS_CACHE``, default ~/.cache/vsite-tests); when they
cannot be had the tests skip, or fail in required mode (tests/conftest.py). The
JSON-Schema-Test-Suite module is left out: it needs a checkout of the suite's data,
which no wheel ships, and fails to collect alike in both layouts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests import real_roots
from tests.conftest import require_or_skip
from tests.real_roots import install_target, pip_download

pytestmark = [pytest.mark.realwheels, pytest.mark.slow]

REQUIREMENTS = ["jsonschema==4.25.1", "jsonpath-ng"]
CACHE = real_roots.CACHE / f"jsonschema-suite-py{sys.version_info[0]}{sys.version_info[1]}"
SUITE_ARGS = [
    "-p",
    "no:cacheprovider",
    "-q",
    "-rfE",
    "--pyargs",
    "jsonschema",
    # pytest makes a relative glob absolute against the cwd; "*" also matches "/".
    "--ignore-glob=/*/jsonschema/tests/test_jsonschema_test_suite.py",
]
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "errors")


def download_wheels() -> list[Path]:
    """The wheels for this interpreter, downloaded once (when they can't be had: a skip, or
    a failure in required mode)."""
    wheels = CACHE / "wheels"
    stamp = wheels / ".complete"
    if not stamp.exists():
        shutil.rmtree(wheels, ignore_errors=True)
        pip_download(wheels, "--only-binary=:all:", *REQUIREMENTS)
        stamp.write_text("".join(f"{p.name}\n" for p in sorted(wheels.glob("*.whl"))))
    found = [wheels / name for name in stamp.read_text().split()]
    if not found or not all(w.is_file() for w in found):
        require_or_skip(f"the wheel set in {wheels} is incomplete; delete it to download again")
    return found


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(flat --target directory, manifest over one root per wheel)."""
    if importlib.util.find_spec("jsonschema") is not None:
        pytest.skip("jsonschema is installed in the test interpreter: the runs prove nothing")
    wheels = download_wheels()
    flat = install_target(CACHE / "flat", wheels)
    roots = [install_target(CACHE / "roots" / w.name[: -len(".whl")], [w]) for w in wheels]
    manifest = tmp_path_factory.mktemp("jsonschema") / "manifest.json"
    manifest.write_text(json.dumps({"vsite": 1, "roots": [str(r) for r in roots]}))
    return flat, manifest


Outcome = tuple[dict[str, int], set[str], str]


def run_suite(cwd: Path, *args: str, pythonpath: Path | None = None) -> Outcome:
    """(outcome counts, failing/erroring tests, output) of one run of the suite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VSITE_MANIFEST"))}
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the cached installs as pip wrote them
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITE_ARGS, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary) if word in OUTCOMES}
    counts["error"] = counts.pop("error", 0) + counts.pop("errors", 0)
    # "FAILED .../jsonschema/tests/test_x.py::Test::test_y - why": the test, wherever it is.
    bad = set(re.findall(r"^(?:FAILED|ERROR) \S*?(jsonschema/tests/\S+)", output, re.MULTILINE))
    assert counts.get("passed", 0) > 100, output[-3000:]
    return counts, bad, output


@pytest.fixture(scope="module")
def flat_outcome(layouts: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    flat, _ = layouts
    # The flat directory is what makes jsonschema importable: a plain child can't.
    plain = subprocess.run([sys.executable, "-c", "import jsonschema"], capture_output=True)
    assert plain.returncode != 0
    return run_suite(tmp_path_factory.mktemp("flat-run"), pythonpath=flat)


def test_suite_has_the_same_outcomes_as_in_a_flat_site_packages(
    layouts: tuple[Path, Path], flat_outcome: Outcome, tmp_path: Path
) -> None:
    _, manifest = layouts
    counts, bad, output = run_suite(tmp_path, "--vsite-manifest", str(manifest))

    assert (counts, bad) == flat_outcome[:2], output[-3000:]
    print(f"jsonschema suite: flat {flat_outcome[0]}, vsite {counts}")


def test_suite_under_xdist_workers_has_the_same_outcomes(
    layouts: tuple[Path, Path], flat_outcome: Outcome, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    _, manifest = layouts
    counts, bad, output = run_suite(tmp_path, "-n", "2", "--vsite-manifest", str(manifest))

    assert (counts, bad) == flat_outcome[:2], output[-3000:]
    print(f"jsonschema suite: flat {flat_outcome[0]}, vsite -n 2 {counts}")
