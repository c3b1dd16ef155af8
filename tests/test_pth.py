"""``.pth`` files of all roots run once, in site order, with ``site.addsitedir`` semantics.

The reference is a flat directory processed by the running interpreter's own ``site``
(SPEC section 1): probes compare what the files did (their log, the ``sitedir`` their
frame saw, sys.path) and stderr. The naive layout runs no ``.pth`` file at all.
"""

from __future__ import annotations

import json
import os
import site
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import vsite
from tests.builders import make_root, write_manifest, write_tree
from tests.differential import build_flat, normalise, run_layouts
from vsite.errors import ActivationError
from vsite.pth import run_pth_files, skips_dot_files

# Each import line logs (tag, the sitedir its frame saw) on sys; `sitedir` as old
# *-nspkg.pth files read it.
LOG = "import sys; sys.__dict__.setdefault('pth_log', []).append(({tag!r}, {what}))"
SITEDIR = "sys._getframe(1).f_locals['sitedir']"

PROBE = """\
import json, sys
print(json.dumps({"log": getattr(sys, "pth_log", None), "path": sys.path}))
"""


def log(tag: str, what: str = "None") -> str:
    return LOG.format(tag=tag, what=what)


def site_entries(output: dict[str, object]) -> list[str]:
    """The sys.path entries under the site (flat dir, roots, site entry), in order."""
    paths = output["path"]
    assert isinstance(paths, list)
    return [p for p in paths if p == "<site>" or p.startswith("<site>/")]


# -- the dot-file rule ---------------------------------------------------------------


# Names site.addsitedir may treat apart: dot-files (gh-113659, in patch releases and in
# distributions' backports), other leading punctuation, and a bare suffix.
PTH_NAMES = (
    "a.pth",
    ".dot.pth",
    "..two-dots.pth",
    ".pth",
    "_under.pth",
    "-dash.pth",
    "~tilde.pth",
    "#hash.pth",
    " space.pth",
    "z.pth",
)


def _ran(sitedir: Path, process: Callable[[], None]) -> list[str]:
    """The ``.pth`` files of ``sitedir`` that ``process`` ran, in the order it ran them."""
    path, modules = list(sys.path), dict(sys.modules)
    sys.__dict__["pth_ran"] = []
    try:
        process()
        ran: list[str] = sys.__dict__["pth_ran"]
    finally:
        del sys.__dict__["pth_ran"]
        sys.path[:] = path
        for name in set(sys.modules) - set(modules):
            del sys.modules[name]
    return ran


def test_pth_files_run_are_those_this_interpreters_addsitedir_runs(tmp_path: Path) -> None:
    # The reference is the running stdlib, not a table: whichever patch release (or
    # distribution backport) of the dot-file and hidden-file rules this is.
    sitedir = write_tree(
        tmp_path / "site",
        {name: f"import sys; sys.pth_ran.append({name!r})\n" for name in PTH_NAMES},
    )
    names = list(PTH_NAMES)
    flagged = sitedir / "flagged-hidden.pth"
    if hasattr(os, "chflags") and hasattr(stat, "UF_HIDDEN"):  # BSD/macOS file flags
        flagged.write_text(f"import sys; sys.pth_ran.append({flagged.name!r})\n", encoding="utf-8")
        os.chflags(flagged, stat.UF_HIDDEN)
        names.append(flagged.name)
    by_site = _ran(sitedir, lambda: site.addsitedir(str(sitedir), set()))
    by_vsite = _ran(sitedir, lambda: run_pth_files([(n, str(sitedir)) for n in sorted(names)]))
    assert by_vsite == by_site
    assert "a.pth" in by_site  # the comparison is not vacuous
    # `vsite check` predicts the dot rule without running anything: it must agree too.
    assert skips_dot_files() is (".dot.pth" not in by_site)


# -- semantics, against a flat directory processed by site ---------------------------


