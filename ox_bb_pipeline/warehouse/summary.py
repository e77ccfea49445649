"""What the Dagster UI shows about each built model (no Dagster here): its row count and typed
columns, its first rows in the order an analyst reads them, and for the finding and compliance
tables the numbers looked for first: findings by final severity, scores per framework."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from .models import Model
from .report import OPEN, SEVERITY_ORDER

PREVIEW_ROWS = 5
_OPEN = ", ".join(f"'{s}'" for s in OPEN)
_RANK = "list_position(['info', 'low', 'medium', 'high', 'critical'], final_severity)"
# model -> (columns, ORDER BY) of its preview; other models show their first columns as stored.
PREVIEWS = {
    "findings_queue": (
        ("final_severity", "status", "application", "title", "sla_due_at", "finding_id"),
        f"status IN ({_OPEN}) DESC, {_RANK} DESC NULLS LAST, sla_due_at, finding_id",
    ),
    "enriched_findings": (
        ("final_severity", "application", "rule_id", "title", "severity_explanation", "finding_id"),
        "severity_rank DESC, finding_id",
    ),
    "compliance_scores": (
        ("application", "framework", "score", "passed", "failed", "not_evaluable"),
        "score NULLS LAST, application, framework",
    ),
    "compliance_report": (
        ("application", "control_id", "status", "evidence_count", "framework"),
        "status = 'fail' DESC, evidence_count DESC, application, control_id",
    ),
    "applications": (("application", "business_priority", "team", "is_relevant"), "application"),
}
HIDDEN = {"evidence"}  # redacted already; still kept out of previews


@dataclass
class TableSummary:
    rows: int
    columns: list[tuple[str, str, str]]  # (name, type, description)
    preview_columns: list[tuple[str, str, str]]  # the preview's, in its order
    preview: list[dict]
    counts: dict[str, list[dict]] = field(default_factory=dict)  # title -> a small table


def summarize(con: duckdb.DuckDBPyConnection, models: list[Model]) -> dict[str, TableSummary]:
    """A summary per model table present in the (built) warehouse behind `con`."""
    types: dict[str, dict[str, str]] = {}
    for table, column, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' ORDER BY table_name, column_index"
    ).fetchall():
        types.setdefault(table, {})[column] = dtype
    summaries = {}
    for model in models:
        if model.name in types:
            summaries[model.name] = _summary(con, model, types[model.name])
    return summaries


def _summary(con: duckdb.DuckDBPyConnection, model: Model, types: dict[str, str]) -> TableSummary:
    shown, order = PREVIEWS.get(model.name, ([c for c in types if c not in HIDDEN][:6], None))
    select = ", ".join(f'"{c}"' for c in shown)
    ordered = f" ORDER BY {order}" if order else ""
    preview = _rows(con, f'SELECT {select} FROM "{model.name}"{ordered} LIMIT {PREVIEW_ROWS}')
    columns = {name: (name, dtype, model.columns.get(name, "")) for name, dtype in types.items()}
    return TableSummary(
        rows=con.execute(f'SELECT count(*) FROM "{model.name}"').fetchone()[0],
        columns=list(columns.values()),
        preview_columns=[columns[c] for c in shown],
        preview=preview,
        counts=COUNTS.get(model.name, lambda _: {})(con),
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def _by_severity(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> list[dict]:
    found = dict(con.execute(f"SELECT final_severity, count(*) FROM {table} WHERE {where} GROUP BY ALL").fetchall())
    return [{"final_severity": s, "findings": found.get(s, 0)} for s in SEVERITY_ORDER]


def _frameworks(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict]]:
    """Per framework over the relevant applications: the score, and controls passed, failed and not
    evaluable (as the compliance report's summary)."""
    return {
        "compliance per framework": _rows(
            con,
            """
        SELECT framework_title AS framework,
               round(100.0 * sum(passed) / nullif(sum(passed) + sum(failed), 0), 1) AS score,
               sum(passed)::BIGINT AS passed, sum(failed)::BIGINT AS failed,
               sum(not_evaluable)::BIGINT AS not_evaluable
        FROM compliance_scores WHERE application_is_relevant
        GROUP BY ALL ORDER BY framework""",
        )
    }


COUNTS = {
    "findings_queue": lambda con: {
        "open findings by final severity": _by_severity(con, "findings_queue", f"status IN ({_OPEN})")
    },
    "enriched_findings": lambda con: {"findings by final severity": _by_severity(con, "enriched_findings")},
    "compliance_scores": _frameworks,
    "compliance_report": _frameworks,
}


@dataclass
class SeverityDrift:
    """How far the severity factors moved the open queue from the scanners' own severities."""

    open_findings: int
    changed: int  # final severity differs from the base severity
    raised: int
    lowered: int
    beyond_one_step: int  # moved by more than one level
    within_one_step_percent: float  # share of open findings at most one level from the base severity
    transitions: list[dict]  # {base_severity, final_severity, findings}
    factors: list[dict]  # {factor, findings}: how many open findings each factor applies to

    def line(self) -> str:
        return (
            f"{self.within_one_step_percent:.1f}% of {self.open_findings} open findings within one step of "
            f"the scanner's severity; {self.changed} changed ({self.raised} up, {self.lowered} down), "
            f"{self.beyond_one_step} by more than one step"
        )


def severity_drift(con: duckdb.DuckDBPyConnection) -> SeverityDrift:
    """Base against final severity over the open queue, and the factors behind the changes (the
    figure docs/detection-quality.md reports before and after calibration)."""
    ranked = f"""
        SELECT q.finding_id, q.base_severity, q.final_severity,
               list_position({list(SEVERITY_ORDER)!r}, q.base_severity)
               - list_position({list(SEVERITY_ORDER)!r}, q.final_severity) AS moved
        FROM findings_queue AS q WHERE q.status IN ({_OPEN})"""
    total, changed, raised, lowered, beyond = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE moved <> 0), count(*) FILTER (WHERE moved > 0),
               count(*) FILTER (WHERE moved < 0), count(*) FILTER (WHERE abs(moved) > 1)
        FROM ({ranked})""").fetchone()
    transitions = _rows(
        con,
        f"""
        SELECT base_severity, final_severity, count(*) AS findings FROM ({ranked})
        GROUP BY base_severity, final_severity ORDER BY list_position({list(SEVERITY_ORDER)!r}, base_severity),
                              list_position({list(SEVERITY_ORDER)!r}, final_severity)""",
    )
    factors = _rows(
        con,
        f"""
        SELECT k.name AS factor, count(*) AS findings
        FROM ({ranked}) AS r JOIN enriched_findings AS e USING (finding_id), unnest(e.severity_factors) AS t(k)
        GROUP BY ALL ORDER BY findings DESC, factor""",
    )
    within = 100.0 * (total - beyond) / total if total else 100.0
    return SeverityDrift(total, changed, raised, lowered, beyond, round(within, 1), transitions, factors)
