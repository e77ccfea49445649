"""The warehouse's lineage in the Dagster UI (a real browser on `dagster dev`, as test_dagster_ui): a dbt model
shows edges to the models it reads, not to every scanning asset, and its description from schema.yml."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ox_bb_pipeline_tests.ui.test_dagster_ui import (  # noqa: F401 (fixtures)
    TEST_SECONDS,
    dagster_ui,
    page,
    screenshot_on_failure,
)

# What sql/models/marts/findings_queue.sql reads: models (ref; the view over findings_queue_base, which reads the
# findings, correlations and the scan_runs and posture_results lake tables)
UPSTREAM = ("findings_queue_base", "findings_queue_digests", "severity_evidence", "applications")
NOT_UPSTREAM = ("bandit_findings", "secrets_findings", "repository_files", "findings_history")


@pytest.mark.timeout(TEST_SECONDS)
def test_findings_queue_shows_the_models_it_reads_and_its_description(dagster_ui, page, tmp_path):  # noqa: F811
    _dev, url = dagster_ui
    with screenshot_on_failure(page, tmp_path / "failure.png"):
        page.goto(f"{url}/assets/warehouse/findings_queue?view=lineage&lineageScope=upstream&lineageDepth=1")
        for name in UPSTREAM:  # a long name is shown middle-truncated (findings_que…_base): match its head and tail
            shown = re.compile(rf"^{re.escape(name[:-5][:8])}.*{re.escape(name[-5:])}$")
            expect(page.get_by_text(shown).filter(visible=True).first).to_be_visible()
        for name in NOT_UPSTREAM:
            expect(page.get_by_text(name[-13:])).to_have_count(0)

        page.goto(f"{url}/assets/warehouse/findings_queue")
        description = page.get_by_text("The unified queue: one row per fingerprint").filter(visible=True)
        expect(description.first).to_be_visible()