def test_pth_files_run_in_name_order_across_roots_like_one_site(tmp_path: Path) -> None:
    r1 = make_root(
        tmp_path,
        "r1",
        {"extra_a": {"mod_a.py": ""}},
        pth={
            "a.pth": "\n".join(
                [
                    "# a comment, skipped",
                    "",
                    "   ",
                    "extra_a",
                    "missing_dir",
                    log("a", SITEDIR),
                    log("a-tab").replace("import ", "import\t", 1),
                    "  " + log("indented-is-a-path-line"),
                    "extra_a",
                    "",
                ]
            ),
            "c.pth": log("c") + "\n",
            "shared.pth": log("shared-from-r1") + "\n",
        },
    )
    r2 = make_root(
        tmp_path,
        "r2",
        {"extra_b": {}},
        pth={
            "b.pth": log("b", SITEDIR) + "\nextra_b\n",
            "shared.pth": log("shared-from-r2") + "\n",
            "z.pth": log("z") + "\n",
        },
    )
    runs = run_layouts([r1, r2], PROBE, tmp_path, layouts=("flat", "vsite", "naive", "addsitedir"))
    assert runs["vsite"]["log"] == runs["flat"]["log"]
    assert runs["flat"]["log"] == [
        ["a", "<site>"],
        ["a-tab", None],
        ["b", "<site>"],
        ["c", None],
        ["shared-from-r1", None],
        ["z", None],
    ]
    assert site_entries(runs["vsite"]) == site_entries(runs["flat"])
    assert site_entries(runs["flat"]) == ["<site>", "<site>/extra_a", "<site>/extra_b"]
    assert runs["naive"]["log"] is None
    # Running each root's .pth files root by root (pex style) gets the order wrong: a, c,
    # shared (r1's), then b, z: one site sorts all names together.
    assert runs["addsitedir"]["log"] != runs["flat"]["log"]


def test_import_line_frame_sitedir_is_the_root_holding_the_file(tmp_path: Path) -> None:
    # The flat layout can only show "<site>"; the root itself is what nspkg files need.
    r1 = make_root(tmp_path, "r1", pth={"a.pth": log("a", SITEDIR) + "\n"})
    r2 = make_root(tmp_path, "r2", pth={"b.pth": log("b", SITEDIR) + "\n"})
    output = _vsite_output([r1, r2], PROBE, tmp_path)
    assert output["log"] == [["a", str(r1)], ["b", str(r2)]]


def test_pth_error_reports_line_on_stderr_and_later_files_still_run(tmp_path: Path) -> None:
    r1 = make_root(
        tmp_path,
        "r1",
        pth={
            "a.pth": log("a1") + "\nimport not_a_module_anywhere\n" + log("a-rest") + "\n",
            "c.pth": "import sys; 1/0\n" + log("c-rest") + "\n",
        },
    )
    r2 = make_root(tmp_path, "r2", pth={"b.pth": log("b") + "\n", "d.pth": log("d") + "\n"})
    runs = run_layouts([r1, r2], PROBE, tmp_path, layouts=("flat", "vsite"), full=True)
    flat, vsite_run = runs["flat"], runs["vsite"]
    assert vsite_run.output["log"] == flat.output["log"] == [["a1", None], ["b", None], ["d", None]]
    assert vsite_run.stderr == flat.stderr
    assert "Error processing line 2 of <site>/a.pth:" in flat.stderr
    assert "ModuleNotFoundError: No module named 'not_a_module_anywhere'" in flat.stderr
    assert "Error processing line 1 of <site>/c.pth:" in flat.stderr
    assert "ZeroDivisionError" in flat.stderr
    assert flat.stderr.count("Remainder of file ignored") == 2


def test_dot_pth_files_run_or_not_as_this_interpreters_site_decides(tmp_path: Path) -> None:
    root = make_root(
        tmp_path, "r1", pth={".hidden.pth": log("hidden") + "\n", "a.pth": log("a") + "\n"}
    )
    runs = run_layouts([root], PROBE, tmp_path, layouts=("flat", "vsite"))
    assert runs["vsite"]["log"] == runs["flat"]["log"]
    expected = [["a", None]] if skips_dot_files() else [["hidden", None], ["a", None]]
    assert runs["flat"]["log"] == expected


def test_bom_and_crlf_lines_are_read_as_site_reads_them(tmp_path: Path) -> None:
    root = make_root(tmp_path, "r1", {"extra": {}})
    # 3.13 strips a UTF-8 BOM; before, the BOM makes the first line a (missing) path.
    (root / "bom.pth").write_bytes(b"\xef\xbb\xbf" + log("bom").encode() + b"\r\nextra\r\n")
    (root / "crlf.pth").write_bytes(log("crlf").encode() + b"\r\n")
    runs = run_layouts([root], PROBE, tmp_path, layouts=("flat", "vsite"), full=True)
    assert runs["vsite"].output["log"] == runs["flat"].output["log"]
    assert site_entries(runs["vsite"].output) == site_entries(runs["flat"].output)
    assert runs["vsite"].stderr == runs["flat"].stderr
    assert ["crlf", None] in runs["flat"].output["log"]


