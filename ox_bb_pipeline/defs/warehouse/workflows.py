"""Workflows after the warehouse models: workflows.yaml run in the mode it asks for (a dry run
unless `enabled: true`), with what each rule matched as metadata. Assignments and severity
changes it decides show in the warehouse from the next build on (see warehouse/decisions.py)."""

import dagster as dg

from ...clock import SystemClock
from ...warehouse.workflows import bitbucket_connections, load_workflows, run_workflows
from ..bitbucket.resources import BitbucketResource
from ..storage.resources import StorageResource


def _clients(bitbucket: BitbucketResource, names: set[str], log) -> dict:
    """A client per connection the rules write to; one that cannot be made fails its own actions."""
    clients = {}
    for name in sorted(names):
        try:
            clients[name] = bitbucket.client(name)
        except Exception as exc:  # noqa: BLE001 - its actions record "no client", the rest go on
            log.warning(f"workflows: no client for connection {name!r}: {type(exc).__name__}: {exc}")
    return clients


DRY_RUN = "dry run (enabled: false)"


def _metadata(outcome: dict) -> dict:
    preview = outcome["preview"]
    lines = ["| rule | matches |", "|---|---|"]
    lines += [f"| {r['rule']} | {r['matches']} |" for r in preview]
    metadata = {
        "mode": dg.MetadataValue.text("applied" if outcome["enabled"] else DRY_RUN),
        "rules": dg.MetadataValue.int(len(preview)),
        "preview": dg.MetadataValue.md("\n".join(lines)),
        **{f"matches: {r['rule']}": dg.MetadataValue.int(r["matches"]) for r in preview},
    }
    if outcome["enabled"]:
        applied = outcome["applied"]
        by_rule: dict[str, dict] = {}
        for summary in applied:
            by_rule.setdefault(summary["rule"], {})[summary["action"]] = summary
        metadata["applied"] = dg.MetadataValue.json(by_rule)
        metadata["actions_done"] = dg.MetadataValue.int(sum(s["done"] for s in applied))
        metadata["actions_failed"] = dg.MetadataValue.int(sum(s["error"] for s in applied))
    return metadata


@dg.asset(
    key=["reports", "workflows"],
    group_name="reports",
    kinds={"duckdb"},
    pool="duckdb_writer",
    owners=["team:appsec"],
    deps=[["warehouse", "findings_queue"], ["warehouse", "enriched_findings"]],
    description="workflows.yaml over the built findings_queue: how many findings each rule "
    "matches and, when the file says `enabled: true`, its actions (assign, "
    "set_severity, webhook, code insights, pull request comment), once per "
    "rule, action and finding. Assignments and severity changes show from the "
    "next warehouse build on.",
)
def workflows(
    context: dg.AssetExecutionContext, bitbucket: BitbucketResource, storage: StorageResource
) -> dg.MaterializeResult:
    """Preview, then act when enabled; a failing action never stops the others (see the log)."""
    settings = load_workflows(home=storage.home_path())
    connections = bitbucket_connections(settings)
    outcome = run_workflows(
        settings, lambda: _clients(bitbucket, connections, context.log), SystemClock().now(), storage.home_path()
    )
    for summary in outcome["applied"]:
        if summary["error"]:
            context.log.warning(
                f"workflow {summary['rule']!r}: {summary['action']} failed for "
                f"{summary['error']} finding(s) (see workflow_action_log); "
                "retried by the next run"
            )
    return dg.MaterializeResult(metadata=_metadata(outcome))
