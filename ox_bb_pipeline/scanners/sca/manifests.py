"""Dependency manifests and lock files -> component rows, one small parser per format.

Nothing here executes anything (no setup.py, no Gemfile evaluation, no package scripts); XML goes
through defusedxml. A file that does not parse becomes a `ManifestError` row, never an exception.
"""

from __future__ import annotations

import json
import re
import tomllib
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from defusedxml import ElementTree
from packaging.requirements import InvalidRequirement, Requirement

from .ecosystems import name_key, osv_version, purl

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_PROPERTY_CHARS = 1024  # a Maven property worth substituting (versions and ids are short)
# Folders holding other projects' files (installed or vendored packages), not this repository's manifests.
IGNORED_DIRS = frozenset({"node_modules", "bower_components", "vendor", ".venv", "venv", "site-packages", ".tox"})


@dataclass
class Component:
    ecosystem: str  # OSV spelling: PyPI, npm, Maven, Go, RubyGems, crates.io
    name: str  # as the manifest spells it (Maven: group:artifact)
    version: str | None  # resolved version in OSV spelling; None when the manifest only states a range
    manifest: str  # repository-relative path of the file that states it
    line: int | None = None
    direct: bool | None = None  # None: the file cannot tell
    dev_only: bool = False  # development / test scope, where the file says so
    requirement: str | None = None  # the declared constraint, when it pins no version

    @property
    def key(self) -> str:
        return name_key(self.ecosystem, self.name)

    @property
    def purl(self) -> str:
        return purl(self.ecosystem, self.name, self.version)


@dataclass
class ManifestError:
    manifest: str
    error: str


class Lines:
    """Line numbers for formats whose parsers forget them (JSON, XML, TOML): search the raw text
    in document order, from a cursor, for the text that states an entry."""

    MAX_MISSES = 16  # each miss reads the rest of the file: give up early, so odd files stay linear

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.misses = 0

    def find(self, pattern: str, start: int = 0) -> tuple[int | None, int]:
        """(line of the first match at or after `start`, position after it); (None, start) if absent."""
        match = None
        if self.misses < self.MAX_MISSES:
            match = re.compile(pattern, re.MULTILINE).search(self.text, start)
        if match is None:
            self.misses += 1
            return None, start
        return bisect_right(self.starts, match.start()), match.end()


def _json_key(key: str, value: str = r"\{") -> str:
    return rf'"{re.escape(key)}"\s*:\s*{value}'


# -- Python -----------------------------------------------------------------------------------------

_DEV_FILE = re.compile(r"(^|[-_.])(dev|develop|development|test|tests|testing|lint|docs?)([-_.]|$)")


def _pinned(requirement: Requirement) -> str | None:
    """The version a PEP 508 requirement pins (`==1.2` or `===1.2`), None for ranges and wildcards."""
    specs = list(requirement.specifier)
    if requirement.url or len(specs) != 1:
        return None
    spec = specs[0]
    return spec.version if spec.operator in ("==", "===") and "*" not in spec.version else None


def parse_requirements(text: str, path: str) -> list[Component]:
    """requirements*.txt: `==` pins become versions; ranges are kept as unpinned requirements, not
    guessed. pip-compile's `# via` notes tell direct (`-r file`) from transitive."""
    dev = bool(_DEV_FILE.search(PurePosixPath(path).stem))
    components: list[Component] = []
    via: dict[int, str] = {}  # component index -> its "# via" note
    logical, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip().startswith("#"):
            note, last = raw.strip().lstrip("#").strip(), len(components) - 1
            if components and (note.startswith("via") or (last in via and raw[:1].isspace())):
                via[last] = via.get(last, "") + " " + note
            continue
        if not logical:
            start = number
        logical += re.sub(r"(^|\s)#.*", "", raw).rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        line, logical = logical.strip(), ""
        if not line or line.startswith("-"):  # options, -r/-c includes and editable (local) installs
            continue
        try:  # per-requirement options (--hash=…) follow the requirement itself
            requirement = Requirement(re.split(r"\s--?[a-z]", line, maxsplit=1)[0].strip())
        except InvalidRequirement:
            continue
        version = _pinned(requirement)
        declared = None if version else (requirement.url or str(requirement.specifier) or "*")
        components.append(
            Component("PyPI", requirement.name, version, path, start, direct=True, dev_only=dev, requirement=declared)
        )
    if via:  # a compiled file: only what came from an input file (-r) was asked for directly
        for index, component in enumerate(components):
            component.direct = bool(re.search(r"(^|\s)-r\s", via.get(index, "")))
    return components


