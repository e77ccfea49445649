"""Secrets: detect-secrets as a library, plus our detectors and precision filters (both data), over every
snapshot file, and the extract stage's unsecured pipeline variables. A secret never leaves this module:
evidence is a masked preview, and the fingerprint anchor is the secret's salted hash.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath

from detect_secrets import SecretsCollection
from detect_secrets.__version__ import VERSION as DETECT_SECRETS_VERSION
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.core.scan import get_filters_with_parameter
from detect_secrets.filters.heuristic import is_swagger_file
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.settings import Settings, transient_settings

from ..findings import Finding, RepoRef
from ..redaction import mask, salted_hash
from . import secrets_detectors, secrets_filters
from .base import (
    SEVERITY_DIR,
    YAML_ALIAS_LIMIT,
    ScanOutput,
    rules_digest,
    severity_table,
    skipped_file,
    yaml_alias_expansion,
)
from .secrets_lines import scan_lines
from .snapshot import Snapshot

PIPELINES_FILE = "bitbucket-pipelines.yml"
CONTROLS = ["CIS-SSC-1.5.1", "SSDF-PS.1.1", "CICD-SEC-6"]
PIPELINE_FILE_CONTROLS = [*CONTROLS, "CIS-SSC-2.3.8"]
VARIABLE_CONTROLS = ["CIS-SSC-2.3.8", "CIS-SSC-1.5.1", "SSDF-PS.1.1", "SSDF-PO.5.1", "CICD-SEC-6"]
VARIABLE_RULE = "unsecured-pipeline-variable"

# Lock and checksum files hold hashes and registry URLs, never credentials; detect-secrets' own
# list (is_lock_file) misses several of these.
LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
        "Pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "pdm.lock",
        "go.sum",
        "Cargo.lock",
        "Gemfile.lock",
        "composer.lock",
        "Podfile.lock",
        "packages.lock.json",
        "mix.lock",
        "pubspec.lock",
        "flake.lock",
        "gradle.lockfile",
        "Package.resolved",
        "Cartfile.resolved",
        "conan.lock",
    }
)

# Our precision filters (data: secrets_filters.yaml), plugged into detect-secrets' own filter chain by import
# path (it injects arguments by parameter name), so they apply inside scan_file like its built-in heuristics.
NOISE_FILTERS = [f"{secrets_filters.__name__}.is_known_noise"]

# detect-secrets keeps its settings in a process-wide singleton: one scan at a time per process.
_SETTINGS_LOCK = threading.Lock()

_AWS_KEY_ID = re.compile(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}")
_PEM_HEADER = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


# -- the scanner ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def scanner_version() -> str:
    """detect-secrets' version + a digest of this module, our detectors and filters, and the severity table."""
    digest = rules_digest(
        Path(__file__),
        SEVERITY_DIR / "secrets.yaml",
        secrets_filters.FILTERS_FILE,
        Path(secrets_filters.__file__),
        secrets_detectors.DETECTORS_FILE,
        Path(secrets_detectors.__file__),
    )
    return f"detect-secrets {DETECT_SECRETS_VERSION}+{digest}"


class SecretsScanner:
    """detect-secrets' plugins and ours, no baseline, in-process; see the module docstring."""

    name = "secrets"
    category = "secrets"

    def version(self) -> str:
        return scanner_version()

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        with _engine():
            return [self._scan_snapshot(snapshot) for snapshot in snapshots]

    def _scan_snapshot(self, snapshot: Snapshot) -> ScanOutput:
        output = ScanOutput(snapshot.repo.repository_uuid)
        secrets_filters.REMOVED.clear()
        collection = SecretsCollection(root=str(snapshot.root))
        text_hits: dict[str, list[PotentialSecret]] = {}
        skipped = []
        for file in snapshot.files:
            if PurePosixPath(file.path).name in LOCK_FILES:
                continue
            full = snapshot.root / file.path
            try:
                if _path_filtered(file.path):  # read and dropped by name, as detect-secrets would
                    output.files_scanned += 1
                    output.bytes_scanned += file.size
                    continue
                # detect-secrets' YAML transformer walks the alias-expanded tree: a YAML bomb is read as text
                if _is_yaml(file.path) and yaml_alias_expansion(full) > YAML_ALIAS_LIMIT:
                    text_hits[file.path] = _scan_as_text(full)
                else:
                    collection.scan_file(file.path)
                    # detect-secrets reads YAML through its transformer, which sees mapping values only:
                    # a secret in a `script:` list item of the pipeline file needs a plain-text pass.
                    if file.path == PIPELINES_FILE:
                        text_hits[file.path] = _scan_as_text(full)
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not lose the others
                # Only the exception type: parser messages quote file content, which may be a secret.
                skipped.append(skipped_file(snapshot.repo, "secrets", file.path, f"scan failed: {type(exc).__name__}"))
                continue
            output.files_scanned += 1
            output.bytes_scanned += file.size
        hits = {
            path: [*collection.data.get(path, ()), *text_hits.get(path, ())] for path in {*collection.data, *text_hits}
        }
        output.findings = _findings(snapshot, hits, datetime.now(UTC))
        output.extra["secrets_filtered"] = _filtered_rows(snapshot.repo)
        if skipped:
            output.extra["skipped_files"] = skipped
        return output


