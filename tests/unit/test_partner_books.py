"""The sandbox partners' own books: one file several processes share. An operation one process
of a sandbox accepted is answered from the book by another — asked for its status, or asked
again with the same reference — and is never done twice; the book is where statements come
from; and the portal's upload limit lets a statement of the parser's largest size through."""

from __future__ import annotations

import datetime as dt
import tomllib

import httpx

from core.adapters.carrier import CarrierApi
from core.adapters.payouts import PayoutApi, PayoutStatus
from core.adapters.sandbox.books import PartnerBook
from core.adapters.sandbox.carrier import SandboxCarrier
from core.adapters.sandbox.payouts import SandboxPayouts
from core.domain.calendar import SHANGHAI
from core.domain.statements import MAX_STATEMENT_BYTES
from tests.support import ROOT

PHONE = "13800138000"
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI).timestamp()


def payouts(book: PartnerBook) -> SandboxPayouts:
    """One process's payout sandbox over the shared book (its own memory, its own clock)."""
    return SandboxPayouts(secret_for=lambda c: b"s", notifier=httpx.Client(), clock=lambda: NOW, settle_s=0, book=book)


def payout_api(sandbox: SandboxPayouts) -> PayoutApi:
    return PayoutApi(httpx.Client(transport=httpx.MockTransport(sandbox), base_url="http://p/alipay/"), "alipay")


def test_a_payout_one_process_made_is_answered_by_another_and_not_made_again(tmp_path):
    first, second = PartnerBook(tmp_path / "partners.sqlite3"), PartnerBook(tmp_path / "partners.sqlite3")
    one, other = payouts(first), payouts(second)
    payout_api(one).pay("rcv-1", 10_000, "me@example.com", "http://portal.test/notify")

    assert payout_api(other).status("rcv-1").status is PayoutStatus.PAID  # asked for its status
    again = payout_api(other).pay("rcv-1", 10_000, "me@example.com", "http://portal.test/notify")
    assert again.status is PayoutStatus.PAID and not other.records.get("alipay")  # answered, not paid twice
    request = httpx.Request(
        "POST",
        "http://p/alipay/payouts",
        headers={"Idempotency-Key": "rcv-1"},
        json={"reference": "rcv-1", "amount_fen": 9_999, "payee": "me@example.com", "notify_url": "http://x"},
    )
    assert other(request).status_code == 409  # the same reference for another amount
    day = dt.datetime.fromtimestamp(NOW, SHANGHAI).date()
    assert [r.reference for r in second.statement_rows("alipay", day, until=NOW)] == ["rcv-1"]


def test_a_debit_one_process_made_is_not_made_again_by_another(tmp_path):
    book = tmp_path / "partners.sqlite3"
    one = SandboxCarrier(balances={PHONE: 10_000}, book=PartnerBook(book), clock=lambda: NOW)
    other = SandboxCarrier(balances={PHONE: 10_000}, book=PartnerBook(book), clock=lambda: NOW)

    def api(sandbox: SandboxCarrier) -> CarrierApi:
        return CarrierApi(httpx.Client(transport=httpx.MockTransport(sandbox), base_url="http://c/"), timeout_s=5)

    api(one).debit("rcv-d", PHONE, 6_000)
    api(other).debit("rcv-d", PHONE, 6_000)
    assert other.balance_of(PHONE) == 10_000 and other.debits == {}  # the record answered


def test_a_balance_set_or_moved_outlives_the_process_and_a_refund_finds_an_earlier_processs_debit(tmp_path):
    """The demo sets balances in its own process and leaves cases in review: approved later by the
    portal's process, their debits found a balance made up from the number's digits and failed
    (and a debited balance came back after a restart). The book keeps balances, not numbers."""
    book = tmp_path / "partners.sqlite3"
    demo = SandboxCarrier(book=PartnerBook(book), clock=lambda: NOW)
    demo.set_balance(PHONE, 189_702)

    def api(sandbox: SandboxCarrier) -> CarrierApi:
        return CarrierApi(httpx.Client(transport=httpx.MockTransport(sandbox), base_url="http://c/"), timeout_s=5)

    portal = SandboxCarrier(book=PartnerBook(book), clock=lambda: NOW)  # a later process
    assert api(portal).debit("rcv-big", PHONE, 189_702).outcome.value == "done"
    restarted = SandboxCarrier(book=PartnerBook(book), clock=lambda: NOW)
    assert restarted.balance_of(PHONE) == 0
    assert api(restarted).refund("rcv-back", PHONE, 189_702, "rcv-big").outcome.value == "done"
    assert SandboxCarrier(book=PartnerBook(book), clock=lambda: NOW).balance_of(PHONE) == 189_702
    assert not [f.name for f in tmp_path.iterdir() if PHONE.encode() in f.read_bytes()]  # the WAL too


def test_the_upload_limit_lets_the_largest_statement_through():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] * 2**20 >= MAX_STATEMENT_BYTES