def _pipenv_version(entry: dict | str) -> str | None:
    spec = entry.get("version") if isinstance(entry, dict) else entry
    if isinstance(spec, str) and spec.startswith("==") and "*" not in spec:
        return spec[2:].strip()
    return None


def parse_pipfile_lock(text: str, path: str) -> list[Component]:
    data, lines = json.loads(text), Lines(text)
    components = []
    for section, dev in (("default", False), ("develop", True)):
        _, cursor = lines.find(_json_key(section), 0)
        for name, entry in (data.get(section) or {}).items():
            line, cursor = lines.find(_json_key(name), cursor)
            version = _pipenv_version(entry)
            components.append(
                Component(
                    "PyPI",
                    name,
                    version,
                    path,
                    line,
                    dev_only=dev,
                    requirement=None if version else json.dumps(entry, sort_keys=True),
                )
            )
    return components


def parse_pipfile(text: str, path: str) -> list[Component]:
    """A Pipfile without its lock: only `==` pins give versions."""
    data, lines = tomllib.loads(text), Lines(text)
    components = []
    for section, dev in (("packages", False), ("dev-packages", True)):
        _, cursor = lines.find(rf"^\[{re.escape(section)}\]", 0)
        for name, spec in (data.get(section) or {}).items():
            line, _ = lines.find(rf'^\s*"?{re.escape(name)}"?\s*=', cursor)
            version = _pipenv_version(spec)
            components.append(
                Component(
                    "PyPI",
                    name,
                    version,
                    path,
                    line,
                    direct=True,
                    dev_only=dev,
                    requirement=None if version else json.dumps(spec, sort_keys=True),
                )
            )
    return components


def declared_pipfile(text: str) -> dict[str, bool]:
    data = tomllib.loads(text)
    declared = {name: True for name in data.get("dev-packages") or {}}
    declared.update({name: False for name in data.get("packages") or {}})
    return declared


def parse_poetry_lock(text: str, path: str) -> list[Component]:
    data, lines = tomllib.loads(text), Lines(text)
    components, cursor = [], 0
    for package in data.get("package") or []:
        name, version = package["name"], package["version"]
        line, cursor = lines.find(rf'^name\s*=\s*"{re.escape(name)}"', cursor)
        groups = package.get("groups")  # Poetry 2; older locks say category = "dev"
        dev = package.get("category") == "dev" or (groups is not None and "main" not in groups)
        components.append(Component("PyPI", name, str(version), path, line, dev_only=dev))
    return components


def declared_pyproject(text: str) -> dict[str, bool]:
    """Direct dependencies of a pyproject.toml (Poetry tables, PEP 621, PEP 735 groups): name -> dev-only."""
    data = tomllib.loads(text)
    poetry = data.get("tool", {}).get("poetry", {})
    declared: dict[str, bool] = {}
    for name in poetry.get("dev-dependencies") or {}:
        declared[name] = True
    for group, table in (poetry.get("group") or {}).items():
        for name in table.get("dependencies") or {}:
            declared.setdefault(name, group != "main")
    for entries in (data.get("dependency-groups") or {}).values():
        for entry in entries:
            if isinstance(entry, str):
                declared.setdefault(_requirement_name(entry), True)
    runtime = list(poetry.get("dependencies") or {}) + [
        _requirement_name(e) for e in data.get("project", {}).get("dependencies") or []
    ]
    for extra in (data.get("project", {}).get("optional-dependencies") or {}).values():
        runtime += [_requirement_name(e) for e in extra]
    declared.update({name: False for name in runtime if name and name != "python"})
    return declared


