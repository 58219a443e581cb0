"""The operators' console in a real browser, against the whole server (`app.py`) on a database of
its own: a 300 CNY recovery the amount rule sends to review and that takes two operators to
approve. The first operator signs in with a password, claims it and approves it; the page says a
second operator must agree; a second operator agrees; the consumer, signed in by SMS, sees it
paid (the server's embedded worker and sandbox payouts do the work). A consumer and an analyst
who open the console's addresses are told the page needs another role, and see nothing of it."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from core.domain.access import Principal
from core.domain.recovery import RecoveryState
from core.i18n import Translator
from core.phones import mask
from tests.support.browser import latest_code, staff_sign_in, warmed_portal

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The sandbox carrier in both processes (the test's and the server's) answers a balance derived
#: from the digits for a number nobody set up: 471.05 CNY for this one, enough for 300 CNY.
PHONE = "13800138000"
AMOUNT_FEN = 30_000
OTHER_PHONE = "13900139000"  # a consumer of their own (one SMS code a minute per number)
PASSWORD = "correct horse battery staple"
WAIT_MS = 30_000
CONSOLE = {"queue": "nav.queue", "recoveries": "nav.recoveries", "stuck": "nav.stuck"}
T = Translator("zh-CN")


@dataclass(frozen=True)
class Console:
    url: str
    recovery_id: str
    operators: tuple[str, str]
    analyst: str


def seed(env: dict[str, str]) -> tuple[str, tuple[str, str], str]:
    """Two operators, an analyst and a consumer's recovery in review, made from this process on
    the server's database with the server's keys."""
    from core.bootstrap import build
    from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
    from core.services.recovery.views import RecoveryRequest
    from core.simulation.rig import add_verified_consumer

    svc = build(refresh=False, env=env)
    tag = secrets.token_hex(3)
    operators = (f"op1-{tag}", f"op2-{tag}")
    analyst = f"analyst-{tag}"
    for name in operators:
        svc.identity.create_staff("operator", name, PASSWORD)
    svc.identity.create_staff("analyst", analyst, PASSWORD)
    who: Principal = add_verified_consumer(
        svc.engine,
        FieldCipher(svc.keys.data_key),
        BlindIndex(svc.keys.index_key, MOBILE_NUMBER),
        PHONE,
        dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
    )
    svc.agreements.accept(who, svc.agreements.current().version)
    view = svc.recoveries.submit(
        who, f"key-{secrets.token_hex(6)}", RecoveryRequest("alipay", PHONE, AMOUNT_FEN, "me@example.com")
    )
    assert view.state is RecoveryState.REVIEW, view.state
    svc.engine.dispose()
    return view.id, operators, analyst


@pytest.fixture(scope="module")
def console(browser, tmp_path_factory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("console")
    env = {
        "DATABASE_URL": f"sqlite:///{home / 'portal.sqlite3'}",
        "PORTAL_SECRETS_FILE": str(home / "secrets.json"),
        "FOUR_EYES_ABOVE_FEN": "20000",  # approving 300 CNY takes two operators ...
        "RISK_REVIEW_AMOUNT_FEN": "20000",  # ... and the amount rule sends it to review
    }
    with warmed_portal(browser, "app.py", **env) as url:
        recovery_id, operators, analyst = seed({**env, "PORTAL_URL": url})
        yield Console(url, recovery_id, operators, analyst)


def new_context(browser):
    return browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")


def operator_sign_in(context, url: str, username: str):
    return staff_sign_in(context, url, username, PASSWORD, timeout_ms=WAIT_MS)


def consumer_sign_in(context, url: str, phone: str):
    page = context.new_page()
    page.goto(f"{url}/sign-in")
    page.get_by_role("button", name=T("auth.sign_in")).click()
    page.wait_for_url(re.compile(r"/idp/authorize"), timeout=WAIT_MS)
    page.fill("#phone", phone)
    page.get_by_role("button", name=T("signin.send_code")).click()
    page.wait_for_selector(f"text={mask(phone)}", timeout=WAIT_MS)
    page.fill("#code", latest_code(context, url))
    page.get_by_role("button", name=T("signin.verify")).click()
    page.wait_for_selector(f"[data-testid=stSidebarNav] >> text={T('nav.my_recoveries')}", timeout=WAIT_MS)
    return page


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def test_two_operators_approve_a_case_in_review_and_the_consumer_sees_it_paid(browser, console):
    url, short = console.url, console.recovery_id[:8]
    first = new_context(browser)
    second = new_context(browser)
    consumer = new_context(browser)
    try:
        # Operator 1: the queue from the menu, claim, approve with a reason.
        page = operator_sign_in(first, url, console.operators[0])
        page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=T("nav.queue")).click()
        page.wait_for_url(re.compile(r"/queue"), timeout=WAIT_MS)
        page.get_by_text(short).wait_for(timeout=WAIT_MS)
        assert mask(PHONE) in main_text(page) and "¥300.00" in main_text(page)
        page.get_by_role("button", name=T("queue.claim"), exact=True).click()
        page.get_by_text(T("queue.claimed")).wait_for(timeout=WAIT_MS)
        reason = T("queue.approve_because", reason=T("queue.reason.history_explains"))
        page.locator("[data-testid=stSelectbox]").first.click()
        page.get_by_role("option", name=reason).click()
        page.locator("textarea").first.fill("called the owner")
        page.get_by_role("button", name=T("queue.decide"), exact=True).click()
        page.get_by_text(T("queue.sent_for_second")).wait_for(timeout=WAIT_MS)
        assert PHONE not in page.inner_text("body")

        # Operator 2: agrees to the request waiting for a second person.
        page = operator_sign_in(second, url, console.operators[1])
        page.goto(f"{url}/queue")
        page.get_by_text(T("queue.requests")).wait_for(timeout=WAIT_MS)
        assert "called the owner" in main_text(page) and console.operators[0] in main_text(page)
        page.get_by_role("button", name=T("queue.agree"), exact=True).click()
        page.get_by_text(T("queue.agreed")).wait_for(timeout=WAIT_MS)

        # The consumer: the verified number signs in to the same account, which sees it paid.
        page = consumer_sign_in(consumer, url, PHONE)
        page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=T("nav.my_recoveries")).click()
        page.get_by_text(T("mine.title")).first.wait_for(timeout=WAIT_MS)
        paid = T("mine.status", state=T("state.paid")).strip("*")
        page.get_by_text(paid).first.wait_for(timeout=WAIT_MS)  # live: the status is redrawn every 2 s
        assert "¥300.00" in main_text(page)
    finally:
        for context in (first, second, consumer):
            context.close()


@pytest.mark.parametrize("role", ["consumer", "analyst"])
def test_a_consumer_or_an_analyst_opening_the_console_is_told_it_needs_another_role(browser, console, role):
    context = new_context(browser)
    try:
        if role == "consumer":
            page = consumer_sign_in(context, console.url, OTHER_PHONE)
        else:
            page = operator_sign_in(context, console.url, console.analyst)
        for path, title in CONSOLE.items():
            page.goto(f"{console.url}/{path}")
            notice = T("access.needs_operator", page=T(title))
            page.get_by_text(notice).wait_for(timeout=WAIT_MS)
            shown = main_text(page)
            assert "Page not found" not in shown and "does not exist" not in shown
            assert mask(PHONE) not in shown and console.recovery_id[:8] not in shown
            assert page.locator("[data-testid=stDataFrame], [data-testid=stTable]").count() == 0
            assert page.get_by_role("button", name=T("queue.claim"), exact=True).count() == 0
    finally:
        context.close()
