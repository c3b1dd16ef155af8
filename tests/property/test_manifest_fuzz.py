"""SPEC section 3, errors and bad input, for manifests:

    Every error vsite raises derives from `vsite.VsiteError` and names the manifest
    file and the offending entry (JSON pointer like `/roots/3`) and root path where
    relevant.

and section 2's schema (unknown keys are errors, relative paths resolve against the
manifest's directory). Arbitrary bytes, arbitrary JSON and manifest-shaped JSON either
give a Manifest or raise ManifestError naming the manifest, with every problem's
pointer locating an entry of the document; a manifest that loads has roots that
validation let through, so validating them raises RootError and nothing else.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from vsite import Manifest, ManifestError, RootError
from vsite.index import scan_roots

SOURCE = "/nonexistent-vsite-fuzz/dir/manifest.json"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner), st.dictionaries(st.text(), inner)),
    max_leaves=20,
)
# Root paths that never reach an existing directory: relative (under SOURCE's missing
# directory), no "~" (a home directory exists), no "/" (no ".." chain climbing out).
# Lone surrogates too: JSON can spell them ("\ud800"), hypothesis' characters() never does.
root_names = st.text(
    alphabet=st.one_of(
        st.characters(exclude_characters="/~\0"),
        st.integers(0xD800, 0xDFFF).map(chr),
    ),
    min_size=1,
).filter(lambda name: name not in (".", ".."))
root_entries = st.one_of(
    root_names,
    json_values,
    st.fixed_dictionaries(
        {"path": st.one_of(root_names, json_values)},
        optional={
            "name": st.one_of(st.text(), json_values),
            "version": st.one_of(st.text(), json_values),
            "extra": json_values,
        },
    ),
)
manifest_data = st.fixed_dictionaries(
    {},
    optional={
        "vsite": st.one_of(st.just(1), st.just(True), st.just(1.0), json_values),
        "roots": st.one_of(st.lists(root_entries, max_size=5), json_values),
        "root": json_values,
        "extra/key~": json_values,
    },
)


@given(st.binary())
@example(b"\xff\xfe")
@example(b"[" * 5000)
def test_any_bytes_load_or_raise_manifest_error(content: bytes) -> None:
    _load(content)


@given(json_values)
def test_any_json_loads_or_raises_manifest_error(value: Any) -> None:
    _load(json.dumps(value).encode(), value)


@given(st.integers(min_value=1, max_value=50_000))
def test_nesting_of_any_depth_raises_manifest_error(depth: int) -> None:
    """json's C scanner raises RecursionError past the interpreter's recursion limit."""
    _load(b'{"vsite": 1, "roots": ' + b"[" * depth + b"]" * depth + b"}")


@given(manifest_data)
def test_manifest_shaped_json_loads_or_raises_manifest_error_with_pointers(data: Any) -> None:
    manifest = _load(json.dumps(data).encode(), data)
    if manifest is None:
        return
    assert manifest.source == SOURCE
    pointers = [root.pointer for root in manifest.roots]
    assert pointers == [f"/roots/{n}" for n in range(len(data["roots"]))]
    for root, entry in zip(manifest.roots, data["roots"]):
        raw = os.path.expanduser(entry if isinstance(entry, str) else entry["path"])
        assert root.path == posixpath.normpath(posixpath.join(posixpath.dirname(SOURCE), raw))


@given(manifest_data)
@example({"vsite": 1, "roots": ["\ud800"]})
def test_roots_of_a_loaded_manifest_fail_validation_with_root_error_only(data: Any) -> None:
    """scan_roots is activation's validation step: it runs before any global change."""
    manifest = _load(json.dumps(data).encode(), data)
    if manifest is None:
        return
    assume(not any(os.path.exists(root.path) for root in manifest.roots))  # "/", "~", ".."
    with pytest.raises(RootError) as raised:
        scan_roots(manifest)
    assert raised.value.manifest == SOURCE
    assert str(raised.value.pointer).startswith("/roots/")


# Path components that sort between a directory and its children ("a" < "a-b" < "a/c").
components = st.sampled_from(("a", "a-b", "a.b", "a b", "a0", "b"))


@given(st.lists(st.lists(components, min_size=1, max_size=3).map(tuple), min_size=1, max_size=5))
@example([("a",), ("a-b",), ("a", "c")])
def test_a_root_inside_another_root_is_an_error(roots: list[tuple[str, ...]]) -> None:
    paths = list(dict.fromkeys("/r/" + "/".join(parts) for parts in roots))
    nested = {
        n for n, inner in enumerate(paths) for outer in paths if inner.startswith(outer + "/")
    }
    data = {"vsite": 1, "roots": paths}
    manifest = _load(json.dumps(data).encode(), data)
    if not nested:
        assert manifest is not None
    else:
        assert manifest is None, f"nested roots {[paths[n] for n in sorted(nested)]} accepted"


def _load(content: bytes, data: Any = None) -> Manifest | None:
    """Manifest.from_bytes, asserting that a failure is a ManifestError as SPEC 3 asks."""
    try:
        return Manifest.from_bytes(content, SOURCE)
    except ManifestError as exc:
        error = exc
    assert error.manifest == SOURCE
    assert str(error)  # prints, whatever the input
    if data is not None:
        for problem in error.problems:
            assert _locates(data, problem.pointer), f"{problem.pointer!r} in {data!r}"
    return None


def _locates(data: Any, pointer: str) -> bool:
    """Whether JSON pointer ``pointer`` names an entry of ``data``, or a key missing
    from an object that is one (a required key that is absent)."""
    if pointer == "":
        return True
    node = data
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for number, token in enumerate(tokens):
        last = number == len(tokens) - 1
        if isinstance(node, dict):
            if token not in node:
                return last
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def test_locates_checks_pointers() -> None:
    data = {"roots": [{"path": 1}], "a/b": 2}
    assert _locates(data, "/roots/0/path")
    assert _locates(data, "/roots/0/name")  # a missing key of an object that exists
    assert _locates(data, "/a~1b")
    assert not _locates(data, "/roots/1")
    assert not _locates(data, "/roots/0/path/x")
