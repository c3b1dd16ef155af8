"""``vsite check``: every problem a manifest's site has, found without activating it.

Tooling path: this module may import ``packaging`` (wheel tags, versions). It prints
nothing: :mod:`vsite.tools.cli` prints the report and picks the exit code. Findings are
gathered for all roots at once; a manifest that cannot be read at all is the only thing
that stops the check.
"""

from __future__ import annotations

import os
import sys

from vsite._names import canonicalize
from vsite.errors import ManifestError, one_line
from vsite.manifest import Manifest
from vsite.scan import RootScan, scan_root
from vsite.tools.check_bytecode import BytecodeSurvey, survey_bytecode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from vsite.index import SiteIndex
    from vsite.manifest import Root

__all__ = [
    "KINDS",
    "Finding",
    "Report",
    "check",
    "format_report",
    "unusable_report",
]

#: Finding kinds in report order, with the heading of their group in human output.
KINDS = {
    "missing-root": "missing roots",
    "not-a-directory": "roots that are not directories",
    "unreadable-root": "roots that cannot be read",
    "damaged-store-entry": "damaged store entries",
    "duplicate-distribution": "duplicate distributions",
    "hint-mismatch": "name/version hints that disagree with the metadata",
    "incompatible-wheel": "wheels that do not fit this interpreter",
    "broken-pth": "broken .pth lines",
    "file-conflict": "files present in several roots",
}

_METADATA_DIRS = (".dist-info", ".egg-info")


class Finding:
    """One problem: its kind (a key of KINDS), where it is, and what it is."""

    __slots__ = ("kind", "message", "pointer", "root")

    def __init__(self, kind: str, root: Root, message: str, field: str = "") -> None:
        self.kind = kind
        self.message = message
        self.pointer = root.pointer + field  # field: "/name", "/version" or ""
        self.root = root.path

    def __repr__(self) -> str:
        return f"Finding({self.kind!r}, {self.message!r}, {self.pointer!r}, {self.root!r})"

    def __str__(self) -> str:
        return f"{self.pointer}: {self.message} (root {self.root})"

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "pointer": self.pointer,
            "root": self.root,
            "message": self.message,
        }


class Report:
    """Everything ``vsite check`` found for one manifest, and what the farm will stage.

    ``staged`` lists ``{"name", "pointer", "root"}`` for each root holding a staged entry.
    ``bytecode`` is informational too, like ``staged``: never a problem.
    """

    __slots__ = ("bytecode", "findings", "manifest", "staged")

    def __init__(
        self,
        manifest: str,
        findings: list[Finding],
        staged: list[dict[str, str]],
        bytecode: BytecodeSurvey,
    ) -> None:
        self.manifest = manifest
        order = list(KINDS)
        # Stable sort: within a kind, findings keep manifest order.
        self.findings = sorted(findings, key=lambda finding: order.index(finding.kind))
        self.staged = staged
        self.bytecode = bytecode

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, object]:
        return {
            "manifest": self.manifest,
            "ok": self.ok,
            "findings": [finding.as_dict() for finding in self.findings],
            "staged": self.staged,
            "bytecode": self.bytecode.as_dict(),
        }


def check(manifest: Manifest) -> Report:
    """All findings for ``manifest``'s roots, and the native entries that will be staged."""
    from vsite.index import build_index

    findings: list[Finding] = []
    usable: list[Root] = []
    scans: dict[str, RootScan] = {}
    for root in manifest.roots:
        scan = _scan(root, findings)
        if scan is not None:
            usable.append(root)
            scans[root.path] = scan
        findings.extend(_store_findings(root))
    index = build_index(Manifest(manifest.source, usable))
    by_path = {root.path: root for root in usable}
    used = [by_path[path] for path in index.roots]

    for dropped in index.dropped:
        winner = by_path[dropped.winner]
        message = f"distribution {dropped.dist!r} is also in {winner.pointer} ({winner.path})"
        message += ", which wins; this root is dropped whole"
        findings.append(Finding("duplicate-distribution", dropped.root, message))
    for root in used:
        findings.extend(_duplicate_metadata(root, scans[root.path]))
    for root in usable:
        findings.extend(_hint_findings(root, scans[root.path]))
    findings.extend(_tag_findings(used, scans))
    findings.extend(_pth_findings(index, by_path))
    findings.extend(_file_conflicts(used, scans))
    return Report(manifest.source, findings, _staged(index, by_path), survey_bytecode(used))


def format_report(report: Report) -> str:
    """Human output: a summary line, then one finding per line grouped by kind."""
    lines: list[str] = []
    count = len(report.findings)
    if count:
        lines.append(f"{report.manifest}: {count} problem{'s' if count != 1 else ''} found")
    else:
        lines.append(f"{report.manifest}: ok")
    for kind, heading in KINDS.items():
        group = [finding for finding in report.findings if finding.kind == kind]
        if group:
            lines.append(f"{heading} ({len(group)}):")
            lines.extend(f"  {finding}" for finding in group)
    if report.staged:
        lines.append(f"native entries staged in the farm ({len(report.staged)}):")
        lines.extend(
            f"  {entry['pointer']}: {entry['name']} (root {entry['root']})"
            for entry in report.staged
        )
    lines.extend(report.bytecode.lines())
    return "".join(line + "\n" for line in lines)


