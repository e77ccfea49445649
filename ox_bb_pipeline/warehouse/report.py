"""The compliance report for people: `reports/compliance.html`, one self-contained page that opens
offline (inline SVG charts, no script, no network), and `reports/compliance.csv`, one row per
application and control. Both are read from the built warehouse and written atomically.
"""

from __future__ import annotations

import csv
import io
from html import escape
from pathlib import Path

import duckdb

from ..files import atomic_write_text
from .control_titles import control_label, display_title
from .exports import open_warehouse

OPEN = ("new", "open", "reopened")
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
COLORS = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#f59e0b",
    "low": "#3b82f6",
    "info": "#9ca3af",
    "pass": "#16a34a",
    "fail": "#dc2626",
    "not_evaluable": "#9ca3af",
    "on_track": "#16a34a",
    "breached": "#dc2626",
    "exempt": "#9ca3af",
    "met": "#16a34a",
    "missed": "#f59e0b",
}
TOP_APPLICATIONS = 15
TRIAGE_SHOWN = 50  # latest triage decisions listed


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


# The one definition of a framework's score, shown by the report, the explorer and the demo summary: passing
# controls out of evaluated ones (pass + fail), pooled over the relevant applications (an irrelevant
# application, e.g. an archived one, counts in none of them).
FRAMEWORK_SCORES = """
    SELECT framework, framework_title,
           sum(passed)::BIGINT AS passed, sum(failed)::BIGINT AS failed,
           sum(not_evaluable)::BIGINT AS not_evaluable,
           round(100.0 * sum(passed) / nullif(sum(passed) + sum(failed), 0), 1) AS score
    FROM compliance_scores WHERE application_is_relevant
    GROUP BY ALL ORDER BY framework"""


def framework_scores(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return _rows(con, FRAMEWORK_SCORES)


def report_data(con: duckdb.DuckDBPyConnection) -> dict:
    """Every number the report shows, as plain data (the HTML only lays it out)."""
    open_list = ", ".join(f"'{s}'" for s in OPEN)
    return {
        "build": _rows(con, "SELECT build_id, now FROM build_context")[0],
        "applications": _rows(
            con, "SELECT count(*) AS total, count(*) FILTER (WHERE is_relevant) AS relevant FROM applications"
        )[0],
        "statuses": {
            r["status"]: r["n"] for r in _rows(con, "SELECT status, count(*) AS n FROM findings_queue GROUP BY ALL")
        },
        "severities": {
            r["final_severity"]: r["n"]
            for r in _rows(
                con,
                f"SELECT final_severity, count(*) AS n FROM findings_queue WHERE status IN ({open_list}) GROUP BY ALL",
            )
        },
        "by_application": _rows(
            con,
            f"""
            SELECT application, count(*) AS total,
                   {", ".join(f"count(*) FILTER (WHERE final_severity = '{s}') AS {s}" for s in SEVERITY_ORDER)}
            FROM findings_queue WHERE status IN ({open_list})
            GROUP BY ALL ORDER BY total DESC, application LIMIT {TOP_APPLICATIONS}""",
        ),
        "sla": {
            r["sla_status"]: r["n"]
            for r in _rows(con, "SELECT sla_status, count(*) AS n FROM findings_queue GROUP BY ALL")
        },
        "frameworks": framework_scores(con),
        "application_scores": _rows(
            con,
            """
            SELECT application,
                   max(score) FILTER (WHERE framework = 'cis_ssc') AS cis_ssc,
                   max(score) FILTER (WHERE framework = 'ssdf') AS ssdf,
                   max(score) FILTER (WHERE framework = 'owasp_cicd') AS owasp_cicd,
                   sum(failed)::BIGINT AS failed, bool_and(s.application_is_relevant) AS relevant,
                   any_value(a.irrelevant_reasons) AS irrelevant_reasons
            FROM compliance_scores AS s LEFT JOIN applications AS a USING (application)
            GROUP BY ALL ORDER BY failed DESC, application""",
        ),
        "failing_controls": _rows(
            con,
            """
            SELECT control_id, framework_title, count(*) AS applications,
                   sum(len(failing_finding_ids))::BIGINT AS findings
            FROM compliance_report WHERE status = 'fail' AND application_is_relevant
            GROUP BY ALL ORDER BY applications DESC, control_id LIMIT 20""",
        ),
        "triage": _rows(
            con,
            f"""
            SELECT finding_id, application, title, status, triage_status, triage_reason, triage_owner,
                   triage_expires, triage_decided_by, triage_decided_at
            FROM findings_queue WHERE triage_status IN ('false_positive', 'accepted_risk')
            ORDER BY triage_decided_at DESC, finding_id LIMIT {TRIAGE_SHOWN}""",
        ),
    }


# -- charts ---------------------------------------------------------------------------------------
# Upper bound of a character's width in 12px sans-serif (capitals and digits are ~7-8px): the label column
# is sized from the longest label so that no label is cut off (issue 16: the CIS title was truncated).
LABEL_CHAR_WIDTH = 8


def label_column_width(labels: list[str]) -> int:
    return max(len(label) for label in labels) * LABEL_CHAR_WIDTH + 12


def _bars(rows: list[tuple[str, list[tuple[str, int]]]], bar_width: int = 420) -> str:
    """Horizontal (stacked) bars as inline SVG: rows of (label, [(segment, value)]), value shown at the end;
    the label column fits the longest label, the bars get `bar_width` pixels after it."""
    if not rows:
        return '<p class="empty">nothing to show</p>'
    bar_height, gap = 20, 8
    label_width = label_column_width([label for label, _ in rows])
    width = label_width + bar_width
    largest = max(sum(v for _, v in segments) for _, segments in rows) or 1
    scale = (width - label_width - 60) / largest
    height = len(rows) * (bar_height + gap)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            'font-family="sans-serif" font-size="12">'
        )
    ]
    for i, (label, segments) in enumerate(rows):
        y = i * (bar_height + gap)
        parts.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        x = float(label_width)
        for segment, value in segments:
            if value:
                w = value * scale
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" '
                    f'fill="{COLORS.get(segment, "#6b7280")}">'
                    f"<title>{escape(segment)}: {value}</title></rect>"
                )
                x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 14}">{sum(v for _, v in segments)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(keys: tuple[str, ...]) -> str:
    return (
        '<p class="legend">'
        + " ".join(f'<span><i style="background:{COLORS[k]}"></i>{escape(k.replace("_", " "))}</span>' for k in keys)
        + "</p>"
    )


