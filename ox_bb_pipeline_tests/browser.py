"""One headless Debian chromium page for the browser tests (the Dagster UI, the explorer report): the Makefile
installs chromium with the system packages; tests never run `playwright install`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_page(profile: Path, timeout_ms: int) -> Iterator[Page]:
    """A page of a fresh chromium profile under `profile`, every wait and expectation bounded by `timeout_ms`."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
            yield page
        finally:
            browser.close()
