"""The history marts over a multi-night lake built with an injected clock (builds on nights 0, 1, 2, 4 and 8,
so days without a build are replayed too): findings_daily, sla_breach_daily, remediation_times,
remediation_summary, compliance_history / compliance_daily — exact rows."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

from ox_bb_pipeline.warehouse.runner import build

from .conftest import NOW, Lake, writable

DAY = timedelta(days=1)


def nights(lake) -> dict[str, str]:
    """payments (acme/api): a critical secret A (SLA 7 days) and a high bandit finding B, fixed on night 2
    and back on night 4; web (acme/web): a medium semgrep finding C."""
    lake.config(
        "applications.yaml",
        """
        applications:
          - {name: payments, team: pay, repositories: [{repository: api}]}
          - {name: web, team: front, repositories: [{repository: web}]}
    """,
    )
    api, web = lake.repository("api"), lake.repository("web")
    lake.scan(api, "secrets", "bandit")
    lake.scan(web, "semgrep")
    ids = {
        "A": lake.finding(api, "secrets", "aws-key", severity="critical", file_path="deploy.sh"),
        "B": lake.finding(api, "bandit", "B105", severity="high", file_path="app/config.py"),
        "C": lake.finding(web, "semgrep", "js.xss", severity="medium", file_path="web/index.js"),
    }
    lake.build(NOW)
    lake.build(NOW + DAY)
    lake.clear("findings", "bandit")
    lake.build(NOW + 2 * DAY)
    lake.finding(api, "bandit", "B105", severity="high", file_path="app/config.py")
    lake.build(NOW + 4 * DAY)
    lake.build(NOW + 8 * DAY)
    return ids


def test_history_marts_replay_every_day_from_the_history(lake):
    ids = nights(lake)
    d = [date(2026, 11, 2) + timedelta(days=i) for i in range(9)]
    payments = [
        tuple(r.values())
        for r in lake.rows(
            "SELECT day, final_severity, status, findings, sla_breached FROM findings_daily "
            "WHERE application = 'payments' ORDER BY day, final_severity"
        )
    ]
    assert payments == [
        (d[0], "critical", "new", 1, 0),
        (d[0], "high", "new", 1, 0),
        (d[1], "critical", "open", 1, 0),
        (d[1], "high", "open", 1, 0),
        (d[2], "critical", "open", 1, 0),
        (d[2], "high", "resolved", 1, 0),
        (d[3], "critical", "open", 1, 0),
        (d[3], "high", "resolved", 1, 0),  # no build: replayed
        (d[4], "critical", "open", 1, 0),
        (d[4], "high", "reopened", 1, 0),
        (d[5], "critical", "open", 1, 0),
        (d[5], "high", "reopened", 1, 0),
        (d[6], "critical", "open", 1, 0),
        (d[6], "high", "reopened", 1, 0),
        (d[7], "critical", "open", 1, 1),
        (d[7], "high", "reopened", 1, 0),  # A due 11-09 06:00
        (d[8], "critical", "open", 1, 1),
        (d[8], "high", "open", 1, 0),
    ]
    assert [
        (r["day"], r["status"])
        for r in lake.rows("SELECT day, status FROM findings_daily WHERE application = 'web' ORDER BY day")
    ] == [(d[0], "new")] + [(day, "open") for day in d[1:]]

    assert [
        tuple(r.values())
        for r in lake.rows(
            "SELECT day, open_with_sla, breached, breach_rate FROM sla_breach_daily "
            "WHERE application = 'payments' AND day IN (?, ?, ?) ORDER BY day",
            d[2],
            d[6],
            d[7],
        )
    ] == [(d[2], 1, 0, 0.0), (d[6], 2, 0, 0.0), (d[7], 2, 1, 0.5)]

    assert lake.rows("SELECT * FROM remediation_times") == [
        {
            "finding_id": ids["B"],
            "application": "payments",
            "team": "pay",
            "final_severity": "high",
            "opened_at": NOW,
            "resolved_at": NOW + 2 * DAY,
            "days_to_resolve": 2.0,
        }
    ]
    assert lake.rows("SELECT * FROM remediation_summary ORDER BY final_severity") == [
        {
            "application": "payments",
            "team": "pay",
            "final_severity": "all",
            "resolved": 1,
            "mttr_days": 2.0,
            "p50_days": 2.0,
            "p90_days": 2.0,
            "max_days": 2.0,
        },
        {
            "application": "payments",
            "team": "pay",
            "final_severity": "high",
            "resolved": 1,
            "mttr_days": 2.0,
            "p50_days": 2.0,
            "p90_days": 2.0,
            "max_days": 2.0,
        },
    ]

    assert lake.value("SELECT count(DISTINCT build_id) FROM compliance_history") == 5
    assert [r["day"] for r in lake.rows("SELECT DISTINCT day FROM compliance_daily ORDER BY day")] == [
        d[0],
        d[1],
        d[2],
        d[4],
        d[8],
    ]
    assert (
        lake.value("SELECT count(*) FROM compliance_daily") == lake.value("SELECT count(*) FROM compliance_scores") * 5
    )


def test_a_second_resolution_counts_again_and_percentiles_spread(lake):
    ids = nights(lake)
    lake.clear("findings", "bandit")
    lake.build(NOW + 10 * DAY)  # B resolved again, 6 days after it was reopened on night 4
    lake.clear("findings", "secrets")
    lake.build(NOW + 12 * DAY)  # A resolved after 12 days
    assert [
        (r["finding_id"], r["days_to_resolve"])
        for r in lake.rows("SELECT finding_id, days_to_resolve FROM remediation_times ORDER BY resolved_at")
    ] == [(ids["B"], 2.0), (ids["B"], 6.0), (ids["A"], 12.0)]
    assert lake.rows(
        "SELECT resolved, mttr_days, p50_days, p90_days, max_days FROM remediation_summary WHERE final_severity = 'all'"
    ) == [{"resolved": 3, "mttr_days": 6.67, "p50_days": 6.0, "p90_days": 10.8, "max_days": 12.0}]


def test_findings_daily_nights_give_the_rows_of_a_full_refresh(lake, tmp_path):
    """A night computes findings_daily's new days from the last day it keeps and the findings that can count
    differently since (a change recorded after it, or an SLA that can fall due): after each build its rows, and
    sla_breach_daily's, are those of a --full-refresh build at the same `now` from the same warehouse and lake."""
    ids = nights(lake)
    web = lake.repository("web")

    def night(now, name):
        lake.write()
        twin = Lake(tmp_path / name)
        shutil.copytree(lake.home, twin.home)
        lake.build(now)
        build(twin.home, now=now, full_refresh=True)
        for model in ("findings_daily", "sla_breach_daily"):
            rows = lake.rows(f"SELECT * FROM {model} ORDER BY ALL")
            assert rows == twin.rows(f"SELECT * FROM {model} ORDER BY ALL"), (name, model)
        return rows

    lake.clear("findings", "semgrep")  # C fixed, a second build on night 8's day
    night(NOW + 8 * DAY + timedelta(hours=6), "same-day")
    # no change for a month: B (reopened on night 4, high: 30 days) falls due on a day no build saw
    breach = night(NOW + 40 * DAY, "gap")
    breached = {r["day"]: r["breached"] for r in breach if r["application"] == "payments"}
    assert [breached[date(2026, 12, 5) + timedelta(days=i)] for i in range(3)] == [1, 2, 2]
    lake.finding(web, "semgrep", "js.sqli", severity="low", file_path="web/db.js")  # a new finding
    night(NOW + 41 * DAY, "new")
    lake.config("sla.yaml", "sla_days: {critical: 3, high: 10, medium: 20, low: 40}")  # every day again
    night(NOW + 42 * DAY, "sla")
    assert lake.value("SELECT count(DISTINCT day) FROM findings_daily") == 43
    # five SLA lengths: the candidates' history scan per length has a last branch for the fifth and any further
    # one (low, 40 days, the longest): the new low finding of night 41 falls due on a day no build saw, and only
    # the fifth length's window holds its start on the last night (medium's, 20 days, ended on night 59)
    lake.config("sla.yaml", "sla_days: {info: 5, critical: 3, high: 10, medium: 20, low: 40}")
    night(NOW + 43 * DAY, "five")
    night(NOW + 78 * DAY, "quiet")
    breach = night(NOW + 82 * DAY, "fifth")
    breached = {(r["day"], r["application"]): r["breached"] for r in breach}
    assert breached[(date(2027, 1, 21), "web")] < breached[(date(2027, 1, 22), "web")]
    assert ids["A"] in {r["finding_id"] for r in lake.rows("SELECT finding_id FROM findings_history")}


def test_stretches_and_remediations_are_computed_again_for_every_finding_only_when_their_sql_changed(lake):
    """finding_stretches and finding_remediations recompute the findings the history recorded a change of in the build;
    every finding when the model's SQL differs from the last build's (its digest in incremental_digests). With both
    models emptied and finding_stretches' stored digest altered as an SQL change would leave it, a build with nothing
    new gives finding_stretches back whole and leaves finding_remediations empty."""
    nights(lake)
    kept = {m: lake.rows(f"SELECT * FROM {m} ORDER BY ALL") for m in ("finding_stretches", "finding_remediations")}
    assert kept["finding_stretches"] and kept["finding_remediations"]
    with writable(lake) as con:
        con.execute("DELETE FROM finding_stretches; DELETE FROM finding_remediations")
        con.execute("UPDATE incremental_digests SET digest = digest + 1 WHERE model = 'finding_stretches'")
    lake.build(NOW + 9 * DAY)
    assert lake.rows("SELECT * FROM finding_stretches ORDER BY ALL") == kept["finding_stretches"]
    assert lake.rows("SELECT * FROM finding_remediations") == []
