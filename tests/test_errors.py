"""SPEC section 3: one error hierarchy that names the manifest, the entry and the root."""

from __future__ import annotations

import builtins
import importlib
import pickle
import pkgutil

import pytest

import vsite
from vsite.errors import Problem, VsiteError

# Modules that act when imported: the boot hook activates, __main__ runs the CLI.
_ACTIVE_ON_IMPORT = ("vsite._boot", "vsite.__main__")


def _vsite_modules() -> list[str]:
    names = ["vsite"]
    for info in pkgutil.walk_packages(vsite.__path__, "vsite."):
        if not info.name.startswith(_ACTIVE_ON_IMPORT):
            names.append(info.name)
    return names


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _vsite_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("vsite")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


EXCEPTIONS = _exception_classes()
_BUILTIN_EXCEPTIONS = {
    value
    for value in vars(builtins).values()
    if isinstance(value, type) and issubclass(value, BaseException)
} - {BaseException, Exception}


def test_the_walk_finds_the_public_errors() -> None:
    public = {vsite.ManifestError, vsite.RootError, vsite.ActivationError, vsite.FarmError}
    assert public <= set(EXCEPTIONS)
    assert vsite.VsiteError in EXCEPTIONS


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__qualname__)
def test_every_error_derives_from_vsite_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, VsiteError)


@pytest.mark.parametrize(
    "cls", [c for c in EXCEPTIONS if c is not VsiteError], ids=lambda cls: cls.__qualname__
)
def test_every_error_also_derives_from_the_builtin_it_resembles(
    cls: type[BaseException],
) -> None:
    builtin_bases = [base for base in cls.__mro__ if base in _BUILTIN_EXCEPTIONS]
    assert builtin_bases, f"{cls.__qualname__} subclasses no specific builtin exception"


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (vsite.ManifestError, ValueError),
        (vsite.RootError, OSError),
        (vsite.ActivationError, RuntimeError),
        (vsite.FarmError, OSError),
    ],
)
def test_public_errors_resemble_their_builtins(
    cls: type[VsiteError], builtin: type[Exception]
) -> None:
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__qualname__)
def test_every_error_pickles_with_its_context(cls: type[VsiteError]) -> None:
    problems = (Problem("root does not exist", "/roots/3", "/r/x"), Problem("bad", "/vsite"))
    error = cls(
        "something is wrong",
        manifest="/etc/m.json",
        pointer="/roots/3",
        root="/r/x",
        problems=problems,
    )
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(error, protocol))
        assert type(copy) is cls
        assert copy.message == "something is wrong"
        assert copy.manifest == "/etc/m.json"
        assert copy.pointer == "/roots/3"
        assert copy.root == "/r/x"
        assert copy.problems == problems
        assert str(copy) == str(error)


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__qualname__)
def test_every_error_pickles_without_context(cls: type[VsiteError]) -> None:
    copy = pickle.loads(pickle.dumps(cls("plain")))
    assert type(copy) is cls
    assert (copy.manifest, copy.pointer, copy.root, copy.problems) == (None, None, None, ())
    assert str(copy) == "plain"


def test_error_text_names_manifest_pointer_root_and_problems() -> None:
    error = vsite.RootError(
        "2 roots cannot be used",
        manifest="/w/m.json",
        pointer="/roots/1",
        root="/w/a",
        problems=[
            Problem("root does not exist", "/roots/1", "/w/a"),
            Problem("root is not a directory", "/roots/4", "/w/b"),
        ],
    )
    assert str(error) == (
        "/w/m.json: 2 roots cannot be used at /roots/1 (root /w/a)\n"
        "  /roots/1: root does not exist (root /w/a)\n"
        "  /roots/4: root is not a directory (root /w/b)"
    )


def test_problem_equality_hash_repr_and_pickle() -> None:
    problem = Problem("unknown key 'x'", "/x")
    assert problem == Problem("unknown key 'x'", "/x", None)
    assert problem != Problem("unknown key 'x'", "/y")
    assert len({problem, Problem("unknown key 'x'", "/x")}) == 1
    assert pickle.loads(pickle.dumps(problem)) == problem
    assert repr(problem) == "Problem(\"unknown key 'x'\", '/x', None)"
    assert str(Problem("expected an object", "")) == "/: expected an object"


def test_errors_cross_a_process_boundary() -> None:
    # Errors travel back from multiprocessing workers: the context survives the trip.
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result = pool.apply_async(_raise_in_worker)
        with pytest.raises(vsite.ManifestError) as caught:
            result.get(timeout=120)
    assert caught.value.manifest == "/m.json"
    assert caught.value.problems == (Problem("no roots listed", "/roots"),)


def _raise_in_worker() -> None:
    raise vsite.ManifestError(
        "invalid manifest (1 problem)",
        manifest="/m.json",
        problems=[Problem("no roots listed", "/roots")],
    )
