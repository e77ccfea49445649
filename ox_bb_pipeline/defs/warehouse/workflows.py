"""Workflows after the warehouse models: workflows.yaml run in the mode it asks for (a dry run
unless `enabled: true`), with what each rule matched as metadata. Assignments and severity changes
it decides show in the warehouse from the next build on (see warehouse/decisions.py)."""

import dagster as dg

from ...clock import SystemClock
from ...warehouse.workflows import bitbucket_connections, load_workflows, run_workflows
from ..bitbucket.resources import BitbucketResource


def _clients(bitbucket: BitbucketResource, names: set[str], log) -> dict:
    """A client per connection the rules write to; one that cannot be made fails its actions only."""
    clients = {}
    for name in sorted(names):
        try:
            clients[name] = bitbucket.client(name)
        except Exception as exc:  # noqa: BLE001 - the action records "no client" and the others go on
            log.warning(f"workflows: no client for connection {name!r}: {type(exc).__name__}: {exc}")
    return clients


def _metadata(outcome: dict) -> dict:
    lines = ["| rule | matches |", "|---|---|"]
    lines += [f"| {row['rule']} | {row['matches']} |" for row in outcome["preview"]]
    done = {}
    for summary in outcome["applied"]:
        done.setdefault(summary["rule"], {})[summary["action"]] = summary
    metadata = {
        "mode": dg.MetadataValue.text("applied" if outcome["enabled"] else "dry run (enabled: false)"),
        "rules": dg.MetadataValue.int(len(outcome["preview"])),
        "preview": dg.MetadataValue.md("\n".join(lines)),
        **{f"matches: {row['rule']}": dg.MetadataValue.int(row["matches"]) for row in outcome["preview"]},
    }
    if outcome["enabled"]:
        metadata["applied"] = dg.MetadataValue.json(done)
        metadata["actions_done"] = dg.MetadataValue.int(sum(s["done"] for s in outcome["applied"]))
        metadata["actions_failed"] = dg.MetadataValue.int(sum(s["error"] for s in outcome["applied"]))
    return metadata


@dg.asset(key=["reports", "workflows"], group_name="reports", kinds={"duckdb"}, pool="duckdb_writer",
          deps=[["warehouse", "findings_queue"], ["warehouse", "enriched_findings"]], owners=["team:appsec"],
          description="workflows.yaml over the built findings_queue: a preview of how many findings each "
                      "rule matches, and, when the file says `enabled: true`, its actions (assign, "
                      "set_severity, webhook, code insights, pull request comment), once per rule, "
                      "action and finding. Assignments and severity changes show from the next "
                      "warehouse build on.")
def workflows(context: dg.AssetExecutionContext, bitbucket: BitbucketResource) -> dg.MaterializeResult:
    """Preview, then act when enabled; one failing action never stops the others (see the log)."""
    settings = load_workflows()
    outcome = run_workflows(
        settings, lambda: _clients(bitbucket, bitbucket_connections(settings), context.log), SystemClock().now())
    for summary in outcome["applied"]:
        if summary["error"]:
            context.log.warning(f"workflow {summary['rule']!r}: {summary['action']} failed for "
                                f"{summary['error']} finding(s) (see workflow_action_log); retried next time")
    return dg.MaterializeResult(metadata=_metadata(outcome))
