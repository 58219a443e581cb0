"""The recovery engine on SQLite and PostgreSQL, against its sandbox partners in-process on a
simulated clock: idempotent submission under concurrency, limits and permissions, every state
change committed with its transition, ledger entry, audit record and outbox message, and the
worker and partner notifications settling each recovery exactly once, faults included.

Numbers never appear in full in an assertion: helpers hand back counts, amounts and references,
never the sandbox records (which carry the number)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

from core.adapters.payouts import sign
from core.config import Settings
from core.domain.access import NotAllowed, Principal
from core.domain.limits import LimitExceeded, PortalLimits, plan_parts
from core.domain.recovery import IllegalTransition, RecoveryEvent, RecoveryState
from core.persistence.tables import AuditRecord, OutboxMessage, Recovery, RecoveryTransition, User
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.reference_data import load_catalog
from core.services.audit import verify_audit_chain
from core.services.recovery.submission import IdempotencyConflict, SubmissionInFlight
from core.services.recovery.views import RecoveryRequest, RecoveryView, UnknownRecovery
from core.services.recovery_worker import reference
from core.simulation.invariants import check_invariants
from core.simulation.rig import Rig, SimClock, build_rig
from tests.support.db import all_rows, count, ledger, snapshot
from tests.support.outbox import drain
from tests.support.people import mobile

S, E = RecoveryState, RecoveryEvent
CATALOG = load_catalog(Settings().data_dir / "channels.json")
CHANNEL = "alipay"  # 10 CNY minimum, 500 CNY per transaction, tiered fee with a 0.50 CNY floor
ALIPAY = CATALOG.by_id()[CHANNEL]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def make_rig(engine, sim_clock) -> Callable[..., Rig]:
    def make(**options: Any) -> Rig:
        return build_rig(engine, CATALOG, clock=sim_clock, seconds=sim_clock.seconds, **options)

    return make


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


# --- helpers ------------------------------------------------------------------------------------


def consumer(rig: Rig, n: int, balance_fen: int = 1_000_000) -> tuple[Principal, str]:
    """A consumer who verified the n-th test number, whose carrier balance is `balance_fen`."""
    phone = mobile(n)
    principal = rig.consumer(phone)
    rig.carrier.balances[phone] = balance_fen
    return principal, phone


def balance(rig: Rig, phone: str) -> int:
    return rig.carrier.balances[phone]


def state_of(engine, recovery_id: str) -> RecoveryState:
    with UnitOfWork(engine) as uow:
        row = uow.session.get(Recovery, recovery_id)
        assert row is not None
        return RecoveryState(row.state)


def done_debits(rig: Rig) -> list[tuple[str, int, int]]:
    """(reference, amount, later requests with the same key) of every debit the carrier made."""
    return sorted((d.reference, d.amount_fen, d.replays) for d in rig.carrier.debits.values() if d.status == "done")


def done_refunds(rig: Rig) -> list[tuple[str, int, str]]:
    return sorted(
        (r.reference, r.amount_fen, r.debit_reference) for r in rig.carrier.refunds.values() if r.status == "done"
    )


def payouts(rig: Rig) -> list[tuple[str, int, str, int]]:
    """(reference, amount, final status, replays) of every payout the partners accepted."""
    return sorted(
        (p.reference, p.amount_fen, p.final, p.replays) for book in rig.payouts.records.values() for p in book.values()
    )


def request(
    phone: str, amount_fen: int = 5_000, payee: str = "wallet-0001@example.com", channel: str = CHANNEL
) -> RecoveryRequest:
    return RecoveryRequest(channel, phone, amount_fen, payee)


def only_for(path: str, hook: Callable[[httpx.Request], Any]) -> Callable[[httpx.Request], Any]:
    """A sandbox fault hook that only fires for POSTs to `path` (a lookup is a POST too)."""

    def filtered(http_request: httpx.Request) -> Any:
        if http_request.method == "POST" and http_request.url.path == path:
            return hook(http_request)
        return None

    return filtered


# --- idempotent submission ---------------------------------------------------------------------


@pytest.mark.slow  # 4-8 s a database
def test_200_keys_submitted_8_times_at_once_make_200_recoveries_each_debited_and_paid_once(engine, rig, sim_clock):
    opening_fen = 10_000_000
    alice, phone = consumer(rig, 1, opening_fen)
    asked = request(phone, 1_000)
    keys = [f"parallel-{i:04d}" for i in range(200)]
    jobs = [key for key in keys for _ in range(8)]  # the 8 copies of a key run side by side

    def submit(key: str) -> RecoveryView | SubmissionInFlight:
        try:
            return rig.recoveries.submit(alice, key, asked)
        except SubmissionInFlight as refused:
            return refused

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(submit, jobs))

    by_key: dict[str, list[RecoveryView | SubmissionInFlight]] = defaultdict(list)
    for key, outcome in zip(jobs, outcomes, strict=True):
        by_key[key].append(outcome)
    refused = 0
    for key, results in by_key.items():
        views = [r for r in results if isinstance(r, RecoveryView)]
        created = [v for v in views if v.created]
        assert len(created) == 1, key
        first = created[0]
        # every duplicate got the first result (same recovery, same transactions) or was refused
        assert {(v.id, tuple(p.id for p in v.parts)) for v in views} == {(first.id, tuple(p.id for p in first.parts))}
        refused += len(results) - len(views)
    if engine.dialect.name == "sqlite":
        assert refused == 0  # SQLite writes one at a time: a duplicate always sees the first

    with UnitOfWork(engine) as uow:
        groups = uow.session.exec(select(func.count(func.distinct(Recovery.group_id)))).one()
        keys_used = uow.session.exec(select(func.count(func.distinct(Recovery.idempotency_key)))).one()
    assert (groups, keys_used, count(engine, Recovery)) == (200, 200, 200)

    drain(rig, sim_clock)

    rows = all_rows(engine, Recovery)
    assert {RecoveryState(r.state) for r in rows} == {S.PAID}
    debits = done_debits(rig)
    assert len(debits) == 200
    assert {ref for ref, _, _ in debits} == {reference(r.id, "carrier_debit") for r in rows}
    assert {(amount, replays) for _, amount, replays in debits} == {(1_000, 0)}  # no double debit, no re-POST
    assert len(payouts(rig)) == 200
    left = balance(rig, phone)
    assert left == opening_fen - 200 * 1_000
    assert check_invariants(rig, {phone: opening_fen}) == []


def test_the_same_key_with_another_request_is_refused_and_writes_nothing(engine, rig):
    alice, phone = consumer(rig, 1)
    first = rig.recoveries.submit(alice, "same-key-0001", request(phone, 5_000))
    before = snapshot(engine)
    for other in (
        request(phone, 6_000),
        request(phone, 5_000, payee="wallet-0002@example.com"),
        request(phone, 5_000, channel="wechat_pay"),
    ):
        with pytest.raises(IdempotencyConflict):
            rig.recoveries.submit(alice, "same-key-0001", other)
    assert snapshot(engine) == before
    again = rig.recoveries.submit(alice, "  same-key-0001 ", request(phone, 5_000))  # the key is trimmed
    assert (again.id, again.created) == (first.id, False)
    assert snapshot(engine) == before


def test_keys_are_scoped_to_the_user(engine, rig):
    alice, alice_phone = consumer(rig, 1)
    bob, bob_phone = consumer(rig, 2)
    mine = rig.recoveries.submit(alice, "shared-key-01", request(alice_phone, 5_000))
    theirs = rig.recoveries.submit(bob, "shared-key-01", request(bob_phone, 5_000))
    assert mine.created and theirs.created and mine.id != theirs.id
    assert (mine.user_id, theirs.user_id) == (alice.user_id, bob.user_id)
    assert rig.recoveries.submit(alice, "shared-key-01", request(alice_phone, 5_000)).id == mine.id
    assert rig.recoveries.submit(bob, "shared-key-01", request(bob_phone, 5_000)).id == theirs.id
    assert count(engine, Recovery) == 2


# --- a recovery's life -------------------------------------------------------------------------


def test_a_full_recovery_records_every_transition_balances_every_entry_and_debits_exactly_the_amount(
    engine, rig, sim_clock
):
    opening_fen, amount = 100_000, 20_000
    alice, phone = consumer(rig, 1, opening_fen)
    (part,) = plan_parts(ALIPAY, amount)
    view = rig.recoveries.submit(alice, "full-0000001", request(phone, amount))
    assert (view.created, view.state, view.amount_fen, view.fee_fen) == (True, S.DEBITING, amount, part.fee_fen)
    assert view.masked_number == parse_mobile(phone).masked

    drain(rig, sim_clock)

    view = rig.recoveries.get(alice, view.id)
    assert (view.state, view.settled) == (S.PAID, True)
    transitions = {
        (t.before, t.after, t.event, t.actor, t.reason)
        for t in all_rows(engine, RecoveryTransition, RecoveryTransition.recovery_id == view.id)
    }
    assert transitions == {
        ("created", "approved", "approve", "engine", "within limits"),
        ("approved", "debiting", "start_debit", "engine", "approved"),
        ("debiting", "debited", "debit_confirmed", "engine", "debited"),
        ("debited", "paying", "start_payout", "engine", "debited"),
        ("paying", "paid", "payout_confirmed", "engine", "paid"),
    }
    entries, accounts = ledger(engine)
    assert len(entries) == 3 and set(entries.values()) == {0}  # debit, payout started, payout settled
    assert {a: v for a, v in accounts.items() if v} == {
        "carrier_receivable": amount,
        "fee_revenue": -part.fee_fen,
        "payouts_settled": -(amount - part.fee_fen),
    }
    messages = all_rows(engine, OutboxMessage)
    assert sorted(m.kind for m in messages) == ["carrier_debit", "payout"]
    assert all(m.done_at is not None for m in messages)
    records = sorted(all_rows(engine, AuditRecord), key=lambda r: r.seq)
    assert [(r.actor, r.action) for r in records[:1]] == [(alice.user_id, "submit")]
    assert verify_audit_chain(engine) == (6, None)  # the submission and its five moves
    assert done_debits(rig) == [(reference(view.id, "carrier_debit"), amount, 0)]
    assert payouts(rig) == [(reference(view.id, "payout"), amount - part.fee_fen, "paid", 0)]
    left = balance(rig, phone)
    assert left == opening_fen - amount
    assert check_invariants(rig, {phone: opening_fen}) == []


def test_a_payout_refused_for_good_ends_refunded_with_the_balance_restored(engine, rig, sim_clock):
    opening_fen = 50_000
    alice, phone = consumer(rig, 1, opening_fen)
    rig.payouts.reject_rate = 1.0
    view = rig.recoveries.submit(alice, "refused-00001", request(phone, 10_000))

    drain(rig, sim_clock)

    (part,) = rig.recoveries.get(alice, view.id).parts
    assert (part.state, part.reason) == (S.REFUNDED, "payee_rejected")
    debit_ref = reference(view.id, "carrier_debit")
    assert done_debits(rig) == [(debit_ref, 10_000, 0)]
    assert done_refunds(rig) == [(reference(view.id, "carrier_refund"), 10_000, debit_ref)]
    assert payouts(rig) == []  # nothing was paid
    left = balance(rig, phone)
    assert left == opening_fen
    entries, accounts = ledger(engine)
    assert set(entries.values()) == {0}
    assert {a: v for a, v in accounts.items() if v} == {"carrier_receivable": 10_000, "refunds_to_carrier": -10_000}
    assert check_invariants(rig, {phone: opening_fen}) == []


def test_a_debit_that_timed_out_after_taking_effect_is_confirmed_by_status_not_made_twice(
    engine, rig, sim_clock, monkeypatch
):
    opening_fen = 50_000
    alice, phone = consumer(rig, 1, opening_fen)
    view = rig.recoveries.submit(alice, "timeout-done-1", request(phone, 10_000))
    faults = rig.carrier.faults
    monkeypatch.setattr(faults, "after", only_for("/debits", faults.after))
    faults.timeout_done_rate = 1.0

    worker = rig.worker()
    assert worker.run_once()  # the debit: done by the carrier, a timeout for us
    faults.timeout_done_rate = 0.0
    assert state_of(engine, view.id) is S.DEBITING
    ref = reference(view.id, "carrier_debit")
    assert done_debits(rig) == [(ref, 10_000, 0)]
    (message,) = all_rows(engine, OutboxMessage)
    assert (message.kind, message.attempts, message.done_at) == ("carrier_debit", 1, None)
    assert "timed out" in message.last_error

    drain(rig, sim_clock)

    assert state_of(engine, view.id) is S.PAID
    assert done_debits(rig) == [(ref, 10_000, 0)]  # asked for status: no second POST, no second debit
    left = balance(rig, phone)
    assert left == opening_fen - 10_000
    (debit_message,) = all_rows(engine, OutboxMessage, OutboxMessage.kind == "carrier_debit")
    assert debit_message.attempts == 2
    assert check_invariants(rig, {phone: opening_fen}) == []


def test_a_debit_that_timed_out_before_taking_effect_is_made_once_after_status_says_unknown(
    engine, rig, sim_clock, monkeypatch
):
    opening_fen = 50_000
    alice, phone = consumer(rig, 1, opening_fen)
    view = rig.recoveries.submit(alice, "timeout-lost-1", request(phone, 10_000))
    faults = rig.carrier.faults
    monkeypatch.setattr(faults, "before", only_for("/debits", faults.before))
    faults.timeout_lost_rate = 1.0

    assert rig.worker().run_once()  # the debit request is lost on the way
    faults.timeout_lost_rate = 0.0
    ref = reference(view.id, "carrier_debit")
    assert state_of(engine, view.id) is S.DEBITING
    assert done_debits(rig) == []
    assert rig.carrier_api.debit_status(ref) is None  # the carrier never saw it
    left = balance(rig, phone)
    assert left == opening_fen

    drain(rig, sim_clock)

    assert state_of(engine, view.id) is S.PAID
    assert done_debits(rig) == [(ref, 10_000, 0)]
    left = balance(rig, phone)
    assert left == opening_fen - 10_000
    assert check_invariants(rig, {phone: opening_fen}) == []


def test_an_amount_above_the_channels_per_transaction_limit_becomes_linked_transactions_each_paid_once(
    engine, rig, sim_clock
):
    opening_fen, amount = 500_000, 120_000  # alipay: at most 500 CNY a transaction
    alice, phone = consumer(rig, 1, opening_fen)
    plan = plan_parts(ALIPAY, amount)
    assert [p.debit_fen for p in plan] == [50_000, 50_000, 20_000]
    view = rig.recoveries.submit(alice, "linked-000001", request(phone, amount))
    assert [(p.part, p.debit_fen, p.fee_fen) for p in view.parts] == [
        (i, p.debit_fen, p.fee_fen) for i, p in enumerate(plan, start=1)
    ]
    assert view.parts[0].id == view.id and len({p.id for p in view.parts}) == 3
    rows = all_rows(engine, Recovery)
    assert {(r.group_id, r.parts) for r in rows} == {(view.id, 3)}

    drain(rig, sim_clock)

    view = rig.recoveries.get(alice, view.id)
    assert {p.state for p in view.parts} == {S.PAID} and view.amount_fen == amount
    assert done_debits(rig) == sorted((reference(p.id, "carrier_debit"), p.debit_fen, 0) for p in view.parts)
    assert payouts(rig) == sorted((reference(p.id, "payout"), p.debit_fen - p.fee_fen, "paid", 0) for p in view.parts)
    left = balance(rig, phone)
    assert left == opening_fen - amount
    assert [v.id for v in rig.recoveries.list_for(alice)] == [view.id]  # one recovery to its owner
    assert check_invariants(rig, {phone: opening_fen}) == []


def test_a_linked_recovery_shows_the_state_of_its_least_advanced_part(engine, rig):
    alice, phone = consumer(rig, 1, 500_000)
    view = rig.recoveries.submit(alice, "linked-state-1", request(phone, 120_000))
    assert rig.worker().run_once()  # the first part's debit: it moves on to paying
    view = rig.recoveries.get(alice, view.id)
    if [p.state for p in view.parts] != [S.PAYING, S.DEBITING, S.DEBITING]:
        pytest.fail("precondition: only the first part was debited")
    assert view.state is S.DEBITING  # two parts are not even debited yet


# --- limits and permissions ---------------------------------------------------------------------


def test_limits_refuse_what_would_pass_them_and_write_nothing(engine, make_rig, sim_clock):
    rig = make_rig(limits=PortalLimits(per_recovery_fen=6_000, per_day_fen=8_000, per_month_fen=20_000))
    alice, phone = consumer(rig, 1)
    rig.recoveries.submit(alice, "limits-000001", request(phone, 5_000))
    before = snapshot(engine)

    with pytest.raises(LimitExceeded) as over_day:
        rig.recoveries.submit(alice, "limits-000002", request(phone, 5_000))
    assert over_day.value.key == "error.recovery.limit.user_day"
    assert over_day.value.params == {"limit_fen": 8_000, "left_fen": 3_000}
    with pytest.raises(LimitExceeded) as over_recovery:
        rig.recoveries.submit(alice, "limits-000003", request(phone, 7_000))
    assert over_recovery.value.key == "error.recovery.limit.per_recovery"
    with pytest.raises(LimitExceeded) as below_minimum:
        rig.recoveries.submit(alice, "limits-000004", request(phone, 900))  # alipay takes 10 CNY at least
    assert below_minimum.value.key == "error.recovery.below_minimum"
    assert snapshot(engine) == before

    # What is left today still fits; the refused key can be used again for it.
    assert rig.recoveries.submit(alice, "limits-000002", request(phone, 3_000)).created
    # The day is Shanghai's: still the 18th at 23:59 there, the 19th one minute later.
    sim_clock.advance_to(dt.datetime(2026, 11, 18, 15, 59, tzinfo=dt.UTC))
    with pytest.raises(LimitExceeded):
        rig.recoveries.submit(alice, "limits-000005", request(phone, 5_000))
    sim_clock.advance_to(dt.datetime(2026, 11, 18, 16, 0, tzinfo=dt.UTC))
    assert rig.recoveries.submit(alice, "limits-000005", request(phone, 5_000)).created


def test_limits_hold_when_submissions_race(engine, make_rig):
    rig = make_rig(limits=PortalLimits(per_recovery_fen=10_000, per_day_fen=5_000, per_month_fen=100_000))
    alice, phone = consumer(rig, 1)

    def submit(i: int) -> RecoveryView | LimitExceeded:
        try:
            return rig.recoveries.submit(alice, f"race-{i:06d}", request(phone, 1_000))
        except LimitExceeded as refused:
            return refused

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(submit, range(16)))
    created = [o for o in outcomes if isinstance(o, RecoveryView)]
    refused = {o.key for o in outcomes if isinstance(o, LimitExceeded)}
    assert (len(created), refused) == (5, {"error.recovery.limit.user_day"})
    assert sum(r.debit_fen for r in all_rows(engine, Recovery)) == 5_000


def test_a_recovery_for_a_number_the_user_has_not_verified_is_refused(engine, rig):
    alice, _ = consumer(rig, 1)
    _, bobs_phone = consumer(rig, 2)
    before = snapshot(engine)
    for phone in (bobs_phone, mobile(3)):  # someone else's number, and nobody's
        with pytest.raises(NotAllowed) as refused:
            rig.recoveries.submit(alice, "unverified-01", request(phone, 5_000))
        assert refused.value.key == "error.recovery.number_not_verified"
    assert snapshot(engine) == before


def test_who_may_do_what(engine, rig):
    alice, alice_phone = consumer(rig, 1)
    bob, _ = consumer(rig, 2)
    view = rig.recoveries.submit(alice, "permissions-1", request(alice_phone, 5_000))
    before = snapshot(engine)

    with pytest.raises(NotAllowed):  # only staff decide on a recovery
        rig.recoveries.review(alice, view.id, approve=True, reason="approve my own", operator="alice")
    assert not hasattr(rig.recoveries, "apply")  # no side door: review, cancel and settle are the only moves
    with pytest.raises(NotAllowed):  # staff do not submit on a consumer's behalf
        rig.recoveries.submit(Principal(alice.user_id, "operator"), "permissions-2", request(alice_phone, 5_000))
    with pytest.raises(UnknownRecovery):  # another's recovery is not even confirmed to exist
        rig.recoveries.get(bob, view.id)
    with pytest.raises(UnknownRecovery):
        rig.recoveries.cancel(bob, view.id)
    with pytest.raises(NotAllowed):
        rig.recoveries.list_for(bob, alice.user_id)
    assert rig.recoveries.list_for(bob) == []
    assert snapshot(engine) == before

    with UnitOfWork(engine) as uow:
        operator_user = User(role="operator", username="operator-1")
        uow.session.add(operator_user)
        uow.commit()
    operator = Principal(operator_user.id, "operator")
    before = snapshot(engine)
    assert rig.recoveries.get(operator, view.id).id == view.id  # staff see any recovery
    for approve in (True, False):  # it is already debiting: nothing to decide
        with pytest.raises(IllegalTransition):
            rig.recoveries.review(operator, view.id, approve=approve, reason="by hand", operator="op")
    with pytest.raises(UnknownRecovery):  # a consumer's cancel is the consumer's
        rig.recoveries.cancel(operator, view.id)
    assert snapshot(engine) == before
    assert state_of(engine, view.id) is S.DEBITING
    assert verify_audit_chain(engine) == (before["audit_records"], None)


# --- partner notifications ----------------------------------------------------------------------


SECRET = b"sim-secret:" + CHANNEL.encode()  # the rig's signing secret for the channel


def notice_body(ref: str, amount_fen: int, status: str = "paid") -> bytes:
    """A notification as `SandboxPayouts.deliver_due` posts it."""
    payload = {"event_id": f"evt-{ref}", "reference": ref, "status": status, "amount_fen": amount_fen, "reason": ""}
    return json.dumps(payload, sort_keys=True).encode()


def paying(rig: Rig, engine, n: int, amount: int = 10_000) -> tuple[Principal, str, RecoveryView]:
    """A recovery whose payout the partner has accepted and is still processing."""
    rig.payouts.settle_s = 3_600.0
    alice, phone = consumer(rig, n)
    view = rig.recoveries.submit(alice, f"notice-{n:06d}", request(phone, amount))
    rig.worker().run_until_idle()
    assert state_of(engine, view.id) is S.PAYING
    return alice, phone, view


def test_a_signed_paid_notice_settles_a_paying_recovery_and_a_duplicate_changes_nothing(engine, rig, sim_clock):
    _, phone, view = paying(rig, engine, 1)
    (part,) = view.parts
    ref = reference(view.id, "payout")
    body = notice_body(ref, part.debit_fen - part.fee_fen)
    signature = sign(SECRET, body, int(sim_clock.seconds()))

    answer = rig.notices.receive(CHANNEL, body, signature)
    assert (answer.status_code, answer.body) == (200, {"accepted": True, "applied": True})
    assert state_of(engine, view.id) is S.PAID
    (confirmed,) = all_rows(engine, RecoveryTransition, RecoveryTransition.event == "payout_confirmed")
    assert (confirmed.actor, confirmed.reason) == (f"partner:{CHANNEL}", "paid")
    assert all(m.done_at is not None for m in all_rows(engine, OutboxMessage))  # the worker stops asking
    (notice_record,) = all_rows(engine, AuditRecord, AuditRecord.action == "partner_notice")
    assert json.loads(notice_record.detail) == {"event_id": f"evt-{ref}", "status": "paid"}

    before = snapshot(engine)
    again = rig.notices.receive(CHANNEL, body, signature)
    assert (again.status_code, again.body) == (200, {"accepted": True, "applied": False})
    assert snapshot(engine) == before

    # The worker, and the partner's own notice once the payout settles, change nothing either.
    sim_clock.advance_to(sim_clock.now + dt.timedelta(hours=2))
    assert rig.worker().run_until_idle() == 0
    assert rig.payouts.deliver_due() == 1
    assert snapshot(engine) == before
    assert verify_audit_chain(engine) == (before["audit_records"], None)
    assert check_invariants(rig, {phone: 1_000_000}) == []


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body, now: None, id="no-signature"),
        pytest.param(lambda body, now: "", id="empty"),
        pytest.param(lambda body, now: "garbage", id="garbage"),
        pytest.param(lambda body, now: sign(b"another-secret", body, now), id="wrong-secret"),
        pytest.param(lambda body, now: sign(SECRET, body + b" ", now), id="other-body"),
        pytest.param(lambda body, now: sign(SECRET, body, now - 2 * 86_400), id="two-days-old"),
        pytest.param(lambda body, now: sign(SECRET, body, now).replace("t=", "t=1"), id="other-timestamp"),
    ],
)
def test_a_notice_with_a_bad_signature_is_refused_with_401_and_changes_nothing(engine, rig, sim_clock, forge):
    _, _, view = paying(rig, engine, 1)
    (part,) = view.parts
    body = notice_body(reference(view.id, "payout"), part.debit_fen - part.fee_fen)
    before = snapshot(engine)
    answer = rig.notices.receive(CHANNEL, body, forge(body, int(sim_clock.seconds())))
    assert answer.status_code == 401
    assert snapshot(engine) == before
    assert state_of(engine, view.id) is S.PAYING


@pytest.mark.parametrize("header", ["t=\u00b2,v1=00", "t={now},v1=\u00e9"], ids=["superscript-t", "non-ascii-v1"])
def test_a_malformed_non_ascii_signature_header_is_refused_with_401_not_a_crash(engine, rig, sim_clock, header):
    # Starlette decodes header bytes as latin-1, so any partner (or anyone) can send these.
    _, _, view = paying(rig, engine, 1)
    (part,) = view.parts
    body = notice_body(reference(view.id, "payout"), part.debit_fen - part.fee_fen)
    answer = rig.notices.receive(CHANNEL, body, header.format(now=int(sim_clock.seconds())))
    assert answer.status_code == 401
    assert state_of(engine, view.id) is S.PAYING


def test_a_notice_for_the_wrong_amount_or_channel_changes_nothing(engine, rig, sim_clock):
    _, _, view = paying(rig, engine, 1)
    (part,) = view.parts
    ref = reference(view.id, "payout")
    before = snapshot(engine)
    wrong_amount = notice_body(ref, part.debit_fen)  # the fee is not paid out
    answer = rig.notices.receive(CHANNEL, wrong_amount, sign(SECRET, wrong_amount, int(sim_clock.seconds())))
    assert answer.status_code == 409
    body = notice_body(ref, part.debit_fen - part.fee_fen)
    other = b"sim-secret:wechat_pay"
    assert rig.notices.receive("wechat_pay", body, sign(other, body, int(sim_clock.seconds()))).status_code == 404
    assert rig.notices.receive("no_such_channel", body, "t=1,v1=00").status_code == 404
    assert snapshot(engine) == before
    assert state_of(engine, view.id) is S.PAYING


def test_the_partners_own_notice_delivered_in_process_settles_the_recovery(engine, rig, sim_clock):
    _, phone, view = paying(rig, engine, 1)
    assert rig.payouts.deliver_due() == 0  # not settled yet: nothing to say
    sim_clock.advance_to(sim_clock.now + dt.timedelta(seconds=3_601))
    assert rig.payouts.deliver_due() == 1
    assert state_of(engine, view.id) is S.PAID
    (confirmed,) = all_rows(engine, RecoveryTransition, RecoveryTransition.event == "payout_confirmed")
    assert confirmed.actor == f"partner:{CHANNEL}"
    assert rig.worker().run_until_idle() == 0  # the notice closed the payout's outbox message
    assert check_invariants(rig, {phone: 1_000_000}) == []


# --- the audit trail ----------------------------------------------------------------------------


def test_audit_verify_names_the_first_altered_record(engine, rig, sim_clock):
    alice, phone = consumer(rig, 1)
    rig.recoveries.submit(alice, "audit-0000001", request(phone, 5_000))
    drain(rig, sim_clock)
    checked, broken = verify_audit_chain(engine)
    assert (checked, broken) == (6, None)

    with UnitOfWork(engine) as uow:
        records = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq))).all()
        third, fifth = records[2], records[4]
        third.actor = "someone-else"
        fifth.actor = "someone-else-too"
        uow.session.add_all([third, fifth])
        uow.commit()
    assert verify_audit_chain(engine) == (6, third.seq)  # the first altered one, not a later one
