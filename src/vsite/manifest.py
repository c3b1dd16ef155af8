"""Read and validate a schema-v1 manifest, reporting every problem at once."""

from __future__ import annotations

import os

from vsite.errors import ManifestError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SCHEMA_VERSION", "Manifest", "Root", "read_manifest_bytes"]

SCHEMA_VERSION = 1
_TOP_KEYS = frozenset({"vsite", "roots", "system-site-packages", "immutable"})
_ROOT_KEYS = frozenset({"path", "name", "version", "immutable"})


class Root:
    """One root of a manifest: an absolute directory path plus optional hints.

    ``immutable`` (key ``"immutable"`` of the root or of the whole manifest): the root
    is replaced, never edited (a build output), so a start never looks at it to see
    whether the persistent index still describes it. Roots in a vsite store are
    immutable whatever the manifest says (see :mod:`vsite.index_cache`).
    """

    __slots__ = ("immutable", "name", "path", "pointer", "version")

    def __init__(
        self,
        path: str,
        pointer: str,
        name: str | None = None,
        version: str | None = None,
        immutable: bool = False,
    ) -> None:
        self.path = path
        self.pointer = pointer
        self.name = name
        self.version = version
        self.immutable = immutable

    def __repr__(self) -> str:
        flag = ", immutable=True" if self.immutable else ""
        return (
            f"Root({self.path!r}, {self.pointer!r}, name={self.name!r}, "
            f"version={self.version!r}{flag})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Root):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, str, str | None, str | None, bool]:
        return (self.path, self.pointer, self.name, self.version, self.immutable)


class Manifest:
    """A validated manifest: where it was read from and its roots in order.

    ``source`` is the manifest file's absolute path ("<memory>" when built in code);
    ``content`` the exact bytes read, which key the persistent caches.
    ``system_site_packages`` (key ``"system-site-packages"``, default false): a process
    started with the site keeps the interpreter's own site-packages and the user site,
    after the site, as a venv made with ``--system-site-packages`` does.
    """

    __slots__ = ("content", "roots", "source", "system_site_packages")

    def __init__(
        self,
        source: str,
        roots: Sequence[Root],
        content: bytes = b"",
        *,
        system_site_packages: bool = False,
    ) -> None:
        self.source = source
        self.roots = tuple(roots)
        self.content = content
        self.system_site_packages = system_site_packages

    def __repr__(self) -> str:
        return f"Manifest({self.source!r}, {len(self.roots)} roots)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return (self.source, self.roots) == (other.source, other.roots)

    def __hash__(self) -> int:
        return hash((self.source, self.roots))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read the manifest at ``path``; raise ManifestError listing every problem."""
        source = os.path.abspath(os.fspath(path))
        return cls.from_bytes(read_manifest_bytes(source), source)

    @classmethod
    def from_bytes(cls, content: bytes, source: str) -> Manifest:
        """Parse manifest bytes as read from ``source`` (an absolute file path)."""
        import json  # Only needed when no persistent index answers first.

        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(
                f"manifest is not UTF-8 (byte {exc.start})", manifest=source
            ) from None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
            raise ManifestError(f"manifest is not valid JSON: {exc}", manifest=source) from None
        return cls.from_data(data, source, content)

    @classmethod
    def from_data(cls, data: object, source: str, content: bytes = b"") -> Manifest:
        """Validate decoded JSON ``data``; relative roots resolve against ``source``'s dir."""
        problems: list[Problem] = []
        roots: list[Root] = []
        if not isinstance(data, dict):
            raise ManifestError(
                "manifest must be a JSON object",
                manifest=source,
                problems=[Problem(f"expected an object, got {_kind(data)}", "")],
            )
        for key in sorted(set(data) - _TOP_KEYS):
            problems.append(Problem(f"unknown key {key!r}", f"/{_escape(key)}"))
        version = data.get("vsite")
        if "vsite" not in data:
            problems.append(Problem("missing schema version (expected 1)", "/vsite"))
        elif type(version) is not int or version != SCHEMA_VERSION:
            problems.append(
                Problem(f"unsupported schema version {version!r} (expected 1)", "/vsite")
            )
        system_site = data.get("system-site-packages", False)
        if not isinstance(system_site, bool):
            wrong = f"expected true or false, got {_kind(system_site)}"
            problems.append(Problem(wrong, "/system-site-packages"))
        immutable = data.get("immutable", False)
        if not isinstance(immutable, bool):
            problems.append(
                Problem(f"expected true or false, got {_kind(immutable)}", "/immutable")
            )
        base = os.path.dirname(source)
        raw_roots = data.get("roots")
        if "roots" not in data:
            problems.append(Problem("missing list of roots", "/roots"))
        elif not isinstance(raw_roots, list):
            problems.append(Problem(f"expected a list, got {_kind(raw_roots)}", "/roots"))
        elif not raw_roots:
            problems.append(Problem("no roots listed", "/roots"))
        else:
            seen: dict[str, str] = {}
            for number, entry in enumerate(raw_roots):
                root = _parse_root(entry, f"/roots/{number}", base, problems)
                if root is None:
                    continue
                if immutable is True:
                    root.immutable = True
                earlier = seen.get(root.path)
                if earlier is not None:
                    problems.append(Problem(f"duplicate of {earlier}", root.pointer, root.path))
                    continue
                seen[root.path] = root.pointer
                roots.append(root)
        _nested_roots(roots, problems)
        if problems:
            raise ManifestError(
                f"invalid manifest ({len(problems)} problem{'s' if len(problems) > 1 else ''})",
                manifest=source,
                problems=problems,
            )
        return cls(source, roots, content, system_site_packages=system_site is True)

    @classmethod
    def from_roots(
        cls, roots: Sequence[str | os.PathLike[str]], source: str = "<memory>"
    ) -> Manifest:
        """Build a manifest in code from root directories (absolute or cwd-relative)."""
        data = {"vsite": SCHEMA_VERSION, "roots": [os.path.abspath(r) for r in roots]}
        return cls.from_data(data, os.path.abspath(source) if source != "<memory>" else source)


def read_manifest_bytes(source: str) -> bytes:
    """The bytes of the manifest file at ``source``; ManifestError when unreadable."""
    try:
        with open(source, "rb") as stream:
            return stream.read()
    except IsADirectoryError:
        raise ManifestError("manifest path is a directory", manifest=source) from None
    except OSError as exc:
        raise ManifestError(
            f"cannot read manifest: {exc.strerror or exc}", manifest=source
        ) from None
    except ValueError:  # a NUL byte, or a lone surrogate no file name can hold
        raise ManifestError(
            "cannot read manifest: the path cannot name a file", manifest=ascii(source)
        ) from None


def _parse_root(entry: object, pointer: str, base: str, problems: list[Problem]) -> Root | None:
    name = version = None
    immutable = False
    if isinstance(entry, str):
        raw_path: object = entry
    elif isinstance(entry, dict):
        for key in sorted(set(entry) - _ROOT_KEYS):
            problems.append(Problem(f"unknown key {key!r} in root", f"{pointer}/{_escape(key)}"))
        raw_path = entry.get("path")
        if "path" not in entry:
            problems.append(Problem("root object has no 'path'", f"{pointer}/path"))
            return None
        for hint in ("name", "version"):
            value = entry.get(hint)
            if hint in entry and not isinstance(value, str):
                problems.append(
                    Problem(f"{hint!r} must be a string, got {_kind(value)}", f"{pointer}/{hint}")
                )
        name = entry.get("name") if isinstance(entry.get("name"), str) else None
        version = entry.get("version") if isinstance(entry.get("version"), str) else None
        immutable = entry.get("immutable", False)
        if not isinstance(immutable, bool):
            wrong = f"'immutable' must be true or false, got {_kind(immutable)}"
            problems.append(Problem(wrong, f"{pointer}/immutable"))
            immutable = False
    else:
        problems.append(Problem(f"root must be a string or an object, got {_kind(entry)}", pointer))
        return None
    if not isinstance(raw_path, str):
        problems.append(Problem(f"root path must be a string, got {_kind(raw_path)}", pointer))
        return None
    if not raw_path or "\0" in raw_path:
        problems.append(Problem("root path is empty or contains NUL", pointer))
        return None
    try:
        os.fsencode(raw_path)  # a lone surrogate ("\ud800" in JSON) names no file
    except UnicodeEncodeError:
        problems.append(Problem("root path cannot be encoded as a file name", pointer))
        return None
    path = os.path.normpath(os.path.join(base, os.path.expanduser(raw_path)))
    return Root(path, pointer, name, version, immutable)


def _nested_roots(roots: list[Root], problems: list[Problem]) -> None:
    """A root inside another root would expose the inner files twice, at two depths."""
    # By components, so a root's descendants follow it directly ("a" < "a/c" < "a-b").
    ordered = sorted(roots, key=lambda root: root.path.split(os.sep))
    outer: Root | None = None
    for root in ordered:
        if outer is not None and root.path.startswith(os.path.join(outer.path, "")):
            problems.append(
                Problem(
                    f"root is inside root {outer.pointer} ({outer.path})", root.pointer, root.path
                )
            )
            continue
        outer = root


def _escape(key: str) -> str:
    # RFC 6901: "~" and "/" are escaped inside a JSON pointer token.
    return key.replace("~", "~0").replace("/", "~1")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
