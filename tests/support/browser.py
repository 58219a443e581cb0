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


def staff_sign_in(context, url: str, username: str, password: str, *, timeout_ms: int = 30_000):
    """A member of staff signs in: the Sign-in page's button, then the built-in provider's staff
    form (username and password, in Chinese); back on the portal once the menu shows the account."""
    from core.i18n import Translator

    t = Translator("zh-CN")
    page = context.new_page()
    page.goto(f"{url}/sign-in")
    page.get_by_role("button", name=t("auth.sign_in")).click()
    page.wait_for_url(re.compile(r"/idp/authorize"), timeout=timeout_ms)
    staff = page.locator("section.staff")
    staff.locator("#username").fill(username)
    staff.locator("#password").fill(password)
    staff.get_by_role("button", name=t("signin.staff_submit"), exact=True).click()
    page.wait_for_selector(
        f"[data-testid=stSidebarNav] >> text={t('nav.account')}", timeout=timeout_ms, state="attached"
    )
    return page
