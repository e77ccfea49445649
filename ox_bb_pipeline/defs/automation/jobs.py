"""The jobs the schedule and sensors launch, and that users launch from the UI.

Extract and scan are partitioned per connection, the warehouse reads every connection at once, and
Dagster gives one job a single partitioning. So the nightly pipeline is two jobs: `nightly_scan`
runs once per connection partition (the nightly schedule asks for all of them at once, so one slow
or failing account holds no other back), and `build_warehouse` runs once afterwards, launched by
`warehouse_after_scans_sensor` when that night's connection runs have all finished.

`scan_on_demand` is the same extract + scan for one connection, narrowed by run config to some
repositories (`workspace/repo_slug` globs); the repositories outside the globs keep their rows.
The connection is the run's partition: pick several partitions in the launchpad for several
connections (one run each, so the per-connection run limit in dagster.yaml still holds).
"""

import dagster as dg

# Both groups are partitioned by connection, so the jobs are too (Dagster infers it).
EXTRACT_AND_SCAN = dg.AssetSelection.groups("bitbucket", "scanning")
WAREHOUSE = dg.AssetSelection.groups("warehouse", "reports")


def on_demand_run_config(repositories: list[str], full_refresh: bool = False) -> dict:
    """Run config of `scan_on_demand`: the same globs for the extract and the scan step."""
    return {
        "ops": {
            "bitbucket_raw_tables": {"config": {"repositories": list(repositories), "full_refresh": full_refresh}},
            "scan_findings": {"config": {"repositories": list(repositories)}},
        }
    }


nightly_scan = dg.define_asset_job(
    "nightly_scan",
    selection=EXTRACT_AND_SCAN,
    tags={"ox_bb/stage": "extract+scan"},
    description="Extract and scan one connection (a partition): every selected repository, "
    "incrementally. The nightly schedule runs it for every connection; the warehouse "
    "follows once they have all finished.",
)

scan_on_demand = dg.define_asset_job(
    "scan_on_demand",
    selection=EXTRACT_AND_SCAN,
    config=on_demand_run_config([], full_refresh=False),
    tags={"ox_bb/stage": "extract+scan"},
    description="Extract and scan one connection, only the repositories matching "
    "`repositories` (workspace/repo_slug globs, in both ops' config; empty: all); "
    "`full_refresh: true` re-reads them whole. Others keep their rows.",
)

build_warehouse = dg.define_asset_job(
    "build_warehouse",
    selection=WAREHOUSE,
    tags={"ox_bb/stage": "warehouse"},
    description="Build warehouse.duckdb from every connection's lake partitions, then the exports "
    "and the compliance report (the `duckdb_writer` pool keeps one writer at a time).",
)
