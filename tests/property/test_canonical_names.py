"""SPEC section 1, distributions by canonical name:

    Two roots holding the same distribution (same canonical name): only the first is
    used; the later root is dropped whole [...]

    `importlib.metadata` (and the `importlib_metadata` backport) sees every
    distribution of every root: `distributions()`, `version()`, [...]

Both rest on two small functions of ``vsite._names``: ``canonicalize`` (PEP 503, held
to ``packaging.utils.canonicalize_name`` and to PEP 503's own regex) and
``dist_name_from_dir`` (which distribution a ``*.dist-info``/``*.egg-info`` directory
holds, held to what importlib.metadata finds in that directory).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from tests.builders import dist_info_name
from tests.property.strategies import dist_spellings
from vsite._names import canonicalize, dist_name_from_dir

# Valid project names (PEP 508: alphanumeric at both ends, "-", "_", "." inside) and
# PEP 440-like versions (never a "-"), built from parts: from_regex costs ~10x more.
_alnum = st.text(alphabet="abcxyzABCXYZ0189", min_size=1, max_size=6)
project_names = st.builds(
    lambda first, rest: first + "".join(sep + word for sep, word in rest),
    _alnum,
    st.lists(st.tuples(st.text(alphabet="-_.", min_size=1, max_size=3), _alnum), max_size=3),
)
versions = st.builds(
    "{}{}{}".format,
    st.lists(st.integers(0, 2024), min_size=1, max_size=4).map(lambda p: ".".join(map(str, p))),
    st.sampled_from(("", "a1", "b2", "rc1", ".post1", ".dev0")),
    st.sampled_from(("", "+local", "+ubuntu.1")),
)
# Separator runs, case and characters outside ASCII: what canonicalisation must survive.
name_texts = st.one_of(
    st.text(),
    st.text(alphabet="-_.aAzZ09İß"),
    project_names,
    dist_spellings(),
)


@given(name_texts)
def test_canonicalize_equals_packaging_and_the_pep_503_regex(name: str) -> None:
    canonical = canonicalize(name)
    assert canonical == canonicalize_name(name)
    assert canonical == re.sub(r"[-_.]+", "-", name).lower()
    assert canonicalize(canonical) == canonical


@given(project_names, versions)
def test_dist_info_name_round_trips_to_the_canonical_name(name: str, version: str) -> None:
    """The ``.dist-info`` directory a wheel installer writes names its distribution."""
    assert dist_name_from_dir(dist_info_name(name, version)) == canonicalize(name)


@given(project_names, versions, st.sampled_from(("", "-py3.9", "-py3.12")))
def test_egg_info_name_round_trips_to_the_canonical_name(
    name: str, version: str, python_tag: str
) -> None:
    # setuptools writes the name with "-" escaped to "_": the first "-" ends the name.
    dirname = f"{name.replace('-', '_')}-{version}{python_tag}.egg-info"
    assert dist_name_from_dir(dirname) == canonicalize(name)


@given(st.text())
def test_dist_name_from_dir_is_none_or_canonical(dirname: str) -> None:
    found = dist_name_from_dir(dirname)
    if not dirname.endswith((".dist-info", ".egg-info")):
        assert found is None
    else:
        assert found is None or found == canonicalize(found)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One directory reused by every example (function-scoped tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="vsite-names-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# Directory names as installers write them, and as some other tools might.
metadata_stems = st.builds(
    "{}-{}".format,
    st.one_of(project_names, dist_spellings()),
    versions,
)


@given(
    stem=metadata_stems,
    suffix=st.sampled_from((".dist-info", ".egg-info")),
)
def test_vsite_reads_the_name_importlib_metadata_finds_a_directory_under(
    scratch: Path, stem: str, suffix: str
) -> None:
    """A flat site's importlib.metadata finds the directory under vsite's name for it."""
    dirname = stem + suffix
    assume(len(os.fsencode(dirname)) < 255)
    site = scratch / "site"
    shutil.rmtree(site, ignore_errors=True)
    (site / dirname).mkdir(parents=True)
    (site / dirname / "METADATA").write_text(f"Name: {stem}\nVersion: 1\n", encoding="utf-8")
    name = dist_name_from_dir(dirname)
    assert name is not None
    # Python 3.9's importlib.metadata matches names only lower-cased, "-" as "_" (not
    # "."): ask it in the spelling it understands; 3.10+ normalise as PEP 503 does.
    query = name if sys.version_info >= (3, 10) else stem.partition("-")[0]
    found = importlib.metadata.distributions(name=query, path=[os.fspath(site)])
    assert [d.metadata["Name"] for d in found] == [stem]