def _requirement_name(text: str) -> str:
    try:
        return Requirement(text).name
    except InvalidRequirement:
        return ""


# -- JavaScript -------------------------------------------------------------------------------------

_EXACT_SEMVER = re.compile(r"=?v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)")
_NPM_SECTIONS = (
    ("dependencies", False),
    ("optionalDependencies", False),
    ("peerDependencies", False),
    ("devDependencies", True),
)


def _npm_alias(name: str, version: str | None) -> tuple[str, str | None]:
    """`npm:real-name@1.2.3` installs real-name under another folder name."""
    if version and version.startswith("npm:"):
        target = version[4:]
        at = target.find("@", 1)
        return (target[:at], target[at + 1 :]) if at > 0 else (target, None)
    return name, version


def parse_package_lock(text: str, path: str) -> list[Component]:
    """package-lock.json / npm-shrinkwrap.json, lockfile v1 (nested `dependencies`) or v2/v3 (`packages`)."""
    data, lines = json.loads(text), Lines(text)
    if isinstance(data.get("packages"), dict):
        return _npm_packages(data["packages"], lines, path)
    return _npm_dependencies(data.get("dependencies") or {}, lines, path, nested=False, cursor=0)[0]


def _npm_packages(packages: dict, lines: Lines, path: str) -> list[Component]:
    root = packages.get("") or {}
    declared = {name for section, _ in _NPM_SECTIONS for name in root.get(section) or {}}
    components, cursor = [], 0
    for key, entry in packages.items():
        line, cursor = lines.find(_json_key(key), cursor) if key else (None, cursor)
        # "" is the project itself; keys without node_modules/ are workspace folders; links point at them.
        if "node_modules/" not in key or not isinstance(entry, dict) or entry.get("link"):
            continue
        folder = key.rsplit("node_modules/", 1)[1]
        name, version = _npm_alias(entry.get("name") or folder, entry.get("version"))
        top_level = key == f"node_modules/{folder}"
        components.append(
            Component(
                "npm",
                name,
                version,
                path,
                line,
                direct=top_level and folder in declared,
                dev_only=bool(entry.get("dev")),
            )
        )
    return components


def _npm_dependencies(tree: dict, lines: Lines, path: str, nested: bool, cursor: int) -> tuple[list[Component], int]:
    components = []
    for folder, entry in tree.items():
        if not isinstance(entry, dict):
            continue
        line, cursor = lines.find(_json_key(folder), cursor)
        name, version = _npm_alias(folder, entry.get("version"))
        # v1 does not list the root's dependencies: top-level entries are marked from package.json.
        components.append(
            Component(
                "npm", name, version, path, line, direct=False if nested else None, dev_only=bool(entry.get("dev"))
            )
        )
        if isinstance(entry.get("dependencies"), dict):
            children, cursor = _npm_dependencies(entry["dependencies"], lines, path, True, cursor)
            components += children
    return components, cursor


def _yarn_name(spec: str) -> tuple[str, str]:
    """`name@range` (name may be @scope/name; range may be `npm:other@range`) -> (package, range)."""
    spec = spec.strip().strip('"')
    at = spec.find("@", 1)
    if at < 0:
        return spec, ""
    name, wanted = spec[:at], spec[at + 1 :]
    if wanted.startswith("npm:") and wanted.find("@", 5) > 0:
        target = wanted[4:]
        name, wanted = target[: target.find("@", 1)], target[target.find("@", 1) + 1 :]
    return name, wanted