# -- roots -------------------------------------------------------------------------------


def _scan(root: Root, findings: list[Finding]) -> RootScan | None:
    try:
        return scan_root(root.path)
    except FileNotFoundError:
        findings.append(Finding("missing-root", root, "root does not exist"))
    except NotADirectoryError:
        findings.append(Finding("not-a-directory", root, "root is not a directory"))
    except OSError as exc:
        message = f"root cannot be read: {exc.strerror or exc}"
        findings.append(Finding("unreadable-root", root, message))
    return None


def _store_findings(root: Root) -> Iterable[Finding]:
    """A root that is a store entry's (``STORE/wheels/<sha256>/site-packages`` beside its
    ``wheel.json``): every file the entry recorded, there and of its size (lstat only;
    ``vsite store verify`` checks contents)."""
    # The store's shape (vsite.store_holds, no import of the install package, which
    # imports installer), and its record: only then is the install package imported.
    from vsite.store_holds import store_entry

    entry = store_entry(root.path)
    if entry is None or not os.path.isfile(os.path.join(entry, "wheel.json")):
        return
    from vsite.errors import StoreError
    from vsite.tools.install.verify import EntryInfo, describe, entry_damage, read_info

    try:
        damage = entry_damage(entry)
    except StoreError as exc:  # a format this vsite does not know: not read
        yield Finding("damaged-store-entry", root, f"store entry not verified: {exc}")
        return
    if not damage:
        return
    info = read_info(entry)
    wheel = info.wheel if isinstance(info, EntryInfo) else "its wheel"
    message = f"damaged store entry: {describe(damage)}; "
    message += f"the next `vsite install` of {wheel} unpacks it again"
    from vsite.tools.install.collect import users

    store = os.path.dirname(os.path.dirname(entry))
    environments = users(store).get(os.path.realpath(entry), [])
    if environments:
        message += "; used by the environments " + ", ".join(sorted(environments))
    yield Finding("damaged-store-entry", root, message)


def _duplicate_metadata(root: Root, scan: RootScan) -> Iterable[Finding]:
    """Two metadata dirs of one distribution in one root: the first (by name) is used."""
    first: dict[str, str] = {}
    for name, dirname in scan.dists:
        used = first.setdefault(name, dirname)
        if used != dirname:
            message = f"{dirname} repeats distribution {name!r}; {used} is used, {dirname} not"
            yield Finding("duplicate-distribution", root, message)


# -- metadata: hints and wheel tags ------------------------------------------------------


def _hint_findings(root: Root, scan: RootScan) -> Iterable[Finding]:
    """The manifest's name/version hints against the root's own metadata (the truth)."""
    dists = dict(scan.dists)  # canonical name -> first metadata dir
    names = ", ".join(repr(name) for name in dists) or "none"
    dirname = None
    if root.name is not None:
        dirname = dists.get(canonicalize(root.name))
        if dirname is None:
            message = f"name hint {root.name!r} is not a distribution of this root ({names})"
            yield Finding("hint-mismatch", root, message, "/name")
            return
    elif len(dists) == 1:
        dirname = next(iter(dists.values()))
    if root.version is None:
        return
    if dirname is None:
        message = f"version hint {root.version!r} names no single distribution ({names})"
        yield Finding("hint-mismatch", root, message, "/version")
        return
    actual = _metadata_version(os.path.join(root.path, dirname))
    if actual is None or not _same_version(root.version, actual):
        message = f"version hint {root.version!r} disagrees with {dirname} (version {actual!r})"
        yield Finding("hint-mismatch", root, message, "/version")


def _metadata_version(dist_dir: str) -> str | None:
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_dir, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break  # end of the headers
                    key, sep, value = line.partition(":")
                    if sep and key.strip().lower() == "version":
                        return value.strip()
        except OSError:
            continue
    return None


