"""The whole warehouse is one dbt graph: the analyst marts (once plain SQL files built after dbt) are dbt models,
so each is its own Dagster asset with edges to exactly the models and lake tables it reads."""

from __future__ import annotations

import dagster as dg

from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.warehouse.models import SQL_DIR, discover

ANALYST_MARTS = {
    "compliance_daily": {"warehouse/compliance_history"},
    "compliance_history": {"warehouse/compliance_scores"},
    "finding_states": {"warehouse/finding_stretches"},
    "finding_stretches": {"warehouse/findings_history"},
    "findings_daily": {"warehouse/finding_states", "warehouse/findings_history"},
    "posture_checks": {
        "scanning/posture_results",
        "warehouse/application_mapping",
        "warehouse/posture_check_digests",
    },
    "remediation_summary": {"warehouse/remediation_times"},
    "finding_remediations": {"warehouse/findings_history"},
    "remediation_times": {"warehouse/finding_remediations", "warehouse/applications"},
    "sla_breach_daily": {"warehouse/findings_daily"},
}


def test_the_analyst_marts_are_dbt_models_with_edges_to_what_they_read():
    assert not list(SQL_DIR.glob("*.sql")), "a model outside the dbt project is not built"
    models = {m.name: m for m in discover()}
    graph = defs().resolve_asset_graph()
    for name, upstream in ANALYST_MARTS.items():
        assert models[name].path.parent == SQL_DIR / "models" / "marts", name
        assert models[name].description and all(models[name].columns.values()), name
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(["warehouse", name])).parent_keys}
        assert parents == upstream, name