def parse_yarn_lock(text: str, path: str) -> list[Component]:
    """yarn.lock v1 (and the YAML-like Berry layout): a non-indented `specs:` header per entry, then
    its `version`. Local protocols (workspace:, link:, file:, portal:) are this repository's code."""
    components: list[Component] = []
    current: Component | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            header = raw.rstrip().rstrip(":")
            name, wanted = _yarn_name(header.split(",")[0])
            local = name == "__metadata" or re.match(r"(workspace|link|file|portal|patch):", wanted)
            current = None if local else Component("npm", name, None, path, number, requirement=wanted)
            if current:
                components.append(current)
            continue
        match = re.match(r'^ {2}version:?\s+"?([^"\s]+)"?\s*$', raw)
        if current and match:
            current.version, current.requirement = match.group(1), None
    return [c for c in components if c.version]


def parse_package_json(text: str, path: str) -> list[Component]:
    """package.json without a lock beside it: exact versions only; ranges stay unpinned."""
    data, lines = json.loads(text), Lines(text)
    components = []
    for section, dev in _NPM_SECTIONS:
        if section == "peerDependencies":  # provided by whoever installs this package
            continue
        _, cursor = lines.find(_json_key(section), 0)
        for name, spec in (data.get(section) or {}).items():
            line, _ = lines.find(_json_key(name, '"'), cursor)
            exact = _EXACT_SEMVER.fullmatch(spec.strip()) if isinstance(spec, str) else None
            components.append(
                Component(
                    "npm",
                    name,
                    exact.group(1) if exact else None,
                    path,
                    line,
                    direct=True,
                    dev_only=dev,
                    requirement=None if exact else str(spec),
                )
            )
    return components


def declared_npm(text: str) -> dict[str, bool]:
    data = json.loads(text)
    declared: dict[str, bool] = {}
    for section, dev in _NPM_SECTIONS:
        for name in data.get(section) or {}:
            declared[name] = declared.get(name, True) and dev
    return declared


# -- Java -------------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _pom_properties(project) -> dict[str, str]:
    props: dict[str, str] = {}
    parent = next((c for c in project if _local(c.tag) == "parent"), None)
    for prefix, element in (("project.parent.", parent), ("project.", project)):
        if element is not None:
            for field_name in ("groupId", "artifactId", "version"):
                value = _child_text(element, field_name)
                if value:
                    props[prefix + field_name] = value
    for field_name in ("groupId", "version"):  # a module inherits these from its parent
        if f"project.parent.{field_name}" in props:
            props.setdefault(f"project.{field_name}", props[f"project.parent.{field_name}"])
    for section in (c for c in project if _local(c.tag) == "properties"):
        for prop in section:
            props[_local(prop.tag)] = (prop.text or "").strip()
    props.update({k.replace("project.", "pom.", 1): v for k, v in list(props.items()) if k.startswith("project.")})
    return props


def _resolve(value: str | None, props: dict[str, str]) -> str | None:
    """`${name}` substitution from <properties>, a few levels deep. Long values stay unresolved:
    properties that expand into each other would otherwise be a billion-laughs attack."""
    for _ in range(8):
        if not value or "${" not in value or len(value) > MAX_PROPERTY_CHARS:
            break
        value = re.sub(r"\$\{([^}]+)\}", lambda m: _short(props.get(m.group(1))) or m.group(0), value)
    return value


def _short(value: str | None) -> str | None:
    return value if value is not None and len(value) <= MAX_PROPERTY_CHARS else None


