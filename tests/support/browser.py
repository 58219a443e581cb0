"""What the browser tests share: Debian's Chromium and its flags, a portal server warmed up for
deep links, and the code the sandbox SMS page shows."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from tests.support.processes import running_portal

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def warmed_portal(browser, script: str = "app.py", **env: str) -> Iterator[str]:
    """`running_portal`, with its landing page opened once first: Streamlit 1.67 learns a
    server's pages from its first run, so a deep link as the very first request of a fresh
    server would show "page not found"."""
    with running_portal(script, **env) as url:
        warm = browser.new_page()
        warm.goto(url)
        warm.wait_for_selector("text=最适合您", timeout=60_000)
        warm.close()
        yield url


def nav_labels(page) -> str:
    """The sidebar menu's text."""
    return page.locator("[data-testid=stSidebarNav]").inner_text()


def latest_code(context, url: str) -> str:
    """The last SMS code, as the sandbox SMS page of the portal at `url` shows it."""
    inbox = context.new_page()
    inbox.goto(f"{url}/sandbox-sms")
    inbox.wait_for_selector("text=验证码", timeout=30_000)
    found = re.search(r"验证码 (\d{6})", inbox.inner_text("body"))
    inbox.close()
    assert found is not None, "the sandbox SMS page shows no code"
    return found.group(1)
