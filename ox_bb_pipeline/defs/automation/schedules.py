"""The nightly schedule: one `nightly_scan` run per connection partition, all requested at once.

When it fires is configuration: `OX_BB_NIGHTLY_CRON` (default `0 2 * * *`) in
`OX_BB_NIGHTLY_TIMEZONE` (default `UTC`), read when the code location loads; a bad value stops
the load with a message naming the variable. Each run is tagged with the night it belongs to and
how many runs that night has, which is how `warehouse_after_scans_sensor` knows when all of them
have finished. Run keys name the night and the connection: a repeated tick launches nothing twice.
"""

import os
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string

from ..bitbucket.partitions import connections_partitions

CRON_VARIABLE, TIMEZONE_VARIABLE = "OX_BB_NIGHTLY_CRON", "OX_BB_NIGHTLY_TIMEZONE"
DEFAULT_CRON, DEFAULT_TIMEZONE = "0 2 * * *", "UTC"
NIGHT_TAG = "ox_bb/night"  # the scheduled date, e.g. 2026-11-02, in the schedule's time zone
NIGHT_RUNS_TAG = "ox_bb/night_runs"  # how many connection runs that night requested
TRIGGER_TAG = "ox_bb/trigger"  # nightly | changes


def nightly_settings(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(cron, time zone) from the environment, checked."""
    cron = environ.get(CRON_VARIABLE, "").strip() or DEFAULT_CRON
    timezone = environ.get(TIMEZONE_VARIABLE, "").strip() or DEFAULT_TIMEZONE
    if not is_valid_cron_string(cron):
        raise ValueError(
            f"{CRON_VARIABLE}={cron!r} is not a cron schedule: use five fields, e.g. "
            f"'0 2 * * *' for 02:00 every day or '30 23 * * 1-5' for 23:30 on weekdays"
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{TIMEZONE_VARIABLE}={timezone!r} is not a time zone: use an IANA name such "
            "as UTC, Europe/Berlin or America/New_York"
        ) from None
    return cron, timezone


def nightly_run_requests(connections: list[str], night: str) -> list[dg.RunRequest]:
    tags = {NIGHT_TAG: night, NIGHT_RUNS_TAG: str(len(connections)), TRIGGER_TAG: "nightly"}
    return [
        dg.RunRequest(run_key=f"nightly:{night}:{name}", partition_key=name, tags=tags) for name in sorted(connections)
    ]


def build_nightly_schedule(cron: str, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="nightly_scan_schedule",
        cron_schedule=cron,
        execution_timezone=timezone,
        job_name="nightly_scan",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every connection's nightly_scan at '{cron}' ({timezone}), then the "
        "warehouse once they have all finished.",
    )
    def nightly_scan_schedule(context: dg.ScheduleEvaluationContext):
        when = context.scheduled_execution_time or datetime.now(ZoneInfo(timezone))
        night = when.astimezone(ZoneInfo(timezone)).date().isoformat()
        connections = context.instance.get_dynamic_partitions(connections_partitions.name)
        if not connections:
            return dg.SkipReason(
                "no connection partitions yet: connections_sensor adds one per entry of connections.yaml"
            )
        return nightly_run_requests(connections, night)

    return nightly_scan_schedule


nightly_scan_schedule = build_nightly_schedule(*nightly_settings())