def test_name_in_two_roots_runs_once_from_the_first_root(tmp_path: Path) -> None:
    r1 = make_root(tmp_path, "r1", pth={"same.pth": log("first", SITEDIR) + "\n"})
    r2 = make_root(tmp_path, "r2", pth={"same.pth": log("second", SITEDIR) + "\n"})
    output = _vsite_output([r1, r2], PROBE, tmp_path)
    assert output["log"] == [["first", str(r1)]]
    runs = run_layouts([r1, r2], PROBE, tmp_path, layouts=("flat", "vsite"))
    assert runs["vsite"]["log"] == runs["flat"]["log"]


def test_pth_of_a_dropped_root_does_not_run(tmp_path: Path) -> None:
    r1 = make_root(tmp_path, "r1", dist="same", pth={"a.pth": log("kept") + "\n"})
    r2 = make_root(tmp_path, "r2", dist="same", pth={"b.pth": log("dropped") + "\n"})
    runs = run_layouts([r1, r2], PROBE, tmp_path, layouts=("flat", "vsite"))
    assert runs["vsite"]["log"] == runs["flat"]["log"] == [["kept", None]]


# -- where appended entries go ----------------------------------------------------------

# The flat reference as the interpreter's start-up builds it: site-packages directories
# are processed in sys.path order, so what a directory's .pth files append lands right
# after it, before the site-packages that follow (a venv with system site packages).
_STARTUP_FLAT = """\
import json, os, site, sys
del sys.path[0]
candidates = list(site.getsitepackages())
if site.ENABLE_USER_SITE:
    candidates.append(site.getusersitepackages())
wanted = {os.path.normcase(os.path.abspath(c)) for c in candidates}
position = next(
    (n for n, e in enumerate(sys.path) if os.path.normcase(os.path.abspath(e)) in wanted),
    len(sys.path),
)
later = sys.path[position:]
del sys.path[position:]
site.addsitedir(sys.argv[1])
sys.path.extend(e for e in later if e not in sys.path)
print(json.dumps(sys.path))
"""

_VSITE = """\
import json, sys
del sys.path[0]
import vsite
handle = vsite.activate(sys.argv[1])
print(json.dumps({"site": handle.site_path, "path": sys.path}))
"""


