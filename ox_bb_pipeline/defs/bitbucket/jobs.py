"""`verify_connectivity`: VERIFY CONNECTIVITY for every connection, as a Dagster job."""

import dagster as dg

from ...bitbucket.capabilities import verify
from .resources import BitbucketResource


@dg.op(description="Authenticate each connection, list its workspaces and probe every capability.")
def verify_connections(context: dg.OpExecutionContext, bitbucket: BitbucketResource) -> dict:
    summary = {}
    for connection in bitbucket.connections().connections:
        client = bitbucket.client(connection.name)
        result = verify(client, bitbucket.git(client))
        summary[connection.name] = result.status
        missing = [f"{p.capability}: missing {p.missing or p.detail}" for p in result.probes if not p.ok]
        log = context.log.info if result.status == "ok" else context.log.warning
        log(
            f"{connection.name} ({connection.method}): {result.status}"
            + (f" — {result.error}" if result.error else "")
            + "".join(f"\n  {m}" for m in missing)
        )
    context.add_output_metadata({"status": dg.MetadataValue.json(summary)})
    if any(status == "failed" for status in summary.values()):
        raise dg.Failure(
            description="at least one connection failed verification",
            metadata={"status": dg.MetadataValue.json(summary)},
        )
    return summary


@dg.job(description="Verify every connection in connections.yaml (no data is written).")
def verify_connectivity():
    verify_connections()
