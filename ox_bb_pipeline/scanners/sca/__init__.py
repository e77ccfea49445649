"""SCA: components from manifests and lock files, matched against OSV advisories, one finding per
(component, advisory); the component inventory is the SBOM table (and a CycloneDX export)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from pathlib import Path

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentScope, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from ...advisories.settings import SYNC_HINT
from ...findings import Finding, RepoRef
from ..base import ScanOutput, rules_digest
from ..lake_tables import COMPONENT_SCHEMA, MANIFEST_ERROR_SCHEMA
from ..snapshot import Snapshot
from .ecosystems import display_version, name_key
from .manifests import Component, ManifestError, format_of, read_inventory
from .osv import AdvisoryDatabase, Match, advisory_digest, index_path, load_database, osv_paths

__all__ = [
    "COMPONENT_SCHEMA",
    "EXTRA_SCHEMAS",
    "MANIFEST_ERROR_SCHEMA",
    "ScaScanner",
    "cyclonedx_bom",
    "cyclonedx_json",
    "cyclonedx_output",
    "ecosystems_not_evaluated",
    "not_evaluated_line",
]

CONTROLS = ["CIS-SSC-1.5.5", "SSDF-PW.4.4", "SSDF-RV.1.1", "CICD-SEC-3"]
CODE_VERSION = rules_digest(*sorted(Path(__file__).parent.glob("*.py")))  # parsers and matching logic

EXTRA_SCHEMAS = {"components": COMPONENT_SCHEMA, "manifest_errors": MANIFEST_ERROR_SCHEMA}


def _repository_columns(repo: RepoRef) -> dict:
    return {
        "connection": repo.connection,
        "workspace": repo.workspace,
        "repository_uuid": repo.repository_uuid,
        "repository": repo.repository,
        "commit": repo.commit,
    }


def component_row(repo: RepoRef, component: Component) -> dict:
    return {
        **_repository_columns(repo),
        "ecosystem": component.ecosystem,
        "name": component.name,
        "version": component.version,
        "purl": component.purl,
        "manifest": component.manifest,
        "line": component.line,
        "direct": component.direct,
        "dev_only": component.dev_only,
        "requirement": component.requirement,
    }


class ScaScanner:
    """Dependency vulnerabilities from OSV data: `OX_BB_OSV_PATH`, else the index `ox-bb advisories sync`
    builds; manifests of an ecosystem without data make the scan `not_evaluable`."""

    name = "sca"
    category = "sca"

    def __init__(self, osv_path: str | Path | Iterable[str | Path] | None = None, home: Path | None = None) -> None:
        given = [osv_path] if isinstance(osv_path, (str, Path)) else osv_path
        self._paths = [Path(p) for p in given] if given else None  # None: read the environment when used
        self._index = index_path(home) if home is not None else None  # the synced index; None: no index

    def use_data_home(self, home: Path) -> None:
        """Read the synced index of this data home (the scan stage names it; a scanner reads no environment
        for it)."""
        self._index = index_path(home)

    def _osv_paths(self) -> list[Path]:
        return self._paths or osv_paths()

    def version(self) -> str:
        return f"sca-{CODE_VERSION}+osv-{advisory_digest(self._osv_paths(), self._index)}"

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        database, version = load_database(self._osv_paths(), self._index), self.version()
        outputs = []
        for snapshot in snapshots:
            try:
                outputs.append(self.scan_snapshot(snapshot, database, version))
            except Exception as exc:  # one repository's failure is its own error row
                outputs.append(ScanOutput(snapshot.repo.repository_uuid, error=f"{type(exc).__name__}: {exc}"))
        return outputs

    def scan_snapshot(self, snapshot: Snapshot, database: AdvisoryDatabase, version: str) -> ScanOutput:
        repo = snapshot.repo
        inventory = read_inventory(snapshot.paths(), snapshot.read_text)
        errors = inventory.errors + [
            ManifestError(path, f"not scanned: {reason}")
            for path, reason in snapshot.skipped.items()
            if format_of(path)
        ]
        findings = [
            _finding(repo, version, component, match, *database.exploitation(match.advisory))
            for component in inventory.components
            for match in database.matches(component.ecosystem, component.name, component.version)
        ]
        # No data for an ecosystem is "not evaluated", never a silent "no vulnerabilities".
        missing = sorted({c.ecosystem for c in inventory.components} - database.ecosystems)
        return ScanOutput(
            repo.repository_uuid,
            findings,
            files_scanned=inventory.files,
            bytes_scanned=inventory.bytes,
            not_evaluable=not_evaluated_reason(missing, database.source) if missing else None,
            extra={
                "components": [component_row(repo, c) for c in inventory.components],
                "manifest_errors": [
                    {**_repository_columns(repo), "manifest": e.manifest, "error": e.error} for e in errors
                ],
            },
        )


def not_evaluated_reason(ecosystems: list[str], source: str) -> str:
    """The scan_runs reason; `ecosystems_not_evaluated` reads the names back from it."""
    where = "OX_BB_OSV_PATH" if source == "OX_BB_OSV_PATH" else "the advisory index"
    return f"no advisory data for {', '.join(ecosystems)} in {where}: {SYNC_HINT}"


_REASON = re.compile(r"^no advisory data for (.+?) in ")


def ecosystems_not_evaluated(scan_runs: Iterable[dict]) -> dict[str, int]:
    """Ecosystem -> repositories whose manifests of it SCA could not evaluate (no advisory data)."""
    counts: dict[str, int] = {}
    for run in scan_runs:
        found = _REASON.match(run.get("error") or "") if run.get("status") == "not_evaluable" else None
        for ecosystem in found.group(1).split(", ") if found else ():
            counts[ecosystem] = counts.get(ecosystem, 0) + 1
    return dict(sorted(counts.items()))


def not_evaluated_line(scan_runs: Iterable[dict]) -> str | None:
    """One sentence for terminals and reports, or None when SCA evaluated everything."""
    counts = ecosystems_not_evaluated(scan_runs)
    if not counts:
        return None
    listed = ", ".join(f"{eco} ({n} repositor{'y' if n == 1 else 'ies'})" for eco, n in counts.items())
    return f"SCA not evaluated for {listed}: no advisory data; {SYNC_HINT}"


def _finding(
    repo: RepoRef,
    scanner_version: str,
    component: Component,
    match: Match,
    known_exploited: bool | None = None,
    epss: float | None = None,
) -> Finding:
    advisory, eco = match.advisory, component.ecosystem
    shown = display_version(eco, component.version)
    relation = {True: "direct", False: "transitive", None: "dependency"}[component.direct]
    scope = ", dev-only" if component.dev_only else ""
    if match.fixed_version:
        remediation = f"Upgrade {component.name} to {display_version(eco, match.fixed_version)} or later"
        remediation += (
            " (it is transitive: upgrade the package that pulls it in, or pin it with an override)."
            if component.direct is False
            else "."
        )
    else:
        remediation = (
            f"No fixed version of {component.name} is published for {advisory.id}: remove or replace "
            "it, or apply the advisory's mitigation."
        )
    return Finding.at(
        repo,
        scanner="sca",
        scanner_version=scanner_version,
        rule_id=advisory.id,
        title=advisory.summary,
        category="sca",
        base_severity=advisory.severity,
        anchor=f"{eco}:{name_key(eco, component.name)}@{component.version}:{advisory.id}",
        file_path=component.manifest,
        start_line=component.line,
        end_line=component.line,
        evidence=(
            f"{component.name}@{shown} ({eco}, {relation}{scope}) is in the range {match.affected_range} "
            f"affected by {advisory.id}"
        ),
        remediation=remediation,
        cwe=advisory.cwe,
        package=component.name,
        version=component.version,
        fixed_version=match.fixed_version,
        vulnerability_ids=[advisory.id, *advisory.aliases],
        controls=list(CONTROLS),
        cvss_score=advisory.score,
        cvss_vector=advisory.vector,
        known_exploited=known_exploited,
        epss=epss,
    )


# -- CycloneDX --------------------------------------------------------------------------------------


def _cdx_component(row: dict, manifests: list[str]) -> CdxComponent:
    parsed = PackageURL.from_string(row["purl"])
    properties = [Property(name="ox-bb:manifest", value=m) for m in manifests]
    properties += [Property(name="ox-bb:ecosystem", value=row["ecosystem"])]
    if row.get("direct") is not None:
        properties.append(Property(name="ox-bb:direct", value=str(bool(row["direct"])).lower()))
    if row.get("requirement"):
        properties.append(Property(name="ox-bb:requirement", value=row["requirement"]))
    # CycloneDX's "excluded" scope is for components used only in tests or builds, never at runtime.
    return CdxComponent(
        type=ComponentType.LIBRARY,
        name=parsed.name,
        group=parsed.namespace,
        version=parsed.version,
        purl=parsed,
        bom_ref=row["purl"],
        properties=properties,
        scope=ComponentScope.EXCLUDED if row.get("dev_only") else ComponentScope.REQUIRED,
    )


def cyclonedx_json(components: list[dict], spec_version: str = "1.6") -> str:
    """A CycloneDX JSON document for one repository's component rows (as in `extra["components"]`):
    one component per purl, the manifests that state it as properties, direct ones under the root."""
    return cyclonedx_output(cyclonedx_bom(components), spec_version)


def cyclonedx_output(bom: Bom, spec_version: str = "1.6") -> str:
    version = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}[spec_version]
    return make_outputter(bom, OutputFormat.JSON, version).output_as_string(indent=2)


def cyclonedx_bom(components: list[dict]) -> Bom:
    """The Bom of `cyclonedx_json` (the warehouse's export adds the vulnerabilities to it)."""
    repositories = {row["repository_uuid"] for row in components}
    if len(repositories) > 1:
        raise ValueError(f"cyclonedx_json takes one repository's components, got {len(repositories)}")
    first = components[0] if components else {}
    name = "/".join(p for p in (first.get("workspace"), first.get("repository")) if p) or "repository"
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"ox-bb:{first.get('repository_uuid')}@{first.get('commit')}")
    )
    root = CdxComponent(
        type=ComponentType.APPLICATION,
        name=name,
        version=first.get("commit"),
        bom_ref=first.get("repository_uuid") or name,
    )
    bom.metadata.component = root
    by_purl: dict[str, list[dict]] = {}
    for row in components:
        by_purl.setdefault(row["purl"], []).append(row)
    direct = []
    for _purl_text, rows in sorted(by_purl.items()):
        merged = {
            **rows[0],
            "dev_only": all(r.get("dev_only") for r in rows),
            "direct": True if any(r.get("direct") for r in rows) else rows[0].get("direct"),
        }
        component = _cdx_component(merged, sorted({r["manifest"] for r in rows}))
        bom.components.add(component)
        if merged["direct"]:
            direct.append(component)
    bom.register_dependency(root, direct)
    return bom
