"""The pytest plugin, run in real pytest subprocesses (pytester) over roots on tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.builders import make_root, write_manifest

pytest_plugins = ["pytester"]

# A package shipped in one root and a plugin-style module in another; the site is what
# makes them importable: they are nowhere on the test interpreter's own sys.path.
TREE_A = {"vsite_probe_a": {"__init__.py": "WHO = 'a'\n"}}
TREE_B = {"vsite_probe_b.py": "from vsite_probe_a import WHO\n"}


@pytest.fixture
def site(pytester: pytest.Pytester) -> Path:
    """A two-root manifest under pytester's directory, at site/m.json."""
    base = pytester.path / "site"
    a = make_root(base, "a", TREE_A, dist="probe-a")
    b = make_root(base, "b", TREE_B, dist="probe-b")
    return write_manifest(base / "m.json", [a, b])


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if k not in ("seconds", "second")}


def test_site_is_active_before_conftest_and_test_modules_import(
    pytester: pytest.Pytester, site: Path
) -> None:
    pytester.makeconftest("import vsite_probe_b\n")
    pytester.makepyfile(
        test_probe=f"""
        import vsite_probe_a

        def test_imported_from_the_site():
            assert vsite_probe_a.WHO == "a"
            assert vsite_probe_a.__file__.startswith({str(site.parent / "a")!r})
        """
    )
    result = pytester.runpytest_subprocess("--vsite-manifest", str(site))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"vsite: {site} (2 roots)"])

    # Without the plugin's option the conftest cannot even be imported.
    plain = pytester.runpytest_subprocess()
    assert plain.ret == pytest.ExitCode.USAGE_ERROR
    plain.stderr.fnmatch_lines(["*No module named 'vsite_probe_b'*"])


def test_ini_option_is_relative_to_the_rootdir(pytester: pytest.Pytester, site: Path) -> None:
    pytester.makeini("[pytest]\nvsite_manifest = site/m.json\n")
    tests = pytester.mkpydir("tests")
    (tests / "test_probe.py").write_text(
        "import vsite_probe_b\n\ndef test_probe():\n    assert vsite_probe_b.WHO == 'a'\n",
        encoding="utf-8",
    )
    # From a subdirectory: a cwd-relative "site/m.json" would not exist.
    os.chdir(tests)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_command_line_option_overrides_the_ini_option(
    pytester: pytest.Pytester, site: Path
) -> None:
    pytester.makeini("[pytest]\nvsite_manifest = nowhere/m.json\n")
    pytester.makepyfile(test_probe="import vsite_probe_a\n\ndef test_probe():\n    pass\n")
    result = pytester.runpytest_subprocess("--vsite-manifest", str(site))
    result.assert_outcomes(passed=1)

    broken = pytester.runpytest_subprocess()
    assert broken.ret == pytest.ExitCode.USAGE_ERROR
    broken.stderr.fnmatch_lines(["*vsite: cannot activate the virtual site: *nowhere*m.json*"])


