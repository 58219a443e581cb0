"""Reconciliation in a real browser, against the whole server (`app.py`) on a database of its own
filled by `python -m core demo`: an operator uploads the sandbox Alipay statement of the day in
which one payout's amount was changed; the page names that break; the operator asks for a
correcting entry; a second operator agrees on the same page; the break is resolved and the
Books page says the balances still add up to zero."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from core.domain.calendar import SHANGHAI
from core.i18n import Translator
from core.persistence.db import engine_for
from core.persistence.tables import LedgerPosting
from tests.support.browser import staff_sign_in, warmed_portal
from tests.support.processes import run_core

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
WAIT_MS = 30_000
T = Translator("zh-CN")


@dataclass(frozen=True)
class Setting:
    url: str
    database_url: str
    statement: Path
    reference: str
    day: dt.date


@pytest.fixture(scope="module")
def setting(browser, tmp_path_factory) -> Iterator[Setting]:
    home = tmp_path_factory.mktemp("recon")
    env = {"DATABASE_URL": f"sqlite:///{home / 'portal.sqlite3'}", "PORTAL_SECRETS_FILE": str(home / "secrets.json")}
    run_core(env, "demo", "--recoveries", "40", "--days", "1", "--seed", "5")
    for name in ("op.one", "op.two"):
        run_core(env, "users", "create", "--role", "operator", "--username", name, stdin=PASSWORD + "\n")
    statement = home / "alipay.csv"
    # the demo's day of recoveries ends now: just after midnight in Shanghai, today's statement
    # holds few payouts or none, and yesterday's holds the rest — the first with a payout to change
    today = dt.datetime.now(SHANGHAI).date()
    for day in (today, today - dt.timedelta(days=1)):
        written = json.loads(
            run_core(
                env,
                "sandbox",
                "statement",
                "--partner",
                "alipay",
                "--date",
                day.isoformat(),
                "--out",
                str(statement),
                "--changed",
                "1",
                "--json",
            )
        )
        if written["broken"].get("changed"):
            break
    (reference,) = written["broken"]["changed"]
    with warmed_portal(browser, "app.py", **env) as url:
        yield Setting(url, env["DATABASE_URL"], statement, reference, day)


def sign_in(browser, url: str, username: str):
    context = browser.new_context(viewport={"width": 1366, "height": 2000}, locale="zh-CN")
    return context, staff_sign_in(context, url, username, PASSWORD, timeout_ms=WAIT_MS)


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def test_a_break_is_found_corrected_with_a_second_operator_and_the_books_still_balance(browser, setting):
    first, page = sign_in(browser, setting.url, "op.one")
    try:
        page.goto(f"{setting.url}/reconciliation")
        page.locator("[data-testid=stFileUploader]").wait_for(timeout=WAIT_MS)
        page.locator("[data-testid=stSelectbox]").first.click()
        page.get_by_role("option", name=T("recon.partner.alipay")).click()
        page.locator("input[type=file]").set_input_files(str(setting.statement))
        page.get_by_text(setting.statement.name).wait_for(timeout=WAIT_MS)
        page.get_by_role("button", name=T("recon.go")).click()
        page.get_by_text(T("recon.report", partner=T("recon.partner.alipay"), day=setting.day.isoformat())).wait_for(
            timeout=WAIT_MS
        )
        page.get_by_text(T("recon.open", count=1)).wait_for(timeout=WAIT_MS)  # that one break, and no other
        # (the tables are drawn on a canvas: the break is read from the list to resolve it by)
        page.locator("[data-testid=stSelectbox]").nth(1).click()
        page.get_by_role("option", name=f"{T('break.amount_mismatch')} · {setting.reference}").click()
        page.get_by_text(T("recon.how.correct")).click()
        page.locator("[data-testid=stTextInput] input").last.fill("the partner's statement is right")
        page.get_by_role("button", name=T("recon.submit")).click()
        page.get_by_text(T("recon.asked")).wait_for(timeout=WAIT_MS)
    finally:
        first.close()

    second, page = sign_in(browser, setting.url, "op.two")
    try:
        page.goto(f"{setting.url}/reconciliation")
        page.get_by_role("button", name=T("recon.agree")).wait_for(timeout=WAIT_MS)
        assert "the partner's statement is right" in main_text(page)
        page.get_by_role("button", name=T("recon.agree")).click()
        page.get_by_text(T("recon.corrected")).wait_for(timeout=WAIT_MS)
        page.get_by_text(T("recon.none_open")).wait_for(timeout=WAIT_MS)  # the one break is resolved

        page.goto(f"{setting.url}/books")
        page.get_by_text(T("books.total_zero")).wait_for(timeout=WAIT_MS)
    finally:
        second.close()
    # the server's own books: one correcting entry on the partner's account, nothing edited
    engine = engine_for(setting.database_url)
    with engine.connect() as conn:
        corrections = conn.execute(
            select(LedgerPosting.account, LedgerPosting.amount_fen).where(LedgerPosting.event == "correction")
        ).all()
        total = conn.execute(select(func.sum(LedgerPosting.amount_fen))).scalar_one()
    engine.dispose()
    assert sorted(a for a, _ in corrections) == ["payouts_settled", "reconciliation_differences"]
    assert sum(fen for _, fen in corrections) == 0 and total == 0