def parse_pom(text: str, path: str) -> list[Component]:
    """pom.xml: declared dependencies (versions from <properties> and <dependencyManagement>);
    scope test = dev-only. Parent POMs outside the file are not fetched."""
    project, lines = ElementTree.fromstring(text.encode()), Lines(text)
    props = _pom_properties(project)
    parents = {child: parent for parent in project.iter() for child in parent}
    managed: dict[tuple[str | None, str | None], str | None] = {}
    declared, cursor = [], 0
    for dep in project.iter():
        if _local(dep.tag) != "dependency":
            continue
        raw_artifact = _child_text(dep, "artifactId") or ""
        line, cursor = lines.find(rf"<artifactId>\s*{re.escape(raw_artifact)}\s*</artifactId>", cursor)
        group, artifact = _resolve(_child_text(dep, "groupId"), props), _resolve(raw_artifact, props)
        version = _resolve(_child_text(dep, "version"), props)
        owner = _local(parents.get(parents.get(dep), project).tag)  # dependencies' parent element
        if owner == "dependencyManagement":
            managed[(group, artifact)] = version
        elif owner in ("project", "profile"):  # not plugin dependencies (build tooling)
            declared.append((group, artifact, version, _child_text(dep, "scope"), line))
    components = []
    for group, artifact, version, scope, line in declared:
        version = version or managed.get((group, artifact))
        pinned = version if version and "${" not in version and not re.search(r"[\[\](),]", version) else None
        components.append(
            Component(
                "Maven",
                f"{group}:{artifact}",
                pinned,
                path,
                line,
                direct=True,
                dev_only=scope == "test",
                requirement=None if pinned else version or "*",
            )
        )
    return components


# -- Go ---------------------------------------------------------------------------------------------


def parse_go_mod(text: str, path: str) -> list[Component]:
    """go.mod `require` lines (`// indirect` = transitive), with `replace` directives applied."""
    requires: list[tuple[str, str, int, bool]] = []
    replaces: dict[tuple[str, str | None], tuple[str, str | None]] = {}
    block = None
    for number, raw in enumerate(text.splitlines(), 1):
        code, _, comment = raw.partition("//")
        words = code.split()
        if block and words == [")"]:
            block = None
            continue
        if not block and words and words[0] in ("require", "replace", "exclude", "retract"):
            directive, words = words[0], words[1:]
            if words == ["("]:
                block = directive
                continue
        elif block:
            directive = block
        else:
            continue
        if directive == "require" and len(words) >= 2:
            requires.append((words[0].strip('"'), words[1], number, "indirect" in comment.split()))
        elif directive == "replace" and "=>" in words:
            arrow = words.index("=>")
            old, new = words[:arrow], words[arrow + 1 :]
            if old and new:
                replaces[(old[0], old[1] if len(old) > 1 else None)] = (new[0], new[1] if len(new) > 1 else None)
    components = []
    for module, version, number, indirect in requires:
        target = replaces.get((module, version)) or replaces.get((module, None))
        if target:
            module, version = target
            if version is None:  # replaced by a local directory: this repository's own code
                continue
        components.append(Component("Go", module, osv_version("Go", version), path, number, direct=not indirect))
    return components


def parse_go_sum(text: str, path: str) -> list[Component]:
    """go.sum module hashes (not the `/go.mod`-only ones): transitive modules go.mod may not list."""
    components = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if len(words) == 3 and not words[1].endswith("/go.mod"):
            components.append(Component("Go", words[0], osv_version("Go", words[1]), path, number, direct=False))
    return components


# -- Ruby and Rust ----------------------------------------------------------------------------------


def parse_gemfile_lock(text: str, path: str) -> list[Component]:
    """Gemfile.lock: `    name (version[-platform])` specs of GEM and GIT sources; DEPENDENCIES = direct."""
    specs: list[Component] = []
    direct: set[str] = set()
    section = None
    for number, raw in enumerate(text.splitlines(), 1):
        if raw and not raw[0].isspace():
            section = raw.strip()
            continue
        spec = re.match(r"^ {4}([^\s(]+) \(([^)\s]+)\)\s*$", raw)
        if section in ("GEM", "GIT") and spec:
            version = spec.group(2).split("-", 1)[0]  # gem versions have no "-": it starts a platform
            specs.append(Component("RubyGems", spec.group(1), version, path, number))
        elif section == "DEPENDENCIES" and (dep := re.match(r"^ {2}([^\s(!]+)", raw)):
            direct.add(dep.group(1))
    for component in specs:
        component.direct = component.name in direct
    return specs


_GEM_DEV_GROUPS = frozenset({"development", "test"})


