"""Each role sees its pages; a hidden page is never the only guard (the services check too)."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from pages._ui.navigation import MENU_KEY
from tests.support.apptest import open_app, signed_in_as

OPERATOR_CONSOLE = ["审核队列", "回收记录", "卡住的回收", "运营指标", "黑名单", "对账", "审计日志", "账簿"]


def run_as(user: dict | None) -> AppTest:
    return open_app(user=user)


def nav_of(at: AppTest) -> list[str]:
    """The pages in the last run's menu, by title (hidden addresses that only explain what they
    need are registered too, but not in the menu)."""
    return list(at.session_state[MENU_KEY]) if MENU_KEY in at.session_state else []


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (None, ["比价", "计算方法", "登录", "沙箱短信"]),
        ("consumer", ["比价", "计算方法", "回收", "我的回收", "我的账户", "沙箱短信"]),
        ("operator", ["比价", "计算方法", *OPERATOR_CONSOLE, "我的账户", "沙箱短信"]),
        ("admin", ["比价", "计算方法", *OPERATOR_CONSOLE, "员工账户", "定价实验室", "我的账户", "沙箱短信"]),
        ("analyst", ["比价", "计算方法", "运营指标", "定价实验室", "我的账户", "沙箱短信"]),
    ],
)
def test_each_role_sees_its_pages(role, expected):
    at = run_as(signed_in_as(role) if role else None)
    assert not at.exception
    assert nav_of(at) == expected


def test_a_deleted_account_is_signed_out_even_with_a_valid_cookie():
    user = signed_in_as("consumer")
    identity = shared().identity
    from core.domain.access import Principal

    identity.delete_account(Principal(user["sub"], "consumer"), user["sub"], signed_in_at=user["auth_time"])
    at = run_as(user)
    assert not at.exception
    assert "我的账户" not in nav_of(at)


def test_a_sign_in_older_than_twelve_hours_is_ended():
    user = signed_in_as("consumer")
    at = run_as({**user, "auth_time": int(time.time()) - 13 * 3600})
    assert "我的账户" not in nav_of(at)


def test_the_account_page_shows_only_masked_numbers():
    user = signed_in_as("consumer")
    at = run_as(user)
    at.switch_page("pages/account.py").run()
    assert not at.exception
    shown = "\n".join(m.value for m in at.markdown)
    import re

    assert re.search(r"1\d\d\*\*\*\*\d{4}", shown)
    assert not re.search(r"1\d{10}", shown)


@pytest.mark.parametrize(("lang", "named"), [("en", "**User "), ("zh-CN", "**用户 ")])
def test_a_consumer_without_a_name_is_named_in_the_readers_language(lang, named):
    """The built-in provider names staff only (by user name); a consumer's name is the portal's."""
    user = {key: value for key, value in signed_in_as("consumer").items() if key != "name"}
    at = open_app(user=user, lang=lang)
    at.switch_page("pages/account.py").run()
    assert not at.exception
    profile = at.markdown[0].value
    assert profile.startswith(named + user["sub"][:4])
    assert ("用户" in profile) == (lang == "zh-CN")


def test_an_anonymous_visitor_cannot_open_the_account_page():
    at = run_as(None)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/account.py")  # the page's file is not registered at all ...