def test_unusable_manifest_is_a_usage_error_naming_the_root(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.json", [tmp_path / "missing-root"])
    pytester.makepyfile(test_probe="def test_probe():\n    pass\n")
    result = pytester.runpytest_subprocess("--vsite-manifest", str(manifest))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*root does not exist at /roots/0*missing-root*"])
    assert "Traceback" not in result.stderr.str()


def test_packages_shipped_in_a_root_collect_with_pyargs(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    tests = {"__init__.py": "", "test_inside.py": "def test_inside():\n    pass\n"}
    root = make_root(tmp_path, "shipped", {"vsite_shipped": {"__init__.py": "", "tests": tests}})
    manifest = write_manifest(tmp_path / "m.json", [root])
    result = pytester.runpytest_subprocess(
        "--vsite-manifest", str(manifest), "--pyargs", "vsite_shipped"
    )
    result.assert_outcomes(passed=1)


def test_python_subprocesses_of_the_tests_see_the_site(
    pytester: pytest.Pytester, site: Path
) -> None:
    pytester.makepyfile(
        test_child="""
        import subprocess, sys

        def test_child_imports_from_the_site():
            out = subprocess.run(
                [sys.executable, "-c", "import vsite_probe_b; print(vsite_probe_b.WHO)"],
                capture_output=True, text=True, check=True,
            ).stdout
            assert out.strip() == "a"
        """
    )
    result = pytester.runpytest_subprocess("--vsite-manifest", str(site))
    result.assert_outcomes(passed=1)


def test_xdist_workers_activate_the_same_site(pytester: pytest.Pytester, site: Path) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest("import vsite_probe_a\n")
    pytester.makepyfile(
        test_workers=f"""
        import os, sys
        import pytest
        import vsite.activation
        import vsite_probe_b

        @pytest.mark.parametrize("n", range(4))
        def test_in_a_worker(n):
            assert os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw")
            handle = vsite.activation.active()
            assert handle is not None and handle.manifest.source == {str(site)!r}
            assert sys.path.count(handle.site_path) == 1
            assert vsite_probe_b.WHO == "a"
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--vsite-manifest", str(site))
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 workers*"])


FIXTURE_TESTS = """
import importlib.util
import sys
import pytest

MANIFEST = %r

def test_1_fixture_activates_for_this_test(vsite):
    handle = vsite(MANIFEST)
    assert handle.active
    import vsite_probe_b
    assert vsite_probe_b.WHO == "a"
    assert handle.site_path in sys.path

def test_2_site_and_its_modules_are_gone_afterwards():
    assert "vsite_probe_a" not in sys.modules
    assert "vsite_probe_b" not in sys.modules
    assert importlib.util.find_spec("vsite_probe_a") is None
    import vsite.activation
    assert vsite.activation.active() is None

def test_3_failing_test_still_undoes_it(vsite):
    vsite(MANIFEST)
    import vsite_probe_a
    raise AssertionError("deliberate")

def test_4_after_a_failure_too():
    assert "vsite_probe_a" not in sys.modules
    with pytest.raises(ImportError):
        import vsite_probe_a
"""


def test_fixture_activates_for_one_test_and_purges_after(
    pytester: pytest.Pytester, site: Path
) -> None:
    pytester.makepyfile(test_fixture=FIXTURE_TESTS % str(site))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_3_failing_test_still_undoes_it - AssertionError*"])


def test_fixture_leaves_the_session_site_active(
    pytester: pytest.Pytester, site: Path, tmp_path: Path
) -> None:
    other = write_manifest(tmp_path / "other.json", [make_root(tmp_path, "c", dist="c")])
    pytester.makepyfile(
        test_fixture=f"""
        import pytest
        from vsite import ActivationError
        from vsite.activation import active

        def test_same_manifest_as_the_session(vsite):
            session = active()
            assert session is not None
            assert vsite({str(site)!r}) is session

        def test_another_manifest_is_refused(vsite):
            with pytest.raises(ActivationError, match="another manifest is active"):
                vsite({str(other)!r})

        def test_session_site_still_active():
            assert active() is not None
            import vsite_probe_a
        """
    )
    result = pytester.runpytest_subprocess("--vsite-manifest", str(site))
    result.assert_outcomes(passed=3)


def test_without_a_manifest_the_plugin_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import os
        from vsite.activation import active

        def test_plain():
            assert active() is None
            assert "VSITE_MANIFEST" not in os.environ
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_pytest_under_vsite_exec_starts_with_warnings_as_errors(
    pytester: pytest.Pytester, site: Path
) -> None:
    # vsite is imported by the boot hook before pytest marks its plugins' packages for
    # assertion rewriting; that must not warn (fatal under filterwarnings = error).
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_probe="import vsite_probe_b\n\ndef test_probe():\n    pass\n")
    result = pytester.run(
        sys.executable, "-m", "vsite", "exec", str(site), "--",
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
    )  # fmt: skip
    assert "PytestAssertRewriteWarning" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