def declared_gemfile(text: str) -> dict[str, bool]:
    """Gems a Gemfile names, read (never evaluated) line by line: dev-only when every group it is
    declared in (block `group :test do` or `group:` option) is development or test."""
    declared: dict[str, bool] = {}
    blocks: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if group := re.match(r"group\b(.*)\bdo\b", line):
            blocks.append(re.findall(r"""[:'"](\w+)""", group.group(1)))
        elif re.search(r"\bdo(\s*\|[^|]*\|)?$", line):
            blocks.append([])
        elif line == "end" and blocks:
            blocks.pop()
        elif gem := re.match(r"""gem\s*\(?\s*['"]([^'"]+)['"](.*)""", line):
            option = re.search(r"groups?:\s*(\[[^\]]*\]|:\w+|['\"]\w+['\"])", gem.group(2))
            groups = [g for block in blocks for g in block] + (re.findall(r"\w+", option.group(1)) if option else [])
            dev = bool(groups) and set(groups) <= _GEM_DEV_GROUPS
            declared[gem.group(1)] = declared.get(gem.group(1), True) and dev
    return declared


def parse_cargo_lock(text: str, path: str) -> list[Component]:
    """Cargo.lock packages with a source (those without are this workspace's own crates, and their
    `dependencies` name the direct ones)."""
    data, lines = tomllib.loads(text), Lines(text)
    packages = data.get("package") or []
    direct = {dep.split()[0] for p in packages if "source" not in p for dep in p.get("dependencies") or []}
    components, cursor = [], 0
    for package in packages:
        name = package["name"]
        line, cursor = lines.find(rf'^name\s*=\s*"{re.escape(name)}"', cursor)
        if "source" in package:
            components.append(Component("crates.io", name, str(package["version"]), path, line, direct=name in direct))
    return components


def declared_cargo(text: str) -> dict[str, bool]:
    """Cargo.toml dependency tables (also per target and workspace): crate name -> dev-only."""
    data = tomllib.loads(text)
    tables = [data, data.get("workspace") or {}] + list((data.get("target") or {}).values())
    declared: dict[str, bool] = {}
    for table in tables:
        for section, dev in (("dev-dependencies", True), ("build-dependencies", False), ("dependencies", False)):
            for key, spec in (table.get(section) or {}).items():
                name = spec.get("package", key) if isinstance(spec, dict) else key
                declared[name] = declared.get(name, True) and dev
    return declared


# -- dispatch ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestFormat:
    pattern: str  # file name glob (or `dir/glob` matched against the path's tail)
    ecosystem: str
    parse: Callable[[str, str], list[Component]]
    declared_in: str | None = None  # the manifest beside a lock file that names the direct dependencies
    declared: Callable[[str], dict[str, bool]] | None = None  # its reader: name -> dev-only
    superseded_by: tuple[str, ...] = ()  # a lock file beside this manifest states the real versions
    complements: str | None = None  # adds only packages this sibling file does not list

    def matches(self, path: str) -> bool:
        if "/" in self.pattern:
            return fnmatchcase("/" + path, "*/" + self.pattern)
        return fnmatchcase(PurePosixPath(path).name, self.pattern)


NPM_LOCKS = ("package-lock.json", "npm-shrinkwrap.json", "yarn.lock")

FORMATS: tuple[ManifestFormat, ...] = (
    ManifestFormat("package-lock.json", "npm", parse_package_lock, "package.json", declared_npm),
    ManifestFormat("npm-shrinkwrap.json", "npm", parse_package_lock, "package.json", declared_npm),
    ManifestFormat("yarn.lock", "npm", parse_yarn_lock, "package.json", declared_npm),
    ManifestFormat("package.json", "npm", parse_package_json, superseded_by=NPM_LOCKS),
    ManifestFormat("Pipfile.lock", "PyPI", parse_pipfile_lock, "Pipfile", declared_pipfile),
    ManifestFormat("Pipfile", "PyPI", parse_pipfile, superseded_by=("Pipfile.lock",)),
    ManifestFormat("poetry.lock", "PyPI", parse_poetry_lock, "pyproject.toml", declared_pyproject),
    ManifestFormat("*requirements*.txt", "PyPI", parse_requirements),
    ManifestFormat("requirements/*.txt", "PyPI", parse_requirements),
    ManifestFormat("pom.xml", "Maven", parse_pom),
    ManifestFormat("go.mod", "Go", parse_go_mod),
    ManifestFormat("go.sum", "Go", parse_go_sum, complements="go.mod"),
    ManifestFormat("Gemfile.lock", "RubyGems", parse_gemfile_lock, "Gemfile", declared_gemfile),
    ManifestFormat("Cargo.lock", "crates.io", parse_cargo_lock, "Cargo.toml", declared_cargo),
)


