"""Raw Bitbucket tables, one Parquet partition per connection, from one extraction pass.

One step reads everything for a connection so listings are shared across tables and the
connection's request budget is spent once; each table is still its own asset in the graph.
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from ... import lake
from ...bitbucket import tables
from ...bitbucket.extract import ExtractOptions, Extractor, RepositoryFilter, StateStore
from ...scanners.secrets import redact_text
from ..metadata import FIRST_ERRORS, STATUS_TAG, column_schema, table_metadata
from ..retries import STEP_RETRY_POLICY, no_retry_for_permanent_errors
from ..storage.resources import StorageResource
from .partitions import connections_partitions
from .resources import BitbucketResource

RAW_TABLES = tuple(tables.TABLES)


class ExtractConfig(dg.Config):
    full_refresh: bool = False
    """Ignore watermarks and unchanged-repository shortcuts; re-read everything."""
    settings_max_age_hours: float = 24.0
    """Refresh settings endpoints (restrictions, hooks, keys, variables) older than this."""
    repositories: list[str] = Field(default_factory=list)
    """Re-read only repositories matching these `workspace/repo_slug` globs (on-demand scans); the
    others keep their rows from the last run. Empty: every selected repository."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["bitbucket", t],
            description=tables.description(t),
            group_name="bitbucket",
            kinds={"bitbucket", "parquet"},
            owners=["team:data-engineering"],
            metadata={"dagster/column_schema": column_schema(tables.columns(t))},
        )
        for t in RAW_TABLES
    ],
    partitions_def=connections_partitions,
    pool="bitbucket_api",
    can_subset=False,
    retry_policy=STEP_RETRY_POLICY,
)
def bitbucket_raw_tables(
    context: dg.AssetExecutionContext, config: ExtractConfig, bitbucket: BitbucketResource, storage: StorageResource
):
    """Extract one connection (a partition) into lake/raw/<table>/connection=<name>/.

    The `bitbucket_api` pool bounds extract steps across runs; one run at a time per connection
    comes from the run limit on the `dagster/partition` tag in dagster.yaml."""
    name, home = context.partition_key, storage.home_path()
    with no_retry_for_permanent_errors(context):
        client = bitbucket.client(name)
        git = bitbucket.git(client)
        previous = {t: lake.read_partition("raw", t, name, home) for t in RAW_TABLES}
        store = StateStore(name, home)
        state = store.load()
        options = ExtractOptions(
            full_refresh=config.full_refresh,
            repositories=RepositoryFilter(config.repositories),
            settings_max_age=timedelta(hours=config.settings_max_age_hours),
        )
        report = Extractor(
            client, git, redact_yml=redact_text, previous=previous, state=state, options=options, home=home
        ).run()
    for table in RAW_TABLES:
        lake.write_partition("raw", table, name, report.rows[table], tables.schema(table), home)
    store.save(state)  # only after every partition file is in place
    for problem in report.problems:
        context.log.warning(problem)
    if report.problems:  # rows kept from the last run stand in for what could not be read: degraded
        context.instance.add_run_tags(context.run_id, {STATUS_TAG: "degraded"})
    context.log.info(
        f"{name}: {report.rest_requests} REST requests, {report.git_operations} git operations, "
        f"{report.repositories_changed}/{report.repositories_selected} repositories changed"
    )
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=["bitbucket", table],
            metadata={
                **table_metadata(report.rows[table], tables.columns(table)),
                "rest_requests": report.rest_requests,
                "git_operations": report.git_operations,
                "repositories_changed": report.repositories_changed,
                **(
                    {
                        "problems": len(report.problems),
                        "first_problems": dg.MetadataValue.json(report.problems[:FIRST_ERRORS]),
                    }
                    if table == "repositories"
                    else {}
                ),
            },
        )
