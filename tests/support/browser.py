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


def begin_consumer_sign_in(context, url: str):
    """The portal's Sign-in page, its button: a new tab on the provider's sign-in page."""
    page = context.new_page()
    page.goto(f"{url}/sign-in")
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_url(re.compile(r"/idp/authorize"), timeout=30_000)
    return page


def finish_consumer_sign_in(page, context, url: str, phone: str) -> None:
    """On the provider's page: ask for a code, type it (from the sandbox SMS inbox of the portal
    at `url`, the one that sent it) and come back to the portal signed in."""
    page.fill("#phone", phone)
    page.get_by_role("button", name="获取验证码").click()
    page.wait_for_selector("text=验证码已发送", timeout=30_000)
    page.fill("#code", latest_code(context, url))
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=我的回收", timeout=30_000)


def consumer_sign_in(context, url: str, phone: str):
    """A consumer signs in with an SMS code; the tab, back on the portal."""
    page = begin_consumer_sign_in(context, url)
    finish_consumer_sign_in(page, context, url, phone)
    return page


def fill_recovery(
    page, masked: str, payee: str, *, agreement: str | re.Pattern[str] = re.compile(r"^我已阅读并同意协议")
):
    """The Recover page up to its submit button: the number `masked` checked with the carrier,
    Alipay's quote locked, the payout account given and the agreement accepted (its checkbox's
    label: `agreement`)."""
    page.get_by_role("link", name="回收", exact=True).click()
    page.wait_for_selector("text=1 · 您的号码", timeout=30_000)
    page.locator("[data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name=masked).click()
    page.get_by_role("button", name="向运营商查询").click()
    page.wait_for_selector("text=当前属于", timeout=30_000)
    page.get_by_text(re.compile(r"^支付宝:到账")).click()
    page.get_by_role("button", name="锁定该报价 10 分钟").click()
    page.wait_for_selector("text=已锁定", timeout=30_000)
    page.get_by_label("钱包账户(手机号或邮箱)").fill(payee)
    page.get_by_label("钱包账户(手机号或邮箱)").press("Enter")
    page.get_by_text(agreement).click()
    page.get_by_role("button", name="同意", exact=True).click()
    page.wait_for_selector("text=您已同意协议", timeout=30_000)
