"""Report assets read by other tools and people: SARIF 2.1.0 logs and CycloneDX SBOMs with vulnerabilities, one
file per repository under <data home>/exports/sarif|cyclonedx/ (see warehouse/interchange.py), and the explorer page."""

import dagster as dg

from ...warehouse.interchange import export
from ..storage.resources import StorageResource


def _materialize(fmt: str, storage: StorageResource) -> dg.MaterializeResult:
    written = export(fmt, home=storage.home_path())
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.int(len(written)),
            "folder": dg.MetadataValue.path(str(written[0].parent) if written else ""),
            "repositories": dg.MetadataValue.md("\n".join(f"- {p.name}" for p in written[:50]) or "(none)"),
        }
    )


@dg.asset(
    key=["reports", "sarif"],
    group_name="reports",
    kinds={"json"},
    owners=["team:appsec"],
    deps=[["warehouse", "findings_queue"], ["warehouse", "findings"]],
    description="SARIF 2.1.0 per repository (exports/sarif/<workspace>+<slug>.sarif) for GitHub code "
    "scanning or DefectDojo: open findings, suppressed ones marked as such, no evidence.",
)
def sarif(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    return _materialize("sarif", storage)


@dg.asset(
    key=["reports", "cyclonedx"],
    group_name="reports",
    kinds={"json"},
    owners=["team:appsec"],
    deps=[["warehouse", "findings_queue"], ["warehouse", "findings"]],
    description="CycloneDX 1.6 SBOM per repository (exports/cyclonedx/<workspace>+<slug>.cdx.json): its "
    "components with the SCA vulnerabilities that affect them.",
)
def cyclonedx(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    return _materialize("cyclonedx", storage)


@dg.asset(
    key=["reports", "explorer"],
    group_name="reports",
    kinds={"html"},
    owners=["team:appsec"],
    deps=[
        ["warehouse", "findings_queue"],
        ["warehouse", "findings_daily"],
        ["warehouse", "remediation_summary"],
        ["warehouse", "compliance_daily"],
    ],
    description="reports/explorer.html: one offline page with trends, filters and a drill-down from "
    "application to findings to detail.",
)
def explorer(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    from ...warehouse.explorer import write_explorer

    path = write_explorer(storage.home_path())
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "bytes": dg.MetadataValue.int(path.stat().st_size)}
    )
