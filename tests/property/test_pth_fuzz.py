"""SPEC section 1, ``.pth`` files:

    `.pth` files of all roots run once, in site order [...] exactly with
    `site.addsitedir` semantics [...] an error in one line is reported on stderr like
    `site` does and the rest still runs.

and section 3 (every error vsite raises derives from `vsite.VsiteError`). Whatever the
bytes of a ``.pth`` file, running it (``vsite.pth.run_pth_files``) raises nothing but
ActivationError, for a file the interpreter cannot decode (``site`` stops there too), and
writes nothing on stderr but ``site``'s own report of a bad line; the reader of
``vsite check`` turns any bytes into ``broken-pth`` findings, never an exception.

``import`` lines are executed, so their bodies are drawn from a pool of harmless module
names followed by characters that can form no keyword or call (no letters, no
parentheses): errors of every kind, but no code that could change the test process.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vsite import ActivationError, Manifest
from vsite.pth import run_pth_files
from vsite.tools.check import check

NAME = "fuzz.pth"


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    """One root whose ``fuzz.pth`` every example rewrites; ``sub`` holds a module."""
    base = Path(tempfile.mkdtemp(prefix="vsite-pth-fuzz-"))
    (base / "sub").mkdir()
    (base / "sub" / "vsite_fuzz_mod.py").write_text("X = 1\n", encoding="utf-8")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _text(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.text(alphabet, max_size=12).map(lambda text: text.encode("utf-8"))


# Characters that make no keyword and no call: digits, punctuation, whitespace of every
# kind (including what str.splitlines() splits on and site's reader does not), NUL,
# non-ASCII letters outside identifiers' reach in a statement of their own.
_INERT = st.sampled_from([*"0123456789 \t.,;#'\"\\\x00\x0c\x85\u2028é€", "\ufeff"])
_MODULES = st.sampled_from(
    [b"", b"sys", b"os", b"vsite_fuzz_mod", b"vsite_fuzz_missing", b"os.path", b"sys,os"]
)
import_lines = st.builds(
    lambda head, module, tail: head + module + tail,
    st.sampled_from([b"import ", b"import\t", b"import", b"Import ", b" import "]),
    _MODULES,
    _text(_INERT),
)
path_lines = st.one_of(
    st.sampled_from([b"sub", b".", b"..", b"sub/../sub", b"missing", b"/", b"sub\x00x", b"~"]),
    _text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r")),
)
lines = st.one_of(
    st.just(b""),
    st.builds(lambda text: b"#" + text, _text(st.characters(exclude_categories=["Cs"]))),
    import_lines,
    path_lines,
    st.binary(max_size=12),  # anything, undecodable bytes included
)
pth_files = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda bom, parts, end: bom + end.join(parts),
        st.sampled_from([b"", b"\xef\xbb\xbf"]),
        st.lists(lines, max_size=8),
        st.sampled_from([b"\n", b"\r\n", b"\r"]),
    ),
)

EXAMPLES = [
    b"import os\x00x\n",  # compile() raised ValueError, not SyntaxError, before 3.11
    b"import sys\n\xff\xfe\n",
    b"\xef\xbb\xbfsub\r\nimport vsite_fuzz_mod\r\n",
    b"import\nimport\t\nimport  \n",
    b"sub\x85..\n\x0c\n",
]


_Test = TypeVar("_Test", bound=Callable[..., Any])


def _with_examples(test: _Test) -> _Test:
    for content in EXAMPLES:
        test = example(content=content)(test)
    return test


@contextlib.contextmanager
def _isolated() -> Iterator[io.StringIO]:
    """stderr captured; sys.path and sys.modules restored whatever the lines did."""
    path, modules = list(sys.path), dict(sys.modules)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            yield err
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - set(modules):
            del sys.modules[name]


@given(content=pth_files)
@_with_examples
def test_any_pth_bytes_run_or_raise_activation_error_and_report_like_site(
    root: Path, content: bytes
) -> None:
    (root / NAME).write_bytes(content)
    manifest = Manifest.from_roots([root])
    with _isolated() as err:
        try:
            run_pth_files([(NAME, str(root))], None, manifest)
        except ActivationError as exc:
            error: ActivationError | None = exc
        else:
            error = None
    if error is not None:  # the file cannot be decoded: site stops there too
        assert isinstance(error.__cause__, UnicodeDecodeError)
        assert (error.root, error.pointer) == (str(root), "/roots/0")
        assert str(root / NAME) in str(error)
    report = err.getvalue()
    if report:  # site's report of the first bad line; the rest of that file is skipped
        assert report.startswith("Error processing line "), report
        assert report.count("Error processing line ") == 1, report
        assert report.rstrip().endswith("Remainder of file ignored"), report


@given(content=pth_files)
@_with_examples
def test_any_pth_bytes_give_check_findings_never_an_exception(root: Path, content: bytes) -> None:
    (root / NAME).write_bytes(content)
    report = check(Manifest.from_roots([root]))
    assert {finding.kind for finding in report.findings} <= {"broken-pth"}
    assert all(finding.message.startswith(NAME) for finding in report.findings)
