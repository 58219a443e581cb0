"""A real portal on loopback and a real headless Chromium, for the browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, warmed_portal
from tests.support.processes import running_portal


@pytest.fixture(scope="session")
def portal_url() -> Iterator[str]:
    with running_portal() as url:
        yield url


@pytest.fixture(scope="module")
def server_url(browser) -> Iterator[str]:
    """The whole server (`app.py`, with the built-in provider), warmed up, for one test module."""
    with warmed_portal(browser) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("Debian's chromium is required here (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed; CI installs it and runs these tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
