"""reports/explorer.html in a real browser (Debian's chromium, headless, as the UI test): it opens offline
(no request leaves the file), its numbers match SQL, filters narrow them, and the drill-down goes
application → findings → detail with the severity explanation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ox_bb_pipeline.warehouse.explorer import explorer_data, write_explorer
from ox_bb_pipeline.warehouse.exports import open_warehouse

from ..browser import chromium_page

OPEN = "status IN ('new', 'open', 'reopened')"


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path / "chromium-profile", 60_000) as page:
        yield page


def test_explorer_filters_drills_down_and_matches_sql(lake, warehouse, page):
    path = write_explorer(lake.home)
    assert path == lake.home / "reports" / "explorer.html"
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())

    open_findings = lake.value(f"SELECT count(*) FROM findings_queue WHERE {OPEN}")
    expect(page.locator("#tile-open b")).to_have_text(str(open_findings))
    score = lake.value(
        "SELECT round(100.0 * sum(passed) / nullif(sum(passed) + sum(failed), 0), 1) "
        "FROM compliance_scores WHERE application_is_relevant AND framework = 'cis_ssc'"
    )
    expect(page.locator("#tile-cis_ssc b")).to_have_text("–" if score is None else f"{score:.1f}%")
    expect(page.locator("#trend svg polyline")).to_have_count(5)

    page.select_option("#filter-application", label="payments")
    expect(page.locator("#tile-open b")).to_have_text(
        str(lake.value(f"SELECT count(*) FROM findings_queue WHERE {OPEN} AND application = 'payments'"))
    )
    page.select_option("#filter-severity", label="critical")
    expect(page.locator("#tile-open b")).to_have_text("1")
    page.select_option("#filter-severity", label="all")
    page.select_option("#filter-application", label="all")
    page.select_option("#filter-status", label="new")
    expect(page.locator("#tile-open b")).to_have_text(
        str(lake.value("SELECT count(*) FROM findings_queue WHERE status = 'new'"))
    )
    page.select_option("#filter-status", label="all")

    page.locator("#apps tr.click", has_text="payments").click()
    expect(page.locator("#findings-title")).to_contain_text("of payments")
    expect(page.locator("#findings tr.click")).to_have_count(
        lake.value("SELECT count(*) FROM findings_queue WHERE application = 'payments'")
    )
    page.locator("#findings tr.click", has_text="aws-key title").click()
    explanation = lake.value("SELECT severity_explanation FROM findings_queue WHERE rule_id = 'aws-key'")
    expect(page.locator("#explanation")).to_have_text(explanation)
    assert [url for url in requests if not url.startswith("file://")] == []


def test_explorer_lists_controls_with_their_titles(lake):
    api = lake.repository("api")
    lake.scan(api, "bandit")
    lake.finding(api, "bandit", "B105", severity="high", file_path="app/settings.py", controls=["CIS-SSC-1.5.4"])
    lake.build(settings=lake.small_settings())
    con = open_warehouse(lake.home)
    try:
        data = explorer_data(con)
    finally:
        con.close()
    [finding] = data["findings"]
    assert data["strings"][finding[12]] == "CIS-SSC-1.5.4 — SAST scanning"
