"""The explorable report, `reports/explorer.html`: one self-contained page (no network at view time: data
inline as JSON, charts drawn as inline SVG by a small inline script) with trends from the history marts,
filters by application, team, severity, category and status, and a drill-down application → findings →
detail with the severity explanation. Scores use the report's one definition (report.FRAMEWORK_SCORES).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb

from ..files import atomic_write_text
from .control_titles import control_label
from .exports import open_warehouse
from .report import SEVERITY_ORDER, _rows, framework_scores

OPEN = ("new", "open", "reopened")
# The page stays small whatever the queue's size: every count comes from an aggregate (the cube); only the
# drill-down list carries single findings: up to FINDINGS_SHOWN in all, at most FINDINGS_PER_APPLICATION per
# application (open ones first, worst first); trends of more than DAILY_UP_TO days are drawn week by week.
FINDINGS_PER_APPLICATION = 100
FINDINGS_SHOWN = 20_000
DAILY_UP_TO = 60


def _index(values: list) -> tuple[list, dict]:
    names = sorted({v for v in values if v is not None})
    return names, {v: i for i, v in enumerate(names)}


def explorer_data(con: duckdb.DuckDBPyConnection) -> dict:
    """Everything the page shows, compact: dimension values once, rows as arrays of indexes."""
    open_list = ", ".join(f"'{s}'" for s in OPEN)
    cube = _rows(
        con,
        """
        SELECT application, coalesce(assigned_team, team) AS team, final_severity, category, status,
               count(*) AS n, count(*) FILTER (WHERE sla_breached) AS breached
        FROM findings_queue GROUP BY ALL""",
    )
    applications = con.execute("SELECT count(DISTINCT application) FROM findings_queue").fetchone()[0] or 1
    per_application = max(10, min(FINDINGS_PER_APPLICATION, FINDINGS_SHOWN // applications))
    findings = _rows(
        con,
        f"""
        SELECT q.finding_id, q.application, coalesce(q.assigned_team, q.team) AS team, q.final_severity,
               q.category, q.status, q.sla_breached, q.title, q.repository_full_name, q.file_path, q.rule_id,
               q.severity_explanation, q.controls, coalesce(c.title, '') AS check_title
        FROM findings_queue AS q
        LEFT JOIN config_posture_checks AS c ON q.scanner = 'posture' AND c.check_id = q.rule_id
        QUALIFY row_number() OVER (PARTITION BY q.application
                                   ORDER BY q.status IN ({open_list}) DESC,
                                            list_position({list(SEVERITY_ORDER)}, q.final_severity),
                                            q.sla_due_at NULLS LAST, q.finding_id) <= {per_application}
        ORDER BY q.application, q.finding_id""",
    )
    teams = dict(con.execute("SELECT application, team FROM applications").fetchall())
    # open findings only (what the trends draw), every day, or every 7th day counted back from the last
    daily = _rows(
        con,
        f"""
        WITH span AS (SELECT max(day) AS last, count(DISTINCT day) AS days FROM findings_daily)
        SELECT day, application, final_severity, sum(findings)::BIGINT AS findings,
               sum(sla_breached)::BIGINT AS sla_breached
        FROM findings_daily, span
        WHERE status IN ({open_list}) AND (span.days <= {DAILY_UP_TO} OR date_diff('day', day, span.last) % 7 = 0)
        GROUP BY ALL""",
    )
    apps, app_i = _index([c["application"] for c in cube] + [d["application"] for d in daily])
    team_names, team_i = _index([c["team"] for c in cube] + list(teams.values()))
    categories, cat_i = _index([c["category"] for c in cube])
    statuses, status_i = _index([c["status"] for c in cube])
    sev_i = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    strings: dict[str, int] = {}  # titles, explanations, … repeat: each text once, rows point to it

    def text(value) -> int:
        return strings.setdefault(value or "", len(strings))

    return {
        "build": {k: str(v) for k, v in _rows(con, "SELECT build_id, now FROM build_context")[0].items()},
        "dims": {
            "application": apps,
            "team": team_names,
            "severity": list(SEVERITY_ORDER),
            "category": categories,
            "status": statuses,
        },
        "app_team": [team_i.get(teams.get(a), -1) for a in apps],
        # application, team, severity, category, status, findings, of them past their SLA
        "cube": [
            [
                app_i[c["application"]],
                team_i.get(c["team"], -1),
                sev_i.get(c["final_severity"], 4),
                cat_i[c["category"]],
                status_i[c["status"]],
                c["n"],
                c["breached"],
            ]
            for c in cube
        ],
        # application, team, severity, category, status, breached, id, then indexes into strings: title,
        # repository, file, rule, explanation, controls
        "findings": [
            [
                app_i[f["application"]],
                team_i.get(f["team"], -1),
                sev_i.get(f["final_severity"], 4),
                cat_i[f["category"]],
                status_i[f["status"]],
                int(bool(f["sla_breached"])),
                f["finding_id"],
                text(f["title"]),
                text(f["repository_full_name"]),
                text(f["file_path"]),
                text(f["rule_id"]),
                text(f["severity_explanation"]),
                text(
                    "; ".join(control_label(c) for c in f["controls"] or [])
                    + (f" ({f['check_title']})" if f["check_title"] else "")
                ),
            ]
            for f in findings
        ],
        "strings": list(strings),
        "per_application": per_application,
        "daily": [
            [
                d["day"].isoformat(),
                app_i[d["application"]],
                sev_i.get(d["final_severity"], 4),
                d["findings"],
                d["sla_breached"],
            ]
            for d in daily
        ],
        "mttr": _rows(
            con,
            "SELECT application, team, resolved, mttr_days, p50_days, p90_days "
            "FROM remediation_summary WHERE final_severity = 'all' ORDER BY application",
        ),
        "compliance": _rows(
            con,
            """
            SELECT day, framework, round(100.0 * sum(passed) / nullif(sum(passed) + sum(failed), 0), 1) AS score
            FROM compliance_daily WHERE application_is_relevant GROUP BY ALL ORDER BY day, framework""",
        ),
        "frameworks": framework_scores(con),
    }


def _json(data: dict) -> str:
    def default(value):
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        return str(value)

    # inside <script>: no "</" may close it early
    return json.dumps(data, default=default, separators=(",", ":")).replace("</", "<\\/")


def render_explorer(data: dict) -> str:
    return PAGE.replace("/*DATA*/null", _json(data))


def write_explorer(home: Path) -> Path:
    con = open_warehouse(home)
    try:
        html = render_explorer(explorer_data(con))
    finally:
        con.close()
    return atomic_write_text(home / "reports" / "explorer.html", html)


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Findings explorer</title>
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<style>
body { font-family: sans-serif; margin: 1.5rem; color: #111827; }
.tiles { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.tile { border: 1px solid #e5e7eb; border-radius: 6px; padding: .6rem 1rem; min-width: 140px; }
.tile b { display: block; font-size: 1.5rem; } .meta { color: #6b7280; }
.filters label { margin-right: 1rem; } table { border-collapse: collapse; margin: .5rem 0; }
td, th { border-bottom: 1px solid #e5e7eb; padding: .25rem .7rem; text-align: left; }
tr.click { cursor: pointer; } tr.click:hover { background: #f3f4f6; }
#detail { border: 1px solid #e5e7eb; padding: .75rem; margin-top: 1rem; display: none; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
</style></head><body>
<h1>Findings explorer</h1>
<p class="meta" id="meta"></p>
<div class="filters" id="filters"></div>
<div class="tiles" id="tiles"></div>
<div class="charts">
<section><h2>Open findings by severity over time</h2><div id="trend"></div></section>
<section><h2>SLA breach rate over time</h2><div id="breach"></div></section>
<section><h2>Compliance score per framework over time</h2><div id="compliance"></div></section>
</div>
<section><h2>Applications</h2><table id="apps"></table></section>
<section><h2 id="findings-title">Findings</h2><table id="findings"></table></section>
<section id="detail"></section>
<script>
const D = /*DATA*/null;
const SEV_COLORS = ["#7f1d1d", "#dc2626", "#f59e0b", "#3b82f6", "#9ca3af"];
const OPEN = new Set(["new", "open", "reopened"].map(s => D.dims.status.indexOf(s)).filter(i => i >= 0));
const DIMS = ["application", "team", "severity", "category", "status"];
const state = {application: -1, team: -1, severity: -1, category: -1, status: -1, drill: -1};
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

function keep(f) {  // a finding row [app, team, sev, cat, status, ...]
  return DIMS.every((d, i) => state[d] < 0 || f[i] === state[d]);
}
function keepDaily(r) {  // [day, app, sev, open findings, breached]: no category or status in the trends
  return (state.application < 0 || r[1] === state.application) &&
         (state.team < 0 || D.app_team[r[1]] === state.team) && (state.severity < 0 || r[2] === state.severity);
}
function svgLines(series, labels, max, colors, unit) {
  const w = 460, h = 160, pad = 30, n = labels.length;
  if (!n) return '<p class="meta">no history yet</p>';
  const x = i => pad + (n < 2 ? 0 : i * (w - 2 * pad) / (n - 1)), y = v => h - pad - v * (h - 2 * pad) / (max || 1);
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-size="10">`;
  out += `<text x="2" y="${pad - 8}">${esc(max)}${unit}</text><text x="${pad}" y="${h - 8}">${esc(labels[0])}</text>`;
  out += `<text x="${w - pad}" y="${h - 8}" text-anchor="end">${esc(labels[n - 1])}</text>`;
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`).filter(Boolean);
    out += `<polyline fill="none" stroke="${colors[k]}" stroke-width="2" points="${pts.join(" ")}">` +
           `<title>${esc(s.name)}</title></polyline>`;
    out += `<text x="${w - 2}" y="${12 + 11 * k}" text-anchor="end" fill="${colors[k]}">${esc(s.name)}</text>`;
  });
  return out + "</svg>";
}
function drawTrends() {
  const days = [...new Set(D.daily.map(r => r[0]))].sort(), di = new Map(days.map((d, i) => [d, i]));
  const bySev = D.dims.severity.map(() => days.map(() => 0)), open = days.map(() => 0), late = days.map(() => 0);
  for (const r of D.daily) {
    if (!keepDaily(r)) continue;
    bySev[r[2]][di.get(r[0])] += r[3]; open[di.get(r[0])] += r[3]; late[di.get(r[0])] += r[4];
  }
  const max = Math.max(1, ...bySev.flat());
  document.getElementById("trend").innerHTML = svgLines(
    D.dims.severity.map((s, i) => ({name: s, values: bySev[i]})), days, max, SEV_COLORS, "");
  document.getElementById("breach").innerHTML = svgLines(
    [{name: "breached", values: open.map((n, i) => n ? Math.round(1000 * late[i] / n) / 10 : null)}],
    days, 100, ["#dc2626"], "%");
  const cdays = [...new Set(D.compliance.map(r => r.day))].sort();
  const fws = [...new Set(D.compliance.map(r => r.framework))];
  document.getElementById("compliance").innerHTML = svgLines(fws.map(fw => ({name: fw, values: cdays.map(
    d => (D.compliance.find(r => r.day === d && r.framework === fw) || {score: null}).score)})),
    cdays, 100, ["#16a34a", "#2563eb", "#9333ea"], "%");
}
const S = i => D.strings[i];
const sum = (rows, k) => rows.reduce((s, r) => s + r[k], 0);
function drawTiles(cube) {  // cube rows: [app, team, sev, cat, status, n, breached]
  const open = cube.filter(c => OPEN.has(c[4]));
  const tiles = [["open findings", sum(open, 5), "tile-open"],
                 ["critical open", sum(open.filter(c => c[2] === 0), 5), "tile-critical"],
                 ["SLA breached", sum(open, 6), "tile-breached"]];
  for (const fw of D.frameworks) tiles.push([fw.framework_title, fw.score === null ? "–" : fw.score.toFixed(1) + "%",
                                             "tile-" + fw.framework]);
  document.getElementById("tiles").innerHTML = tiles.map(([k, v, id]) =>
    `<div class="tile" id="${id}"><b>${esc(v)}</b>${esc(k)}</div>`).join("");
}
function drawApps(cube) {
  const counts = new Map();
  for (const r of cube) if (OPEN.has(r[4])) {
    const c = counts.get(r[0]) || [0, 0, 0, 0, 0]; c[r[2]] += r[5]; counts.set(r[0], c);
  }
  const mttr = new Map(D.mttr.map(m => [m.application, m]));
  const order = [...counts.entries()].sort((a, b) => b[1].reduce((s, v) => s + v) - a[1].reduce((s, v) => s + v));
  document.getElementById("apps").innerHTML = "<tr><th>application</th><th>team</th>" +
    D.dims.severity.map(s => `<th>${s}</th>`).join("") + "<th>MTTR (days)</th></tr>" +
    order.map(([a, c]) => `<tr class="click" data-app="${a}"><td>${esc(D.dims.application[a])}</td>` +
      `<td>${esc(D.dims.team[D.app_team[a]] || "")}</td>` + c.map(n => `<td>${n}</td>`).join("") +
      `<td>${mttr.has(D.dims.application[a]) ? mttr.get(D.dims.application[a]).mttr_days : "–"}</td></tr>`).join("");
  for (const tr of document.querySelectorAll("#apps tr.click"))
    tr.onclick = () => { state.drill = +tr.dataset.app; drawFindings(); };
}
function drawFindings() {
  const rows = D.findings.filter(f => keep(f) && (state.drill < 0 || f[0] === state.drill)).slice(0, 500);
  const total = sum(D.cube.filter(c => keep(c) && (state.drill < 0 || c[0] === state.drill)), 5);
  document.getElementById("findings-title").textContent = "Findings" +
    (state.drill >= 0 ? " of " + D.dims.application[state.drill] : "") +
    ` (${rows.length} of ${total} shown: up to ${D.per_application} per application, open and worst first)`;
  document.getElementById("findings").innerHTML =
    "<tr><th>severity</th><th>status</th><th>title</th><th>repository</th><th>file</th></tr>" +
    rows.map(f => `<tr class="click" data-id="${esc(f[6])}"><td>${D.dims.severity[f[2]]}</td>` +
      `<td>${esc(D.dims.status[f[4]])}</td><td>${esc(S(f[7]))}</td><td>${esc(S(f[8]))}</td>` +
      `<td>${esc(S(f[9]))}</td></tr>`).join("");
  for (const tr of document.querySelectorAll("#findings tr.click")) tr.onclick = () => showDetail(tr.dataset.id);
}
function showDetail(id) {
  const f = D.findings.find(r => r[6] === id), el = document.getElementById("detail");
  el.style.display = "block";
  el.innerHTML = `<h2>${esc(S(f[7]))}</h2><p><b>finding</b> <code>${esc(f[6])}</code> · ` +
    `<b>rule</b> ${esc(S(f[10]))} · ${esc(S(f[8]))} ${esc(S(f[9]))}</p><p><b>severity</b> ` +
    `${D.dims.severity[f[2]]}: <span id="explanation">${esc(S(f[11]))}</span></p>` +
    `<p><b>controls</b> ${esc(S(f[12])) || "–"}</p>`;
}
function draw() {
  const cube = D.cube.filter(keep);
  drawTiles(cube); drawApps(cube); drawFindings(); drawTrends();
}
document.getElementById("meta").textContent = `Warehouse build ${D.build.build_id} at ${D.build.now}. ` +
  "Scores: passing controls out of evaluated ones (pass + fail) over relevant applications.";
document.getElementById("filters").innerHTML = DIMS.map(d => `<label>${d} <select id="filter-${d}">` +
  `<option value="-1">all</option>` + D.dims[d].map((v, i) => `<option value="${i}">${esc(v)}</option>`).join("") +
  "</select></label>").join("");
for (const d of DIMS) document.getElementById("filter-" + d).onchange = e => {
  state[d] = +e.target.value; state.drill = -1; draw();
};
draw();
</script></body></html>
"""
