"""The Dagster UI, driven by a real browser (Debian's chromium, headless) on `dagster dev` against
the sandbox, started the way `ox-bb demo --ui` starts it: the asset graph shows the stages, an
asset explains itself, and a materialization launched from the UI succeeds in the UI.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline_tests.browser import chromium_page
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_pipeline_tests.ui.conftest import free_port, wait_until_answering
from ox_bb_sandbox.devui import sandbox_ui, stop

GROUPS = ("bitbucket", "scanning", "warehouse", "reports")
PARTITION = "sandbox-token"
DEV_LOG = "dagster-dev.log"  # in the test's tmp_path: what dagster dev and the runs printed
# Generous, because two test workers share two cores: Dagster loads the code in the webserver, the
# daemon and the run worker, each a fresh Python process.
UI_MS = 120_000
RUN_MS = 600_000
TEST_SECONDS = 1200  # startup, the clicks and the run, with room to spare


@pytest.fixture
def dagster_ui(tmp_path):
    """`dagster dev` on a tiny sandbox and a free port; its whole process group is stopped after."""
    with sandbox_ui(tmp_path / "home", TINY) as dev:
        port = free_port()
        log = tmp_path / DEV_LOG
        with open(log, "wb") as output:
            process = dev.start(port, stdout=output, stderr=subprocess.STDOUT)
            try:
                wait_until_answering(dev.url(port), process, log)
                yield dev, dev.url(port)
            finally:
                stop(process)


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path / "chromium-profile", UI_MS) as page:
        yield page


def run_error(tmp_path: Path) -> str:
    """The failure dagster dev logged, so a red test says why without opening the UI."""
    log = (tmp_path / DEV_LOG).read_text(errors="replace")
    if "RUN_FAILURE" not in log:
        return f"see {tmp_path / DEV_LOG}"
    return log[log.find("RUN_FAILURE") :][:2000]


@contextmanager
def screenshot_on_failure(page: Page, path: Path):
    try:
        yield
    except BaseException:
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failure: {path}")
        raise


def visible_text(page: Page, text: str):
    # The UI renders some labels twice (a hidden copy measures truncation): take the visible one.
    return page.get_by_text(text, exact=True).filter(visible=True).first


def open_asset_graph(page: Page, url: str) -> None:
    page.goto(f"{url}/asset-groups")
    for group in GROUPS:
        expect(visible_text(page, group)).to_be_visible()


def open_repositories_asset(page: Page, url: str) -> None:
    """The asset page explains the table: its description, owner, kinds and columns."""
    page.goto(f"{url}/assets/bitbucket/repositories")
    opening = tables.description("repositories").split(";")[0]  # before the markdown `code`
    expect(page.get_by_text(opening).first).to_be_visible()
    expect(visible_text(page, "data-engineering")).to_be_visible()
    expect(visible_text(page, "main_head")).to_be_visible()


def launch_partition(page: Page, partition: str) -> str:
    """Materialize… → Confirm (the extract is one multi-asset step) → pick the partition → Launch;
    returns the run page's path from the launch notice."""
    page.locator("button", has_text=re.compile(r"^Materialize(…|\.\.\.)?$")).first.click()
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill(partition)
    visible_text(page, partition).click()
    page.get_by_text(re.compile(r"^Launch runs to materialize")).click()  # closes the list
    page.locator("button", has_text=re.compile(r"^Launch 1 run$")).click()
    expect(page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))).to_be_visible()
    return page.get_by_role("link", name="View", exact=True).get_attribute("href")


@pytest.mark.timeout(TEST_SECONDS)
def test_the_ui_shows_the_stages_explains_an_asset_and_runs_a_partition(dagster_ui, page, tmp_path):
    dev, url = dagster_ui
    with screenshot_on_failure(page, tmp_path / "failure.png"):
        open_asset_graph(page, url)
        open_repositories_asset(page, url)
        run_page = launch_partition(page, PARTITION)

        assert re.fullmatch(r"/runs/[0-9a-f-]{36}", run_page), run_page
        page.goto(f"{url}{run_page}")
        ended = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).filter(visible=True)
        expect(ended.first).to_be_visible(timeout=RUN_MS)
        status = ended.first.inner_text()
        assert status == "Success", f"the run ended in {status}: {run_error(tmp_path)}"

    written = dev.home / "lake" / "raw" / "repositories" / f"connection={PARTITION}"
    assert any(written.glob("*.parquet")), "the run wrote the partition into the lake"
