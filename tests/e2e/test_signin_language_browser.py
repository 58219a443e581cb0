"""The built-in provider's sign-in page in a real browser: it speaks the portal's language (not
the browser's), and Back after a sign-in never lands on a browser error page."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import latest_code, nav_labels

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BROWSER_ERRORS = ("ERR_CACHE_MISS", "Confirm Form Resubmission", "确认重新提交表单", "chrome-error://")


def assert_no_browser_error(page) -> None:
    shown = page.url + "\n" + page.inner_text("body")
    assert not [e for e in BROWSER_ERRORS if e in shown], shown[:500]


def back(page) -> None:
    try:
        page.go_back(wait_until="load", timeout=30_000)
    except Exception as error:  # a navigation that ends on a browser error page raises here
        pytest.fail(f"going back failed: {error}")
    page.wait_for_timeout(1500)  # let a redirect, if any, finish
    assert_no_browser_error(page)


def test_an_english_portal_gets_an_english_provider_page_and_back_is_harmless(browser, server_url):
    context = browser.new_context(locale="zh-CN")  # a Chinese browser; the portal is switched to English
    page = context.new_page()
    page.goto(server_url)
    page.wait_for_selector("text=最适合您", timeout=60_000)
    page.locator("[data-testid=stSidebar]").get_by_role("radio", name="English").click()
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=Sign in", timeout=30_000)
    page.locator("[data-testid=stSidebarNav]").get_by_text("Sign in").click()
    page.get_by_role("button", name="Sign in / sign up").click()

    page.wait_for_url(re.compile(r"/idp/authorize\?"), timeout=30_000)
    assert "ui_locales=en" in page.url
    page.wait_for_selector("text=Sign in to the balance recovery portal", timeout=30_000)
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Phone-balance recovery compared" in page.locator("header").inner_text()

    page.fill("#phone", "13700137000")
    page.get_by_role("button", name="Send code").click()
    page.wait_for_selector("text=A code was sent to 137****7000", timeout=30_000)
    assert "13700137000" not in page.url and "/idp/authorize?" in page.url  # a GET after the POST

    page.fill("#code", "000000" if latest_code(context, server_url) != "000000" else "111111")
    page.get_by_role("button", name="Sign in / sign up").click()
    page.wait_for_selector("text=Wrong code; 4 tries left.", timeout=30_000)  # still English after a failure
    assert page.locator("html").get_attribute("lang") == "en"

    page.fill("#code", latest_code(context, server_url))
    page.get_by_role("button", name="Sign in / sign up").click()
    page.wait_for_url(re.compile(rf"^{re.escape(server_url)}/?(\?.*)?$"), timeout=30_000)
    # Streamlit's callback lands on "/" without ?lang: the portal still speaks the sign-in's language.
    page.wait_for_selector('[data-testid=stSidebarNav] >> text="Account"', timeout=30_000)
    assert "我的账户" not in nav_labels(page)

    back(page)  # to the provider page that said "wrong code": no resubmission, no error page
    back(page)
    # That sign-in is done: Back lands on the portal, signed in and in the portal's language.
    page.wait_for_selector('[data-testid=stSidebarNav] >> text="Account"', timeout=30_000)
    assert page.url.startswith(server_url) and "/idp/" not in page.url

    # Signing out through the English provider ends the session there too.
    page.locator("[data-testid=stSidebarNav]").get_by_text("Account", exact=True).click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=/^(Sign in|登录)$/", timeout=30_000)
    assert "Account" not in nav_labels(page) and "我的账户" not in nav_labels(page)
    page.goto(f"{server_url}/sign-in?lang=en")
    page.get_by_role("button", name="Sign in / sign up").click()
    page.wait_for_selector("#phone", timeout=30_000)  # asked again
    assert "ui_locales=en" in page.url
    context.close()


def test_back_after_a_chinese_sign_in_shows_no_browser_error(browser, server_url):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server_url}/sign-in")
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_url(re.compile(r"/idp/authorize\?"), timeout=30_000)
    page.wait_for_selector("text=登录话费回收比价", timeout=30_000)
    page.fill("#phone", "13600136000")
    page.get_by_role("button", name="获取验证码").click()
    page.wait_for_selector("text=验证码已发送至 136****6000", timeout=30_000)
    page.reload()  # harmless: nothing is posted again, the number is still there
    assert_no_browser_error(page)
    page.wait_for_selector("text=登录话费回收比价", timeout=30_000)
    page.fill("#code", latest_code(context, server_url))
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=我的账户", timeout=30_000)
    back(page)
    context.close()
