"""History marts and the explorer over 90 nights × 100,000 findings (quick: 20 nights × 10,000). One real
build of a synthetic lake (bench_warehouse.generate) gives the queue; its findings_history is then replaced by
90 nights of synthetic changes (each finding new on a night in the first month, open the night after, a third
resolved 1-60 nights later) and compliance_history by one row per application, framework and night, as 90
builds would have left them. Times the history models (finding_states … compliance_daily) rebuilt over that,
the explorer page (bytes; target ≤ 5 MB) and its open time in Debian's chromium (target ≤ 2 s).

    python -m ox_bb_pipeline_tests.benchmarks.bench_history [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb

from ox_bb_pipeline.warehouse.models import SQL_DIR, discover
from ox_bb_pipeline.warehouse.project import dbt_home
from ox_bb_pipeline.warehouse.runner import configure
from ox_bb_pipeline_tests.browser import CHROMIUM

from . import bench_warehouse

HISTORY_MODELS = (
    "finding_states",
    "findings_daily",
    "sla_breach_daily",
    "remediation_times",
    "remediation_summary",
    "compliance_daily",
)


def compiled_sql(home: Path, model: Path) -> str:
    """The model's SQL as the build's dbt compiled it (refs resolved to the `warehouse` catalog, which is also
    the name DuckDB gives warehouse.duckdb)."""
    compiled = dbt_home(home) / "target" / "compiled" / "ox_bb_warehouse" / model.relative_to(SQL_DIR)
    return compiled.read_text().strip().rstrip(";")


def synthetic_history(con: duckdb.DuckDBPyConnection, nights: int) -> int:
    """Replace findings_history and compliance_history with `nights` nights ending at the build's now."""
    con.execute("DELETE FROM findings_history")
    con.execute(f"""
        INSERT INTO findings_history BY NAME
        WITH f AS (
            SELECT finding_id, application, repository, repository_full_name, rule_id, final_severity,
                   hash(finding_id) % 30 AS first_night,
                   CASE WHEN hash(finding_id) % 3 = 0 THEN hash(finding_id) % 30 + 1 + hash(finding_id, 1) % 60 END
                       AS resolved_night
            FROM findings_queue
        ),
        events AS (
            SELECT f.*, first_night AS night, 'new' AS status, NULL AS previous_status FROM f
            UNION ALL SELECT f.*, first_night + 1, 'open', 'new' FROM f
            UNION ALL SELECT f.*, resolved_night, 'resolved', 'open' FROM f WHERE resolved_night IS NOT NULL
        )
        SELECT 'night-' || night AS build_id,
               ctx.now - to_days(({nights} - 1 - night)::INTEGER) AS recorded_at,
               finding_id, status, previous_status, final_severity,
               CASE WHEN previous_status IS NOT NULL THEN final_severity END AS previous_final_severity,
               application, repository, repository_full_name, rule_id, status AS change
        FROM events, build_context AS ctx
        WHERE night < {nights}""")
    con.execute("DELETE FROM compliance_history")
    con.execute(f"""
        INSERT INTO compliance_history BY NAME
        SELECT 'night-' || n AS build_id, ctx.now - to_days(({nights} - 1 - n)::INTEGER) AS recorded_at,
               CAST(ctx.now - to_days(({nights} - 1 - n)::INTEGER) AS DATE) AS day,
               s.application, s.framework, s.framework_title, s.passed, s.failed, s.not_evaluable,
               greatest(0, least(100, s.score - ({nights} - 1 - n) * 0.1)) AS score, s.application_is_relevant
        FROM compliance_scores AS s, build_context AS ctx, range({nights}) t(n)""")
    return con.execute("SELECT count(*) FROM findings_history").fetchone()[0]


def open_seconds(path: Path) -> float:
    """From navigation to the explorer's tiles drawn, in a fresh headless chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            started = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("#tile-open b")
            return time.perf_counter() - started
        finally:
            browser.close()


def run(quick: bool = False) -> dict:
    from ox_bb_pipeline.warehouse.explorer import write_explorer

    findings, repositories, nights = (10_000, 100, 20) if quick else (100_000, 1_000, 90)
    with tempfile.TemporaryDirectory(prefix="ox-bb-bench-history-") as scratch:
        home = Path(scratch)
        bench_warehouse.generate(home, findings, repositories)
        first = bench_warehouse._child("build", home, bench_warehouse.NOW)
        con = duckdb.connect(str(home / "warehouse.duckdb"))
        try:
            configure(con, home, bench_warehouse.MEMORY_LIMIT, 2)
            history_rows = synthetic_history(con, nights)
            models = {m.name: m for m in discover()}
            seconds = {}
            for name in HISTORY_MODELS:
                started = time.perf_counter()
                kind = "VIEW" if models[name].materialized == "view" else "TABLE"
                con.execute(f'DROP {kind} IF EXISTS "{name}"')
                con.execute(f'CREATE {kind} "{name}" AS {compiled_sql(home, models[name].path)}')
                if models[name].materialized == "view":
                    con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
                seconds[name] = round(time.perf_counter() - started, 2)
            daily_rows = con.execute("SELECT count(*) FROM findings_daily").fetchone()[0]
            con.execute("CHECKPOINT")
        finally:
            con.close()
        started = time.perf_counter()
        page = write_explorer(home)
        explorer_seconds = time.perf_counter() - started
        size = page.stat().st_size
        opened = open_seconds(page)
    marts = sum(seconds.values())
    table = [
        ("findings (queue)", first["rows"]["findings_queue"], ""),
        ("nights", nights, ""),
        ("findings_history rows", history_rows, ""),
        ("findings_daily rows", daily_rows, ""),
        ("history marts build (s)", round(marts, 2), ""),
        *((f"  {name} (s)", value, "") for name, value in seconds.items()),
        ("explorer write (s)", round(explorer_seconds, 2), ""),
        ("explorer size (MB)", round(size / 1e6, 2), "target ≤ 5"),
        ("explorer open in chromium (s)", round(opened, 2), "target ≤ 2"),
    ]
    return {
        "title": f"History marts and explorer: {nights} nights × {findings:,} findings",
        "table": table,
        "json": {
            "findings": first["rows"]["findings_queue"],
            "nights": nights,
            "history_rows": history_rows,
            "findings_daily_rows": daily_rows,
            "marts_seconds": marts,
            "model_seconds": seconds,
            "explorer_seconds": explorer_seconds,
            "explorer_bytes": size,
            "open_seconds": opened,
            "first_build_seconds": first["seconds"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run(quick=args.quick)
    for label, value, target in result["table"]:
        print(f"{label:<34} {value!s:>12}  {target}")
    print(json.dumps(result["json"], default=str))


if __name__ == "__main__":
    main()
