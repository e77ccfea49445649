"""The warehouse's lineage in the Dagster UI (a real browser on `dagster dev`, as test_dagster_ui): a dbt model
shows edges to the models it reads, not to every scanning asset, and its dbt tests as asset checks."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ox_bb_pipeline_tests.ui.test_dagster_ui import (  # noqa: F401 (fixtures)
    TEST_SECONDS,
    dagster_ui,
    page,
    screenshot_on_failure,
    visible_text,
)

# What sql/models/marts/findings_queue.sql reads: models (ref) and lake tables (source)
UPSTREAM = ("enriched_findings", "finding_correlations", "applications", "scan_runs", "posture_results")
NOT_UPSTREAM = ("bandit_findings", "secrets_findings", "repository_files", "findings_history")


@pytest.mark.timeout(TEST_SECONDS)
def test_findings_queue_shows_the_models_it_reads_and_its_dbt_tests(dagster_ui, page, tmp_path):  # noqa: F811
    _dev, url = dagster_ui
    with screenshot_on_failure(page, tmp_path / "failure.png"):
        page.goto(f"{url}/assets/warehouse/findings_queue?view=lineage&lineageScope=upstream&lineageDepth=1")
        # A node shows a long name middle-truncated; its full name is in the page as the hidden copy the UI
        # measures, so presence (attached), not visibility, says the node is in the graph.
        expect(visible_text(page, "enriched_findings")).to_be_visible()
        for name in UPSTREAM:
            expect(page.get_by_text(name, exact=True).first).to_be_attached()
        for name in NOT_UPSTREAM:
            expect(page.get_by_text(name, exact=True)).to_have_count(0)

        page.goto(f"{url}/assets/warehouse/findings_queue?view=checks")
        expect(page.get_by_text("unique_findings_queue_finding_id").filter(visible=True).first).to_be_visible()
        expect(page.get_by_text("accepted_values_findings_queue_status").filter(visible=True).first).to_be_visible()

        page.goto(f"{url}/assets/warehouse/findings_queue")
        description = page.get_by_text("The unified queue: one row per fingerprint").filter(visible=True)
        expect(description.first).to_be_visible()
