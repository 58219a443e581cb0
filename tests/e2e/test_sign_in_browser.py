"""Sign-in in a real browser, through the built-in OpenID provider served by the portal itself."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.browser import latest_code, nav_labels
from tests.support.processes import free_port, running_portal, wait_until_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_consumer_signs_up_by_sms_stays_signed_in_across_a_reload_and_signs_out(browser, server_url):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server_url}/sign-in")
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_url(re.compile(r"/idp/authorize"), timeout=30_000)
    page.fill("#phone", "13800138000")
    page.get_by_role("button", name="获取验证码").click()
    page.wait_for_selector("text=验证码已发送至 138****8000", timeout=30_000)
    assert "13800138000" not in page.url
    page.fill("#code", latest_code(context, server_url))
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_url(re.compile(rf"^{re.escape(server_url)}/?(\?.*)?$"), timeout=30_000)
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=我的账户", timeout=30_000)

    page.reload()
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=我的账户", timeout=30_000)
    assert "登录" not in nav_labels(page).replace("我的账户", "")

    page.goto(f"{server_url}/account")
    page.wait_for_selector("text=138****8000", timeout=30_000)
    assert "13800138000" not in page.inner_text("body")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_selector("[data-testid=stSidebarNav] >> text=登录", timeout=30_000)
    assert "我的账户" not in nav_labels(page)

    # Signing out ended the session at the provider too: signing in again asks again.
    page.goto(f"{server_url}/sign-in")
    page.get_by_role("button", name="登录 / 注册").click()
    page.wait_for_selector("#phone", timeout=30_000)
    context.close()


def test_an_external_openid_provider_works_by_configuration_alone(browser):
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--user", "alice"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{issuer}/.well-known/openid-configuration")
        env = {
            "PORTAL_AUTH": "external",
            "AUTH_SERVER_METADATA_URL": f"{issuer}/.well-known/openid-configuration",
            "AUTH_CLIENT_ID": "portal-test",
            "AUTH_CLIENT_SECRET": "not-a-real-secret",
        }
        with running_portal("app.py", **env) as url:
            context = browser.new_context(locale="zh-CN")
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("text=最适合您", timeout=60_000)
            page.goto(f"{url}/sign-in")
            page.get_by_role("button", name="登录 / 注册").click()
            page.wait_for_url(re.compile(re.escape(issuer)), timeout=30_000)
            page.get_by_role("button", name="alice").click()
            page.wait_for_selector("[data-testid=stSidebarNav] >> text=我的账户", timeout=30_000)
            context.close()
    finally:
        mock.terminate()
        mock.wait(timeout=10)
