"""A page one may not open, opened by its address in a real browser: it says in the reader's
language what it needs (to sign in, or another kind of account), never Streamlit's English
"Page not found", and shows nothing of the page. Run against the whole server (`app.py`) from
a fresh start, because the first request after a start is where Streamlit's older file-per-page
routing used to run a page without the frame."""

from __future__ import annotations

import pytest

from core.i18n import Translator
from tests.support.processes import running_portal

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server():
    with running_portal("app.py") as url:
        yield url


@pytest.mark.parametrize(
    ("path", "title", "language"),
    [
        ("recover", "nav.recover", "zh-CN"),
        ("my-recoveries", "nav.my_recoveries", "en"),
        ("account", "nav.account", "zh-CN"),
    ],
)
def test_a_signed_out_visitor_opening_a_members_page_is_asked_to_sign_in(browser, server, path, title, language):
    t = Translator(language)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = context.new_page()
    page.goto(f"{server}/{path}?lang={language}")
    notice = t("access.needs_sign_in", page=t(title))
    page.get_by_text(notice).wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert "Page not found" not in body and "does not exist" not in body
    assert t("nav.sign_in") in body  # the way to sign in is on the page
    assert page.locator("[data-testid='stDataFrame'], [data-testid='stTable'], input").count() == 0
    context.close()
