"""An SCA scan without advisory data for an ecosystem (scan_runs status `not_evaluable`) is never a
pass: the compliance report says the controls were not evaluated, why, and how to fix it."""

from __future__ import annotations

REASON = (
    "no advisory data for npm in the advisory index: run `ox-bb advisories sync` "
    "(or point OX_BB_OSV_PATH at OSV records)"
)


def test_sca_not_evaluable_leaves_its_controls_not_evaluable_with_the_fix(lake):
    shop, api = lake.repository("shop"), lake.repository("api")
    lake.scan(shop, "sca", status="not_evaluable", error=REASON)
    lake.scan(api, "sca")
    lake.build()
    rows = {
        (r["application"], r["control_id"]): (r["status"], r["evidence"])
        for r in lake.rows(
            "SELECT application, control_id, status, evidence FROM compliance_report WHERE control_id = 'SSDF-RV.1.1'"
        )
    }
    assert rows == {
        ("acme/shop", "SSDF-RV.1.1"): ("not_evaluable", [f"sca not evaluated on acme/shop: {REASON}"]),
        ("acme/api", "SSDF-RV.1.1"): ("pass", []),
    }
