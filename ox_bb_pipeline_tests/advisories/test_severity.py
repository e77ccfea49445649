"""Severity from the data: CVSS v2, v3.x and v4 vectors scored by the `cvss` package, then the
database's label, then medium."""

from __future__ import annotations

import pytest

from ox_bb_pipeline.advisories.severity import Severity, cvss_score, severity_of

V3_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
V4_MEDIUM = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N"


@pytest.mark.parametrize(
    "kind, vector, score",
    [
        ("CVSS_V3", V3_CRITICAL, 9.8),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS_V3", "CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:U/C:H/I:N/A:N", 4.4),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N", 8.6),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS_V4", V4_CRITICAL, 9.3),
        ("CVSS_V4", V4_MEDIUM, 5.3),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L", None),
        ("CVSS_V4", "CVSS:4.0/AV:N", None),
        ("CVSS_V3", V4_CRITICAL, None),
        ("CVSS_V5", V3_CRITICAL, None),
    ],
)
def test_cvss_base_scores(kind, vector, score):
    assert cvss_score(kind, vector) == score


def test_the_newest_valid_vector_wins_then_the_label_then_medium():
    both = {
        "severity": [{"type": "CVSS_V3", "score": V3_CRITICAL}, {"type": "CVSS_V4", "score": V4_MEDIUM}],
        "database_specific": {"severity": "LOW"},
    }
    assert severity_of(both) == Severity("medium", 5.3, V4_MEDIUM)
    broken_v4 = {"severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}, {"type": "CVSS_V3", "score": V3_CRITICAL}]}
    assert severity_of(broken_v4) == Severity("critical", 9.8, V3_CRITICAL)
    assert severity_of(
        {"severity": [{"type": "CVSS_V4", "score": "nonsense"}], "database_specific": {"severity": "MODERATE"}}
    ) == Severity("medium")
    assert severity_of({"database_specific": {"severity": "HIGH"}}) == Severity("high")
    assert severity_of({"severity": "not a list of entries"}) == Severity("medium")
    assert severity_of({}) == Severity("medium")