def test_appended_entries_follow_the_site_entry_as_at_start_up(tmp_path: Path) -> None:
    r1 = make_root(
        tmp_path,
        "r1",
        {"extra_a": {}, "extra_c": {}},
        pth={
            "a.pth": "extra_a\n",
            # An import line that appends by itself, as cmeel's does.
            "c.pth": "import os, sys; sys.path.append(os.path.join(" + SITEDIR + ", 'extra_c'))\n",
        },
    )
    r2 = make_root(tmp_path, "r2", {"extra_b": {}}, pth={"b.pth": "extra_b\n"})
    flat = build_flat([r1, r2], tmp_path / "flat" / "site-packages")
    manifest = write_manifest(tmp_path / "m.json", [r1, r2])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["VSITE_DIR"] = str(tmp_path / "state")

    def child(code: str, arg: Path) -> object:
        script = tmp_path / "child" / "run.py"
        write_tree(script.parent, {"run.py": code})
        done = subprocess.run(
            [sys.executable, str(script), str(arg)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return json.loads(done.stdout)

    flat_path = child(_STARTUP_FLAT, flat)
    result = child(_VSITE, manifest)
    assert isinstance(result, dict)
    prefixes = [flat, r1, r2, result["site"]]
    expected = normalise(flat_path, prefixes)
    assert normalise(result["path"], prefixes) == expected
    at = expected.index("<site>")
    assert expected[at : at + 4] == [
        "<site>",
        "<site>/extra_a",
        "<site>/extra_b",
        "<site>/extra_c",
    ]
    # Something follows the site (the interpreter's site-packages), so appending the
    # entries at the end, as addsitedir does at run time, would have differed.
    assert len(expected) > at + 4


def test_entries_inserted_elsewhere_by_import_lines_stay_put(
    tmp_path: Path, sys_state: object
) -> None:
    root = make_root(
        tmp_path,
        "r1",
        {"front": {}, "back": {}},
        pth={
            "a.pth": "import os, sys; sys.path.insert(0, os.path.join("
            + SITEDIR
            + ", 'front')); sys.path.append(os.path.join("
            + SITEDIR
            + ", 'back'))\n"
        },
    )
    handle = vsite.activate(write_manifest(tmp_path / "m.json", [root]))
    assert sys.path[0] == str(root / "front")
    at = sys.path.index(handle.site_path)
    assert sys.path[at + 1] == str(root / "back")
    handle.deactivate()
    assert str(root / "front") not in sys.path
    assert str(root / "back") not in sys.path


def test_run_pth_files_without_site_entry_appends_like_site(
    tmp_path: Path, sys_state: object
) -> None:
    root = write_tree(tmp_path / "r", {"extra": {}, "a.pth": "extra\n"})
    sys.path.insert(0, "/nonexistent-anchor-for-test")
    run_pth_files([("a.pth", str(root))])
    assert sys.path[-1] == str(root / "extra")


# -- undecodable files --------------------------------------------------------------------


def test_undecodable_pth_fails_activation_as_it_fails_site(
    tmp_path: Path, sys_state: object
) -> None:
    flat = write_tree(tmp_path / "flat", {"bad.pth": b"import sys\n\xff\xfe\n"})
    before = list(sys.path)
    try:
        site.addsitedir(str(flat))
    except UnicodeDecodeError:
        site_fails = True
    else:
        site_fails = False
    finally:
        sys.path[:] = before
    if not site_fails:
        pytest.skip("this locale's encoding decodes the file: site reads it")
    root = make_root(tmp_path, "r1", {"bad.pth": b"import sys\n\xff\xfe\n"})
    manifest = write_manifest(tmp_path / "m.json", [root])
    with pytest.raises(ActivationError) as caught:
        vsite.activate(manifest)
    error = caught.value
    assert error.root == str(root)
    assert error.pointer == "/roots/0"
    assert error.manifest == str(manifest)
    assert str(root / "bad.pth") in str(error)
    assert isinstance(error.__cause__, UnicodeDecodeError)
    assert sys.path == before
    assert vsite.activation.active() is None


# -- helpers ------------------------------------------------------------------------------


def _vsite_output(roots: list[Path], probe: str, tmp_path: Path) -> dict[str, object]:
    """The probe's output under vsite with root paths left as they are."""
    manifest = write_manifest(tmp_path / "raw" / "m.json", roots)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["VSITE_DIR"] = str(tmp_path / "raw" / "state")
    code = "import vsite, sys\nvsite.activate(sys.argv.pop(1))\n" + probe
    done = subprocess.run(
        [sys.executable, "-c", code, str(manifest)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    output = json.loads(done.stdout)
    assert isinstance(output, dict)
    return output


# What setuptools wrote as *-nspkg.pth for a namespace package (here "nsx"): it builds
# the package from the portion in its own sitedir.
NSPKG = (
    "import sys, types, os;has_mfs = sys.version_info > (3, 5);"
    "p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('nsx',));"
    "importlib = has_mfs and __import__('importlib.util');"
    "has_mfs and __import__('importlib.machinery');"
    "m = has_mfs and sys.modules.setdefault('nsx', importlib.util.module_from_spec("
    "importlib.machinery.PathFinder.find_spec('nsx', [os.path.dirname(p)])));"
    "m = m or sys.modules.setdefault('nsx', types.ModuleType('nsx'));"
    "mp = (m or []) and m.__dict__.setdefault('__path__',[]);"
    "(p not in mp) and mp.append(p)\n"
)


def test_nspkg_pth_namespace_package_sees_portions_of_every_root(tmp_path: Path) -> None:
    first = make_root(
        tmp_path, "nsx-one", {"nsx": {"one.py": "WHO = 'one'"}}, pth={"nsx_one-nspkg.pth": NSPKG}
    )
    second = make_root(tmp_path, "nsx-two", {"nsx": {"two.py": "WHO = 'two'"}})
    probe = """\
import json, sys
at_start = "nsx" in sys.modules
import nsx
who = []
for name in ("nsx.one", "nsx.two"):
    try:
        who.append(__import__(name, fromlist=["WHO"]).WHO)
    except ImportError as exc:
        who.append(type(exc).__name__)
print(json.dumps({"at_start": at_start, "path": {"__set__": list(nsx.__path__)}, "who": who}))
"""
    runs = run_layouts(
        [first, second], probe, tmp_path, layouts=("flat", "vsite", "naive", "addsitedir")
    )
    assert runs["vsite"] == runs["flat"]
    assert runs["flat"] == {"at_start": True, "path": ["<site>/nsx"], "who": ["one", "two"]}
    assert runs["naive"] != runs["flat"]
    # Running each root's nspkg .pth (pex style) makes a namespace of the first root only.
    assert runs["addsitedir"]["who"] != runs["flat"]["who"]