def format_of(path: str) -> ManifestFormat | None:
    if any(part in IGNORED_DIRS for part in PurePosixPath(path).parts[:-1]):
        return None
    return next((f for f in FORMATS if f.matches(path)), None)


def _sibling(path: str, name: str) -> str:
    parent = PurePosixPath(path).parent
    return str(parent / name) if str(parent) != "." else name


@dataclass
class Inventory:
    components: list[Component] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def read_inventory(paths: Iterable[str], read: Callable[[str], str]) -> Inventory:
    """Components of every manifest among `paths` (repository-relative), read with `read(path)`.
    Lock files win over their manifests; a manifest beside a lock file only marks direct ones."""
    paths = list(paths)
    present = set(paths)
    inventory = Inventory()
    parsed: dict[str, list[Component]] = {}
    for path in paths:
        fmt = format_of(path)
        if fmt is None or any(_sibling(path, lock) in present for lock in fmt.superseded_by):
            continue
        text = _guarded(inventory, path, lambda: _read_capped(read, path))
        components = None if text is None else _guarded(inventory, path, lambda: fmt.parse(text, path))
        if components is None:
            continue
        inventory.files += 1
        inventory.bytes += len(text)
        manifest = _sibling(path, fmt.declared_in) if fmt.declared_in else None
        if manifest in present:
            declared = _guarded(inventory, manifest, lambda: fmt.declared(_read_capped(read, manifest)))
            if declared is not None:
                _mark_declared(components, {name_key(fmt.ecosystem, n): dev for n, dev in declared.items()})
        parsed[path] = components
    for path, components in parsed.items():
        fmt = format_of(path)
        if fmt and fmt.complements:
            listed = {c.key for c in parsed.get(_sibling(path, fmt.complements), [])}
            components = [c for c in components if c.key not in listed]
        inventory.components += _deduplicate(components)
    return inventory


def _guarded(inventory: Inventory, path: str, work: Callable):
    """Run one read or parse; hostile or broken input of any kind becomes an error row, never a crash.
    A file that cannot be read (gone from the checkout, I/O error) is not the repository's content:
    it fails the scan of that repository, so that the partial result is neither reported ok nor cached."""
    try:
        return work()
    except OSError:
        raise
    except Exception as exc:
        inventory.errors.append(ManifestError(path, f"{type(exc).__name__}: {str(exc)[:300]}"))
        return None


def _read_capped(read: Callable[[str], str], path: str) -> str:
    text = read(path)
    if len(text) > MAX_MANIFEST_BYTES:
        raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
    return text


def _mark_declared(components: list[Component], declared: dict[str, bool]) -> None:
    for component in components:
        if component.direct is None:
            component.direct = component.key in declared
        if component.direct and declared.get(component.key):
            component.dev_only = True


def _deduplicate(components: list[Component]) -> list[Component]:
    """One row per package and version in a file (npm nests copies; Pipfile.lock may list one in
    both sections): direct if any copy is, dev-only only if every copy is."""
    merged: dict[tuple[str, str | None], Component] = {}
    for component in components:
        key = (component.key, component.version)
        first = merged.setdefault(key, component)
        if first is not component:
            first.direct = True if (first.direct or component.direct) else (first.direct and component.direct)
            first.dev_only = first.dev_only and component.dev_only
    return list(merged.values())