def _application_cell(row: dict) -> str:
    """The row start and application cell; a greyed-out (irrelevant) application says why, as a tooltip and
    as visible text (issue 16)."""
    if row["relevant"]:
        return f"<tr><td>{escape(row['application'])}</td>"
    why = escape(", ".join(row["irrelevant_reasons"] or []) or "no reason recorded")
    return (
        f'<tr class=irrelevant title="not relevant: {why}"><td>{escape(row["application"])}'
        f"<br><small>not relevant: {why}</small></td>"
    )


def _score(value) -> str:
    return "–" if value is None else f"{value:.1f}%"


def render_html(data: dict) -> str:
    statuses, sla = data["statuses"], data["sla"]
    open_total = sum(statuses.get(s, 0) for s in OPEN)
    tiles = [
        ("applications", f"{data['applications']['total']}", f"{data['applications']['relevant']} relevant"),
        ("open findings", f"{open_total}", f"{statuses.get('new', 0)} new, {statuses.get('reopened', 0)} reopened"),
        ("SLA breached", f"{sla.get('breached', 0)}", f"{sla.get('missed', 0)} resolved late"),
        ("suppressed", f"{statuses.get('suppressed', 0)}", "accepted risk"),
        ("resolved", f"{statuses.get('resolved', 0)}", "no longer seen by a complete scan"),
    ]
    tiles += [
        (
            f["framework_title"],
            _score(f["score"]),
            f"{f['passed']} pass · {f['failed']} fail · {f['not_evaluable']} not evaluable",
        )
        for f in data["frameworks"]
    ]
    severity_rows = [(s, [(s, data["severities"].get(s, 0))]) for s in SEVERITY_ORDER]
    app_rows = [(r["application"], [(s, r[s]) for s in SEVERITY_ORDER]) for r in data["by_application"]]
    sla_rows = [
        (s.replace("_", " "), [(s, sla.get(s, 0))]) for s in ("on_track", "breached", "met", "missed", "exempt")
    ]
    control_rows = [
        (f["framework_title"], [("pass", f["passed"]), ("fail", f["failed"]), ("not_evaluable", f["not_evaluable"])])
        for f in data["frameworks"]
    ]
    scores = "".join(
        _application_cell(r)
        + f"<td>{_score(r['cis_ssc'])}</td><td>{_score(r['ssdf'])}</td><td>{_score(r['owasp_cicd'])}</td>"
        f"<td>{r['failed']}</td></tr>"
        for r in data["application_scores"]
    )
    failing = "".join(
        f"<tr><td>{escape(control_label(r['control_id']))}</td><td>{escape(r['framework_title'])}</td>"
        f"<td>{r['applications']}</td><td>{r['findings']}</td></tr>"
        for r in data["failing_controls"]
    )
    triage = "".join(
        f"<tr><td><code>{escape(r['finding_id'])}</code></td><td>{escape(r['application'] or '')}</td>"
        f"<td>{escape(r['title'] or '')}</td><td>{escape(r['triage_status'].replace('_', ' '))}"
        f"{'' if r['status'] == 'suppressed' else ' (expired)'}</td><td>{escape(r['triage_reason'] or '')}</td>"
        f"<td>{escape(r['triage_owner'] or '')}</td><td>{escape(str(r['triage_expires'] or 'never'))}</td>"
        f"<td>{escape(r['triage_decided_by'] or '')}, {escape(str(r['triage_decided_at'])[:10])}</td></tr>"
        for r in data["triage"]
    )
    build = data["build"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Compliance report</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; color: #111827; max-width: 1100px; }}
h1 {{ margin-bottom: 0; }} .meta {{ color: #6b7280; margin-top: .25rem; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: .75rem; margin: 1.5rem 0; }}
.tile {{ border: 1px solid #e5e7eb; border-radius: 6px; padding: .75rem 1rem; min-width: 150px; }}
.tile b {{ display: block; font-size: 1.6rem; }} .tile span {{ color: #6b7280; font-size: .85rem; }}
section {{ margin: 2rem 0; }} table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .3rem .8rem; text-align: left; }}
tr.irrelevant {{ color: #9ca3af; }} .legend span {{ margin-right: 1rem; font-size: .85rem; }}
.legend i {{ display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }}
</style></head><body>
<h1>Compliance report</h1>
<p class="meta">Warehouse build {escape(str(build["build_id"]))} at {escape(str(build["now"]))}.
Scores: passing controls out of evaluated ones (pass + fail) over relevant applications.</p>
<div class="tiles">{
        "".join(
            f'<div class="tile"><b>{escape(v)}</b>{escape(k)}<br><span>{escape(n)}</span></div>' for k, v, n in tiles
        )
    }</div>
<section><h2>Open findings by severity</h2>{_bars(severity_rows)}</section>
<section><h2>Open findings by application (top {TOP_APPLICATIONS})</h2>
{_legend(SEVERITY_ORDER)}{_bars(app_rows)}</section>
<section><h2>SLA status</h2>{_bars(sla_rows)}</section>
<section><h2>Control pass rates</h2>{_legend(("pass", "fail", "not_evaluable"))}{_bars(control_rows)}</section>
<section><h2>Scores per application</h2><table><tr><th>application</th><th>CIS SSC</th><th>NIST SSDF</th>
<th>OWASP CI/CD</th><th>failing controls</th></tr>{scores}</table>
<p class="legend">Grey rows: applications that are not relevant (e.g. archived or long inactive, or marked so in
applications.yaml), with the reason below the name; they count in no framework score.</p></section>
<section><h2>Most failed controls</h2><table><tr><th>control</th><th>framework</th><th>applications failing</th>
<th>findings</th></tr>{failing}</table></section>
<section id="triage"><h2>Triage decisions (ox-bb triage, latest {TRIAGE_SHOWN})</h2><table><tr><th>finding</th>
<th>application</th><th>title</th><th>decision</th><th>reason</th><th>owner</th><th>expires</th><th>decided</th>
</tr>{triage}</table></section>
</body></html>
"""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell a spreadsheet will not run: one starting like a formula gets a leading single quote
    (OWASP CSV injection). Evidence quotes branch names, descriptions and other text from Bitbucket."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_text(header: list[str], rows) -> str:
    """CSV for spreadsheets (compliance.csv, `ox-bb query --format csv`): every text cell through
    `spreadsheet_safe`, and a row holding a carriage return fully quoted — with "\n" line ends the csv
    module leaves a lone CR unquoted, and a reader would split the row there."""
    out = io.StringIO()
    plain = csv.writer(out, lineterminator="\n")
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in [header, *rows]:
        cells = [spreadsheet_safe(cell) for cell in row]
        (quoted if any(isinstance(c, str) and "\r" in c for c in cells) else plain).writerow(cells)
    return out.getvalue()


def render_csv(con: duckdb.DuckDBPyConnection) -> str:
    rows = _rows(
        con,
        """
        SELECT r.application, r.framework, r.control_id, r.status, r.failing_finding_ids, r.accepted_finding_ids,
               r.evidence, s.score AS framework_score, r.application_is_relevant
        FROM compliance_report AS r
        JOIN compliance_scores AS s USING (application, framework)
        ORDER BY r.application, r.framework, r.control_id""",
    )
    header = [
        "application",
        "framework",
        "control_id",
        "control_title",
        "status",
        "failing_finding_ids",
        "accepted_finding_ids",
        "evidence",
        "framework_score",
        "application_is_relevant",
    ]
    return csv_text(
        header,
        (
            [
                r["application"],
                r["framework"],
                r["control_id"],
                display_title(r["control_id"]),
                r["status"],
                ";".join(r["failing_finding_ids"]),
                ";".join(r["accepted_finding_ids"]),
                " | ".join(r["evidence"]),
                "" if r["framework_score"] is None else r["framework_score"],
                str(r["application_is_relevant"]).lower(),
            ]
            for r in rows
        ),
    )


def write_reports(home: Path) -> dict[str, Path]:
    """`<home>/reports/compliance.html` and `.csv` from the warehouse of the data home `home`."""
    con = open_warehouse(home)
    try:
        html, table = render_html(report_data(con)), render_csv(con)
    finally:
        con.close()
    folder = home / "reports"
    return {
        "html": atomic_write_text(folder / "compliance.html", html),
        "csv": atomic_write_text(folder / "compliance.csv", table),
    }
