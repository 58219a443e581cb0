"""Operators search every recovery on SQLite and PostgreSQL: by id, partner reference, full number
(by its blind index), state, channel, carrier, amount and date; page through them newest first;
read one's whole record; export what the filters select with masked numbers only, audited."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlmodel import select

from core.domain.access import NotAllowed, Principal, Role
from core.domain.recovery import RecoveryState
from core.errors import InputError
from core.persistence.tables import AuditRecord
from core.persistence.uow import UnitOfWork
from core.services.console.recoveries import Cursor, RecoveryFilter
from core.services.recovery.views import UnknownRecovery
from core.services.recovery_worker import reference
from tests.support.portal import in_review

S = RecoveryState


@pytest.fixture
def history(portal):
    """Three consumers' recoveries on three days: two paid (200 and 150 CNY), one in review (1,200 CNY)."""
    alice = portal.consumer(1, balance_fen=20_000)
    paid_a = portal.recover(alice)
    portal.advance(days=1)
    bob = portal.consumer(2, balance_fen=15_000)
    paid_b = portal.recover(bob)
    portal.advance(days=1)
    carol, waiting = in_review(portal, 3)
    portal.drain()
    return portal, {"alice": (alice, paid_a), "bob": (bob, paid_b), "carol": (carol, waiting)}


def ids(page) -> list[str]:
    return [v.id for v in page.views]


def test_filters_narrow_the_search_and_newest_come_first(history):
    portal, people = history
    op = portal.operator("op.search")
    a, b, c = (people[k][1].id for k in ("alice", "bob", "carol"))
    search = portal.search.search

    assert ids(search(op, RecoveryFilter())) == [c, b, a]
    assert ids(search(op, RecoveryFilter(state="paid"))) == [b, a]
    assert ids(search(op, RecoveryFilter(state="review"))) == [c]
    assert ids(search(op, RecoveryFilter(min_fen=15_000, max_fen=20_000))) == [b, a]
    assert ids(search(op, RecoveryFilter(min_fen=100_000))) == [c]
    assert ids(search(op, RecoveryFilter(recovery_id=a[:8]))) == [a]
    assert ids(search(op, RecoveryFilter(reference=reference(a, "payout")))) == [a]
    assert ids(search(op, RecoveryFilter(channel="alipay", carrier="china_mobile"))) == [c, b, a]
    assert ids(search(op, RecoveryFilter(carrier="china_telecom"))) == []
    first_day = people["alice"][1].created_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    assert ids(search(op, RecoveryFilter(date_from=first_day, date_to=first_day))) == [a]


def test_a_full_number_is_found_by_its_blind_index_and_never_travels(history):
    portal, people = history
    op = portal.operator("op.number")
    bob, view = people["bob"]
    index = portal.search.number_index(op, bob.phone)
    assert bob.phone not in index and len(index) == 64
    assert ids(portal.search.search(op, RecoveryFilter(number_index=index))) == [view.id]


def test_pages_follow_one_another_without_gaps_or_repeats(history):
    portal, _ = history
    op = portal.operator("op.pages")
    everything = ids(portal.search.search(op, RecoveryFilter()))
    seen, after = [], None
    while True:
        page = portal.search.search(op, RecoveryFilter(), after=after, limit=1)
        seen += ids(page)
        if page.next is None:
            break
        after = page.next
    assert seen == everything


@pytest.mark.parametrize(
    "bad",
    [
        RecoveryFilter(recovery_id="abc"),
        RecoveryFilter(reference="not-ours"),
        RecoveryFilter(min_fen=500, max_fen=100),
        RecoveryFilter(date_from=dt.date(2026, 11, 20), date_to=dt.date(2026, 11, 1)),
    ],
)
def test_unusable_filters_are_refused_with_a_message(history, bad):
    portal, _ = history
    with pytest.raises(InputError):
        portal.search.search(portal.operator("op.bad"), bad)


@pytest.mark.parametrize(
    ("at", "group_id"),
    [
        (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=59))), "zzzz"),
        (dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=23, minutes=59))), "a"),
        (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC), "00000000-0000-0000-0000-000000000000"),
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), "00000000-0000-0000-0000-000000000000"),
        (dt.datetime(2026, 11, 18, tzinfo=dt.UTC), "x' OR 1=1 --"),
        (dt.datetime(2026, 11, 18), "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_a_place_in_the_results_that_cannot_be_one_is_refused_with_a_message(history, at, group_id):
    """A moment with no UTC time overflowed binding it (an OverflowError, not a message)."""
    portal, _ = history
    with pytest.raises(InputError) as refused:
        portal.search.search(portal.operator("op.cursor"), RecoveryFilter(), after=Cursor(at, group_id))
    assert refused.value.key == "error.search.cursor"


def test_the_detail_holds_parts_timeline_ledger_audit_and_partner_calls(history):
    portal, people = history
    op = portal.operator("op.detail")
    _, view = people["alice"]
    detail = portal.search.detail(op, view.id)
    assert detail.view.state is S.PAID and detail.carrier == "china_mobile"
    assert [s.state for s in detail.steps][-1] is S.PAID
    assert sum(p.amount_fen for p in detail.postings) == 0 and detail.postings
    assert {"submit", "payout_confirmed"} <= {a.action for a in detail.audit}
    assert {c.kind for c in detail.calls} == {"carrier_debit", "payout"} and all(c.done_at for c in detail.calls)


def test_the_export_has_masked_numbers_only_and_is_audited(history):
    portal, people = history
    op = portal.operator("op.export")
    alice, _ = people["alice"]
    text = portal.search.export_csv(op, RecoveryFilter(number_index=portal.search.number_index(op, alice.phone)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1 and rows[0]["number"] == alice.phone[:3] + "****" + alice.phone[-4:]
    assert alice.phone not in text
    with UnitOfWork(portal.engine) as uow:
        (record,) = uow.session.exec(select(AuditRecord).where(AuditRecord.action == "recoveries.export")).all()
    assert record.actor == op.user_id and alice.phone not in record.detail and "given" in record.detail


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.ANALYST])
def test_only_operators_search_read_and_export(history, role):
    portal, people = history
    someone = Principal(people["alice"][0].user_id, role)
    view = people["bob"][1]
    for call in (
        lambda: portal.search.search(someone, RecoveryFilter()),
        lambda: portal.search.detail(someone, view.id),
        lambda: portal.search.export_csv(someone, RecoveryFilter()),
        lambda: portal.search.number_index(someone, people["bob"][0].phone),
    ):
        with pytest.raises(NotAllowed):
            call()


@pytest.mark.parametrize("typed", ["abc", "x" * 36, "\x00" * 36, "'; drop table recoveries; --"])
def test_a_recovery_address_typed_by_hand_is_no_such_recovery(history, typed):
    portal, _ = history
    with pytest.raises(UnknownRecovery):
        portal.search.detail(portal.operator("op.typed"), typed)