def _same_version(hint: str, actual: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(hint) == Version(actual)
    except InvalidVersion:
        return hint.strip() == actual


def _tag_findings(roots: list[Root], scans: dict[str, RootScan]) -> Iterable[Finding]:
    from packaging.tags import parse_tag, sys_tags

    supported: set[object] | None = None
    for root in roots:
        for _, dirname in scans[root.path].dists:
            if not dirname.endswith(".dist-info"):
                continue
            tags = _wheel_tags(os.path.join(root.path, dirname))
            if not tags:
                continue  # not installed from a wheel, or no WHEEL file: nothing to check
            if supported is None:
                supported = set(sys_tags())
            parsed: set[object] = set()
            for tag in tags:
                try:
                    parsed.update(parse_tag(tag))
                except ValueError:
                    continue
            if parsed and not parsed & supported:
                message = f"{dirname} was built for {', '.join(tags)}, "
                message += f"which this interpreter ({_interpreter()}) does not support"
                yield Finding("incompatible-wheel", root, message)


def _wheel_tags(dist_dir: str) -> list[str]:
    try:
        with open(os.path.join(dist_dir, "WHEEL"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    tags = []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "tag" and value.strip():
            tags.append(value.strip())
    return tags


def _interpreter() -> str:
    from packaging.tags import interpreter_name, interpreter_version

    return f"{interpreter_name()}{interpreter_version()}, {sys.platform}"


# -- .pth files --------------------------------------------------------------------------


def _pth_findings(index: SiteIndex, by_path: dict[str, Root]) -> Iterable[Finding]:
    from vsite.pth import skips_dot_files

    skip_dots = skips_dot_files()
    for name, root_path in index.pth:
        if skip_dots and name.startswith("."):
            continue  # The interpreter never reads it.
        root = by_path[root_path]
        path = os.path.join(root_path, name)
        try:
            with open(path, "rb") as stream:
                text = stream.read().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 (byte {exc.start})"
            yield Finding("broken-pth", root, f"{name}: cannot be read: {reason}")
            continue
        for number, raw in enumerate(text.splitlines(), 1):
            problem = _pth_line_problem(raw, root_path, path)
            if problem is not None:
                yield Finding("broken-pth", root, f"{name}:{number}: {problem}")


def _pth_line_problem(raw: str, root: str, filename: str) -> str | None:
    """What ``site.addpackage`` would silently skip or fail on in this line, if anything."""
    if raw.startswith("#") or not raw.strip():
        return None
    if raw.startswith(("import ", "import\t")):
        try:
            compile(raw, filename, "exec")
        except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, before 3.11
            reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
            return f"import line does not compile ({reason}): {raw.strip()!r}"
        return None
    line = raw.rstrip()
    if not os.path.exists(os.path.join(root, line)):
        return f"path {line!r} does not exist"
    return None


# -- files in several roots --------------------------------------------------------------


def _file_conflicts(roots: list[Root], scans: dict[str, RootScan]) -> Iterable[Finding]:
    """Relative paths held by several used roots whose contents differ: the first wins."""
    owners: dict[str, list[Root]] = {}
    for name, holders in _top_level_holders(roots, scans).items():
        if len(holders) < 2:
            continue
        for root in holders:
            for rel in _files_under(root.path, name):
                owners.setdefault(rel, []).append(root)
    for rel in sorted(owners):
        holders = owners[rel]
        if len(holders) < 2:
            continue
        winner = holders[0]
        for loser in holders[1:]:
            if _same_file_content(os.path.join(winner.path, rel), os.path.join(loser.path, rel)):
                continue  # Identical copies cannot change what the program sees.
            message = f"{rel!r} is also in {winner.pointer} ({winner.path}), which wins"
            yield Finding("file-conflict", loser, message)


def _top_level_holders(roots: list[Root], scans: dict[str, RootScan]) -> dict[str, list[Root]]:
    holders: dict[str, list[Root]] = {}
    for root in roots:
        for name, is_dir in scans[root.path].listing.items():
            if name == "__pycache__" or (is_dir and name.endswith(_METADATA_DIRS)):
                continue
            holders.setdefault(name, []).append(root)
    return holders


def _files_under(root: str, name: str) -> list[str]:
    """Relative paths of the files in ``root``/``name`` (itself, if it is a file)."""
    top = os.path.join(root, name)
    if not os.path.isdir(top):
        return [name]
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel_dir = os.path.relpath(dirpath, root)
        found.extend(os.path.join(rel_dir, filename) for filename in filenames)
    return found


def _same_file_content(first: str, second: str) -> bool:
    import filecmp

    try:
        return filecmp.cmp(first, second, shallow=False)
    except OSError:
        return False


# -- native entries ----------------------------------------------------------------------


def _staged(index: SiteIndex, by_path: dict[str, Root]) -> list[dict[str, str]]:
    """Each (name, root) the farm will hold: a name staged anywhere is staged from all."""
    staged = []
    for name in index.native:
        for number, _ in index.entries.get(name, ()):
            root = by_path[index.roots[number]]
            staged.append({"name": name, "pointer": root.pointer, "root": root.path})
    return staged


# -- a manifest that cannot be read ------------------------------------------------------


def unusable_report(exc: ManifestError, manifest_path: str) -> dict[str, object]:
    """The ``--json`` document for a manifest that cannot be read: every problem a finding."""
    problems = exc.problems or (None,)
    findings = [
        {
            "kind": "invalid-manifest",
            "pointer": (exc.pointer or "") if problem is None else problem.pointer,
            "root": exc.root if problem is None else problem.root,
            "message": exc.message if problem is None else problem.message,
        }
        for problem in problems
    ]
    return {
        "manifest": exc.manifest or os.path.abspath(manifest_path),
        "ok": False,
        "error": one_line(exc),
        "findings": findings,
        "staged": [],
    }