def _filtered_rows(repo: RepoRef) -> list[dict]:
    """What each precision filter removed in this snapshot, per detector (an extra table: counts, no values)."""
    return [
        {
            "repository_uuid": repo.repository_uuid,
            "filter": name,
            "detector": secret_type,
            "rule_id": _rule_by_detector().get(secret_type, secret_type),
            "removed": count,
        }
        for (name, secret_type), count in sorted(secrets_filters.REMOVED.items())
    ]


def filtered_summary(rows: Iterable[Mapping]) -> dict[str, int]:
    """Candidates removed per precision filter, summed over `secrets_filtered` rows (all repositories and
    detectors of a scan): the shape for the secrets asset's Dagster metadata. Counts only, never a value."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["filter"]] = totals.get(row["filter"], 0) + int(row["removed"])
    return dict(sorted(totals.items()))


@contextmanager
def _engine() -> Iterator[None]:
    """detect-secrets configured with its plugins, ours and all filters, for one scan at a time."""
    with _SETTINGS_LOCK, transient_settings(_detect_secrets_config()):
        # detect-secrets caches its type -> plugin map; ours join it only once the settings name them
        get_mapping_from_secret_type_to_class.cache_clear()
        yield


def _detect_secrets_config() -> dict:
    """Every plugin detect-secrets ships, ours (loaded by file path, as detect-secrets does for custom
    plugins), its default heuristic filters, and ours."""
    built_in = [
        cls.__name__
        for cls in get_mapping_from_secret_type_to_class().values()
        if cls.__module__.startswith("detect_secrets.")
    ]
    path = f"file://{secrets_detectors.__file__}"
    ours = [{"name": name, "path": path} for name in secrets_detectors.load_detectors()]
    return {
        "plugins_used": [{"name": name} for name in built_in] + ours,
        "filters_used": [{"path": path} for path in sorted({*Settings().filters, *NOISE_FILTERS} - set(PATH_FILTERS))],
    }


# detect-secrets' file filters that match anywhere in the path they are given. scan_file gives them the
# absolute checkout path (<home>/cache/snapshots/<workspace>/<slug>/<commit>/…), so a workspace, repository or
# data home named "swagger…" would drop every file. The engine leaves them out; _path_filtered applies them
# to the repository-relative path.
PATH_FILTERS = {"detect_secrets.filters.heuristic.is_swagger_file": is_swagger_file}


def _path_filtered(path: str) -> bool:
    return any(check(path) for check in PATH_FILTERS.values())


def skipped_by_name(path: str) -> bool:
    """True when the tip scan never reads a file at this repository path for its name alone: a lock file (the
    scanner's own list), or one detect-secrets' scan_file drops before reading it (its file filters that take
    only the name: a non-text extension, its lock files, swagger). Not is_invalid_file: a path in history need
    not exist on disk. Needs the engine's settings (`_engine()`)."""
    if PurePosixPath(path).name in LOCK_FILES or _path_filtered(path):
        return True
    return any(
        check.injectable_variables == {"filename"} and check.path != _EXISTS_FILTER and check(filename=path)
        for check in get_filters_with_parameter("filename")
    )


_EXISTS_FILTER = "detect_secrets.filters.common.is_invalid_file"


def _is_yaml(path: str) -> bool:
    return path.endswith((".yml", ".yaml", ".eyaml"))


def _scan_as_text(path: Path) -> list[PotentialSecret]:
    """Every line through the plugins and filters, with no file-type transformer in between. The `.txt`
    name makes the keyword plugin use its generic, quotes-required patterns (its YAML ones read
    `pip install detect-secrets==1.5.0` in a script line as a secret). secrets_lines says why not
    detect-secrets' scan_file."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return list(scan_lines(enumerate(lines, start=1), filename=str(path.with_suffix(".txt"))))


def redact_text(text: str) -> tuple[str, int]:
    """`text` with every secret detect-secrets finds (read line by line, as the pipeline file is) replaced
    by `REDACTED-<rule>-<salted-hash prefix>`: still valid YAML, still telling that a literal credential
    was there (posture check BB-026 reads the markers), never the secret. Returns the text and the count."""
    lines = text.split("\n")
    with _engine():
        hits = list(scan_lines(enumerate(lines, start=1), filename="bitbucket-pipelines.txt"))
    count = 0
    for hit in sorted(hits, key=lambda h: -len(h.secret_value or "")):
        value = hit.secret_value
        if not value:
            continue
        index = hit.line_number - 1
        rule = _rule_of(hit.type, value)
        if rule == "private-key":
            block, last = _private_key_block(lines, hit.line_number)
            marker = f"REDACTED-{rule}-{salted_hash(block)[:8]}"
            lines[index:last] = [marker] + [""] * (last - index - 1)
        else:
            value = _full_token(value, lines[index])
            if value not in lines[index]:
                continue
            lines[index] = lines[index].replace(value, f"REDACTED-{rule}-{salted_hash(value)[:8]}")
        count += 1
    return "\n".join(lines), count


# -- hits to findings ----------------------------------------------------------------------------------
def _findings(snapshot: Snapshot, hits: dict[str, list[PotentialSecret]], scanned_at: datetime) -> list[Finding]:
    findings: dict[str, Finding] = {}
    for path in sorted(hits):
        lines = snapshot.read_text(path).splitlines()
        best: dict[tuple[int, str], PotentialSecret] = {}  # (line, value) -> most specific hit
        for hit in hits[path]:
            line = lines[hit.line_number - 1] if 0 < hit.line_number <= len(lines) else ""
            key = (hit.line_number, _full_token(hit.secret_value or "", line))
            if key not in best or _specificity(hit.type) < _specificity(best[key].type):
                best[key] = hit
        superseded = {(line, gone) for (line, _), hit in best.items() for gone in _supersedes(hit.type)}
        for (line_number, value), hit in sorted(best.items(), key=lambda item: item[0]):
            if (line_number, hit.type) in superseded:
                continue
            finding = _finding(snapshot.repo, path, hit.type, value, line_number, lines, scanned_at)
            findings.setdefault(finding.finding_id, finding)  # the same secret again in the file: first line
    return list(findings.values())


def _finding(
    repo: RepoRef, path: str, secret_type: str, value: str, line_number: int, lines: list[str], scanned_at: datetime
) -> Finding:
    rule = _rule_of(secret_type, value)
    entry = _rule_entry(rule)
    end_line = line_number
    evidence = f"{mask(value)} ({secret_type} detector)"
    if rule == "private-key":
        value, end_line = _private_key_block(lines, line_number)
        header = _PEM_HEADER.search(value)
        evidence = (
            f"{header.group(0) if header else 'PEM'} block of {end_line - line_number + 1} lines"
            f" ({secret_type} detector)"
        )
    return Finding.at(
        repo,
        scanner="secrets",
        scanner_version=scanner_version(),
        rule_id=rule,
        title=entry["title"],
        category="secrets",
        base_severity=entry["severity"],
        anchor=salted_hash(value),
        file_path=path,
        start_line=line_number,
        end_line=end_line,
        evidence=evidence,
        remediation=entry["remediation"],
        cwe=entry.get("cwe"),
        controls=PIPELINE_FILE_CONTROLS if path == PIPELINES_FILE else CONTROLS,
        scanned_at=scanned_at,
    )


def _full_token(value: str, line: str) -> str:
    """detect-secrets' GitHub plugin returns its capture group (`ghp`), not the token: widen a value that
    short to the whole token on the line, so the anchor hashes the secret, not its prefix."""
    if len(value) >= 8:
        return value
    match = re.search(re.escape(value) + r"[\w\-.]*", line)
    return match.group(0) if match else value


def _private_key_block(lines: list[str], line_number: int) -> tuple[str, int]:
    """The whole PEM block from its BEGIN line (detect-secrets reports only the armour text), so the
    anchor changes when the key does. Returns the block and its last line number."""
    start = line_number - 1
    for index in range(start, min(start + 200, len(lines))):
        if "-----END" in lines[index]:
            return "\n".join(lines[start : index + 1]), index + 1
    return lines[start] if 0 <= start < len(lines) else "", line_number


@lru_cache(maxsize=1)
def _rule_by_detector() -> dict[str, str]:
    """Detector (secret type) -> rule id; a rule may come from several detectors (a list)."""
    mapping = {}
    for rule, entry in severity_table("secrets").items():
        detectors = entry.get("detector") or []
        mapping.update({detector: rule for detector in ([detectors] if isinstance(detectors, str) else detectors)})
    return mapping


def _rule_of(secret_type: str, value: str) -> str:
    if secret_type == "AWS Access Key" and not _AWS_KEY_ID.fullmatch(value):
        return "aws-secret-key"  # detect-secrets' AWS plugin reports the 40-character secret under the same type
    return _rule_by_detector().get(secret_type) or re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def _rule_entry(rule: str) -> dict:
    table = severity_table("secrets")
    return {**table["default"], **table.get(rule, {})}


def _specificity(secret_type: str) -> int:
    """-1 for our vendor detectors, 0 for a pattern detector (it knows what the secret is), 1 for a keyword,
    2 for entropy alone."""
    plugin = get_mapping_from_secret_type_to_class().get(secret_type)
    if plugin is not None and issubclass(plugin, HighEntropyStringsPlugin):
        return 2
    return getattr(plugin, "specificity", 1 if plugin is KeywordDetector else 0)


def _supersedes(secret_type: str) -> tuple[str, ...]:
    """Detector types whose hit on the same line a hit of `secret_type` replaces (a GCP key file's line is
    also a private-key hit)."""
    return getattr(get_mapping_from_secret_type_to_class().get(secret_type), "supersedes", ())


# -- pipeline variables from the extract stage --------------------------------------------------------
def variable_findings(
    rows: Iterable[Mapping],
    repo_lookup: Mapping[tuple[str, str, str], RepoRef] | None = None,
    scanned_at: datetime | None = None,
) -> list[Finding]:
    """Findings for the unsecured pipeline variables whose value looks like a secret.

    `rows` are the extract stage's `pipeline_variables` rows: they carry the value's salted hash, never
    the value. `repo_lookup` maps (connection, workspace, slug) to the scanned RepoRef (for its commit);
    workspace-level variables belong to no repository (empty repository fields)."""
    entry = _rule_entry(VARIABLE_RULE)
    scanned_at = scanned_at or datetime.now(UTC)
    findings = []
    for row in rows:
        if row.get("secured") or not row.get("value_looks_secret") or not row.get("value_hash"):
            continue
        repo = (repo_lookup or {}).get((row["connection"], row["workspace"], row.get("repository"))) or RepoRef(
            row["connection"], row["workspace"], row.get("repository_uuid") or "", row.get("repository") or ""
        )
        scope = row["level"] + (f" ({row['environment']})" if row.get("environment") else "")
        # The value's hash plus where the variable lives: the same value in two variables is two things to fix,
        # and a workspace-level variable has no repository to tell two workspaces apart.
        anchor = "|".join(
            [
                row["workspace"] if not repo.repository_uuid else "",
                row["level"],
                row.get("environment") or "",
                row["key"],
                row["value_hash"],
            ]
        )
        findings.append(
            Finding.at(
                repo,
                scanner="secrets",
                scanner_version=scanner_version(),
                rule_id=VARIABLE_RULE,
                title=entry["title"],
                category="secrets",
                base_severity=entry["severity"],
                anchor=anchor,
                evidence=f"{scope} pipeline variable {row['key']} is not secured and its value looks like a secret"
                f" ({row.get('value_length') or '?'} chars)",
                remediation=entry["remediation"],
                cwe=entry.get("cwe"),
                controls=VARIABLE_CONTROLS,
                scanned_at=scanned_at,
            )
        )
    return findings
