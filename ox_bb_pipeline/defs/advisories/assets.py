"""The `advisories/osv` asset: `ox-bb advisories sync` as a Dagster asset, with a daily schedule.

Not partitioned: one index serves every connection. The scan reads whatever index is in place and
records its digest in `scanner_version`, so new advisory data rescans repositories whose code did not
change. A failed download keeps the previous data; only having no data at all fails the asset.
"""

import os

import dagster as dg

from ...advisories import status
from ...advisories.settings import osv_mirror
from ...advisories.sync import sync
from ...clock import SystemClock
from ..storage.resources import StorageResource

ADVISORIES_CRON_VARIABLE = "OX_BB_ADVISORIES_CRON"
DEFAULT_ADVISORIES_CRON = "0 1 * * *"  # an hour before the default nightly scan


@dg.asset(
    key=["advisories", "osv"],
    group_name="advisories",
    kinds={"sqlite"},
    owners=["team:appsec"],
    description="OSV advisories per ecosystem (PyPI, npm, Maven, Go, RubyGems, crates.io, NuGet, "
    "Packagist), CISA KEV and EPSS, indexed in OX_BB_HOME/advisories/index.sqlite for SCA. "
    "Source: $OX_BB_OSV_MIRROR (default OSV's public bucket).",
)
def osv(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    """Download what changed since the last sync (conditional requests), check it, rebuild the index."""
    clock = SystemClock()
    home = storage.home_path()
    report = sync(home=home, clock=clock)
    for fetch in report.fetches:
        context.log.info(f"{fetch.name}: {fetch.outcome}" + (f" ({fetch.detail})" if fetch.detail else ""))
    state = status(clock.now(), home, osv_path="")
    if state.source == "none":
        raise dg.Failure(
            description="no advisory data could be synced: " + "; ".join(report.warnings), allow_retries=True
        )
    for warning in report.warnings + state.warnings:
        context.log.warning(warning)
    return dg.MaterializeResult(
        metadata={
            "records": dg.MetadataValue.json(state.ecosystems),
            "digest": state.digest,
            "age_days": round(state.age_days or 0.0, 2),
            "source": dg.MetadataValue.url(osv_mirror()),
            "downloaded": [f.name for f in report.fetches if f.outcome == "downloaded"],
            "known_exploited_feed": state.known_exploited,
            "epss_feed": state.epss,
            "warnings": dg.MetadataValue.json(report.warnings + state.warnings),
        }
    )


advisories_job = dg.define_asset_job(
    "advisories_sync",
    selection=dg.AssetSelection.groups("advisories"),
    tags={"ox_bb/stage": "advisories"},
    description="Sync OSV, KEV and EPSS into the advisory index (ox-bb advisories sync).",
)


advisories_schedule = dg.ScheduleDefinition(
    name="advisories_daily_schedule",
    job=advisories_job,
    cron_schedule=os.environ.get(ADVISORIES_CRON_VARIABLE, "").strip() or DEFAULT_ADVISORIES_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Daily advisory sync ({ADVISORIES_CRON_VARIABLE}, default '{DEFAULT_ADVISORIES_CRON}' UTC), "
    "before the nightly scan reads the index.",
)
