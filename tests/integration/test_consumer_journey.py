"""The consumer's recovery journey on SQLite and PostgreSQL, on a controlled clock, against the
sandbox carrier, payout partners, SMS gateway and terms feed in-process: a number checked with
the carrier, a quote locked for ten minutes and honoured (or re-quoted), the agreement, risk
control inside the engine (deny list, review by an operator, velocity over time), cancelling,
the timeline, a second number, and signed receipts.

Every test gets a portal of its own (the `portal` fixture, tests/support/portal.py), with one
clock for the database, the journey, the risk rules and the sandboxes. Numbers never appear in full in an assertion."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.adapters.sms import SmsGateway
from core.config import Settings
from core.domain.access import NotAllowed, Principal
from core.domain.carriers import Carrier
from core.domain.recovery import IllegalTransition, RecoveryEvent, RecoveryState
from core.domain.risk import Decision
from core.errors import InputError
from core.persistence.tables import (
    AgreementAcceptance,
    AuditRecord,
    LedgerPosting,
    OutboxMessage,
    Recovery,
    RecoveryTransition,
    User,
    VerifiedNumber,
)
from core.persistence.uow import UnitOfWork
from core.security.keys import PortalKeys
from core.services.agreements import AgreementRequired
from core.services.audit import verify_audit_chain
from core.services.identity import IdentityService
from core.services.identity.sms_sign_in import CodeRefused
from core.services.quoting import QuoteService
from core.services.receipts import verify_receipt
from core.services.recovery.submission import IdempotencyConflict, QuoteExpired, QuoteUnusable, SubmissionInFlight
from core.services.recovery.transitions import CannotCancel, OwnRecovery
from core.services.recovery.views import RecoveryRequest, RecoveryView, UnknownRecovery
from core.simulation.invariants import check_invariants
from tests.support.db import all_rows, count, ledger, snapshot
from tests.support.people import last_code, mobile
from tests.support.portal import (
    AGREEMENT,
    ALIPAY,
    CALENDAR,
    CATALOG,
    DEVICE,
    PAYEE,
    SETTINGS,
    Consumer,
    Portal,
    in_review,
    states,
)

S, E = RecoveryState, RecoveryEvent


# --- reading the database --------------------------------------------------------------------------


def accounts(engine: Engine) -> dict[str, int]:
    """Each ledger account's balance (non-zero ones)."""
    return {account: total for account, total in ledger(engine)[1].items() if total}


def debits(portal: Portal) -> list[int]:
    """The amounts of every debit the carrier made, in order of size."""
    return sorted(d.amount_fen for d in portal.rig.carrier.debits.values() if d.status == "done")


def paid_out(portal: Portal) -> list[int]:
    return sorted(
        p.amount_fen
        for book in portal.rig.payouts.records.values()
        for p in book.values()
        if p.status(float("inf")) == "paid"
    )


def rules(view: RecoveryView) -> set[str]:
    assert view.risk is not None
    return {reason.rule for reason in view.risk.reasons}


# --- the locked quote ------------------------------------------------------------------------------


def test_a_locked_quote_is_honoured_when_the_channels_terms_change_within_ten_minutes(portal):
    alice = portal.consumer(1, balance_fen=20_000)
    lock = portal.lock(alice)
    assert (lock.amount_fen, lock.transactions, lock.used) == (20_000, 1, False)
    assert lock.fee_fen > 0 and lock.net_fen == lock.amount_fen - lock.fee_fen
    assert lock.seconds_left(portal.clock.now) == 600

    portal.change_terms(ALIPAY, ["0.09", "0.09", "0.09"])
    check = portal.check(alice)
    new_quote = next(q for q in portal.journey.compare(check).quotes if q.channel.id == ALIPAY)
    assert new_quote.fee_fen > lock.fee_fen  # a new quote would cost more now
    portal.advance(minutes=9, seconds=59)
    assert portal.journey.locked(alice.who, lock.id, alice.number_id).seconds_left(portal.clock.now) == 1

    view = portal.submit(alice, lock)

    assert (view.created, view.state, view.quote_lock_id) == (True, S.DEBITING, lock.id)
    assert (view.amount_fen, view.fee_fen, view.payout_fen) == (lock.amount_fen, lock.fee_fen, lock.net_fen)
    portal.drain()
    assert portal.recoveries.get(alice.who, view.id).state is S.PAID
    assert debits(portal) == [lock.amount_fen]
    assert paid_out(portal) == [lock.net_fen]  # the locked fee was charged, not the new one
    partner = 120  # Alipay's own fee, 0.6% of 200 CNY by the shipped cost schedule: owed to Alipay
    assert accounts(portal.engine) == {
        "carrier_receivable": lock.amount_fen,
        "fee_revenue": -(lock.fee_fen - partner),  # our margin
        "partner_fees_payable": -partner,
        "payouts_settled": -lock.net_fen,
    }
    assert check_invariants(portal.rig, {alice.phone: 20_000}) == []


def test_an_expired_lock_is_refused_and_requoting_shows_what_changed(portal):
    alice = portal.consumer(1, balance_fen=20_000)
    old = portal.lock(alice)
    portal.change_terms(ALIPAY, ["0.09", "0.09", "0.09"])
    portal.advance(minutes=10, seconds=1)
    assert portal.journey.locked(alice.who, old.id, alice.number_id).seconds_left(portal.clock.now) == 0
    before = snapshot(portal.engine)

    with pytest.raises(QuoteExpired):
        portal.submit(alice, old)
    assert snapshot(portal.engine) == before  # nothing written, the lock still unused

    new, changes = portal.journey.requote(alice.who, old, portal.check(alice))
    assert new.id != old.id and new.channel_id == ALIPAY and new.amount_fen == old.amount_fen
    assert new.fee_fen > old.fee_fen
    assert {(c.field, c.before, c.after) for c in changes} == {
        ("fee_fen", str(old.fee_fen), str(new.fee_fen)),
        ("net_fen", str(old.net_fen), str(new.net_fen)),
    }
    assert new.expires_at == portal.clock.now + dt.timedelta(minutes=10)

    view = portal.submit(alice, new)
    assert (view.state, view.fee_fen, view.quote_lock_id) == (S.DEBITING, new.fee_fen, new.id)


def test_a_lock_is_used_once_a_second_submission_with_another_key_is_refused(portal):
    alice = portal.consumer(1)
    lock = portal.lock(alice)
    view = portal.submit(alice, lock)
    assert portal.journey.locked(alice.who, lock.id, alice.number_id).used
    before = snapshot(portal.engine)

    again = RecoveryRequest(ALIPAY, alice.phone, lock.amount_fen, PAYEE, lock.id, DEVICE)
    with pytest.raises(QuoteUnusable) as refused:
        portal.recoveries.submit(alice.who, "another-key-0001", again)
    assert refused.value.key == "error.quote.used"
    assert snapshot(portal.engine) == before
    assert [v.id for v in portal.recoveries.list_for(alice.who)] == [view.id]


def test_a_lock_submitted_again_to_another_payout_account_is_refused_as_already_submitted(portal):
    alice = portal.consumer(1)
    lock = portal.lock(alice)
    view = portal.submit(alice, lock)
    before = snapshot(portal.engine)
    with pytest.raises(IdempotencyConflict) as refused:  # a second tab, another account typed
        portal.submit(alice, lock, payee="other@example.com")
    assert refused.value.key == "error.quote.submitted"
    assert snapshot(portal.engine) == before
    assert portal.submit(alice, lock).id == view.id  # the same details: the same recovery


def test_a_lock_of_another_user_is_refused(portal):
    alice, bob = portal.consumer(1), portal.consumer(2)
    lock = portal.lock(alice)
    before = snapshot(portal.engine)

    with pytest.raises(QuoteUnusable) as refused:  # the same channel and amount, bob's own number
        portal.recoveries.submit(
            bob.who, "bob-key-000001", RecoveryRequest(ALIPAY, bob.phone, lock.amount_fen, PAYEE, lock.id, DEVICE)
        )
    assert refused.value.key == "error.quote.unusable"
    with pytest.raises(QuoteUnusable):
        portal.journey.locked(bob.who, lock.id, bob.number_id)
    with pytest.raises(NotAllowed):  # nor can bob submit it as it is: the number is alice's
        portal.submit(bob, lock)
    assert snapshot(portal.engine) == before
    assert portal.recoveries.list_for(bob.who) == []

    assert portal.submit(alice, lock).created  # still good for its owner


def test_a_lock_for_a_number_that_ported_since_is_rejected_as_a_carrier_mismatch(portal):
    alice = portal.consumer(1)
    lock = portal.lock(alice)
    assert lock.carrier is Carrier.CHINA_MOBILE
    portal.rig.carrier.carriers[alice.phone] = Carrier.CHINA_UNICOM  # ported while the page was open

    view = portal.submit(alice, lock)

    assert view.state is S.REJECTED and view.risk is not None and view.risk.decision is Decision.REJECT
    assert "carrier_mismatch" in rules(view)
    portal.drain()
    assert debits(portal) == []


# --- idempotent submission ---------------------------------------------------------------------------


def test_submitting_the_same_lock_twice_returns_the_same_recovery_with_one_set_of_parts(portal):
    alice = portal.consumer(1, balance_fen=80_000)
    lock = portal.lock(alice)
    first = portal.submit(alice, lock)
    before = snapshot(portal.engine)

    second = portal.submit(alice, lock)  # a double click

    assert (first.created, second.created) == (True, False)
    assert second.id == first.id and [p.id for p in second.parts] == [p.id for p in first.parts]
    assert snapshot(portal.engine) == before
    assert count(portal.engine, Recovery) == len(first.parts) == 2


def test_going_through_journey_submit_at_once_from_four_tabs_creates_exactly_one_recovery(portal):
    alice = portal.consumer(1, balance_fen=30_000)
    lock = portal.lock(alice)

    def submit(_: int) -> RecoveryView | SubmissionInFlight:
        try:
            return portal.submit(alice, lock)
        except SubmissionInFlight as refused:  # PostgreSQL: a duplicate still being written
            return refused

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(submit, range(4)))

    views = [o for o in outcomes if isinstance(o, RecoveryView)]
    assert sum(v.created for v in views) == 1
    assert len({v.id for v in views}) == 1
    with UnitOfWork(portal.engine) as uow:
        groups = uow.session.exec(select(func.count(func.distinct(Recovery.group_id)))).one()
    assert (groups, count(portal.engine, Recovery)) == (1, 1)
    if portal.engine.dialect.name == "sqlite":
        assert len(views) == 4  # SQLite writes one at a time: every tab sees the first


# --- linked parts ------------------------------------------------------------------------------------


def test_an_amount_above_the_channels_per_transaction_limit_becomes_linked_parts_shown_as_one_recovery(portal):
    alice = portal.consumer(1, balance_fen=80_000)  # 800 CNY; Alipay takes at most 500 a transaction
    lock = portal.lock(alice)
    assert (lock.amount_fen, lock.transactions) == (80_000, 2)

    view = portal.submit(alice, lock)

    assert [(p.part, p.debit_fen) for p in view.parts] == [(1, 50_000), (2, 30_000)]
    assert view.parts[0].id == view.id and view.state is S.DEBITING
    assert (view.amount_fen, view.fee_fen) == (lock.amount_fen, lock.fee_fen)
    (listed,) = portal.recoveries.list_for(alice.who)
    assert listed.id == view.id and len(listed.parts) == 2
    portal.drain()
    (listed,) = portal.recoveries.list_for(alice.who)
    assert states(listed) == [S.PAID, S.PAID] and listed.settled
    assert debits(portal) == [30_000, 50_000]
    assert sum(paid_out(portal)) == lock.net_fen
    expected = portal.journey.expected(listed)
    assert expected is not None and expected.earliest <= expected.latest


# --- the agreement -----------------------------------------------------------------------------------


def test_submitting_without_accepting_the_agreement_is_refused_and_changes_nothing(portal):
    alice = portal.consumer(1, accept=False)
    assert not portal.agreements.accepted(alice.who)
    lock = portal.lock(alice)
    before = snapshot(portal.engine)

    with pytest.raises(AgreementRequired) as refused:
        portal.submit(alice, lock)
    assert refused.value.params == {"version": AGREEMENT.version}
    assert snapshot(portal.engine) == before
    assert not portal.journey.locked(alice.who, lock.id, alice.number_id).used

    portal.agreements.accept(alice.who, AGREEMENT.version)
    (accepted,) = all_rows(portal.engine, AgreementAcceptance)
    assert (accepted.user_id, accepted.version, accepted.text_sha256) == (
        alice.user_id,
        AGREEMENT.version,
        AGREEMENT.sha256,
    )
    assert portal.submit(alice, lock).created  # the same lock, now accepted


def test_accepting_an_old_version_is_refused_and_a_new_version_asks_again(portal):
    alice = portal.consumer(1)  # accepted v1
    assert portal.agreements.accepted(alice.who)
    new = portal.publish_agreement()
    assert new.version != AGREEMENT.version and new.sha256 != AGREEMENT.sha256

    assert not portal.agreements.accepted(alice.who)
    lock = portal.lock(alice)
    before = snapshot(portal.engine)
    with pytest.raises(AgreementRequired) as asked:
        portal.submit(alice, lock)
    assert asked.value.params == {"version": new.version}
    with pytest.raises(AgreementRequired):  # a page open since before the new version
        portal.agreements.accept(alice.who, AGREEMENT.version)
    assert snapshot(portal.engine) == before

    portal.agreements.accept(alice.who, new.version)
    assert portal.agreements.accepted(alice.who)
    assert portal.submit(alice, lock).created


def test_only_a_consumer_accepts_the_agreement(portal):
    operator = portal.operator("op.agreements")
    with pytest.raises(NotAllowed):
        portal.agreements.accept(operator, AGREEMENT.version)
    assert count(portal.engine, AgreementAcceptance) == 0


# --- risk in the engine: the deny list -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["number", "user", "device", "payee"])
def test_a_deny_listed_subject_is_rejected_with_the_reason_stored_and_nothing_debited(portal, kind):
    alice = portal.consumer(1, balance_fen=20_000)
    operator = portal.operator("op.denylist")
    value = {
        "number": alice.phone,
        "user": alice.user_id,
        "device": portal.risk.device_index(DEVICE),
        "payee": PAYEE,
    }[kind]
    key = portal.risk.deny(operator, kind, value, "reported as stolen")
    assert [(d.kind, d.key, d.added_by) for d in portal.risk.deny_list(operator)] == [(kind, key, operator.user_id)]

    view = portal.recover(alice)

    assert view.created and view.state is S.REJECTED
    stored = portal.recoveries.get(alice.who, view.id)
    assert stored.risk is not None and stored.risk.decision is Decision.REJECT
    (reason,) = [r for r in stored.risk.reasons if r.rule == "deny_list"]
    assert (reason.decision, reason.key, dict(reason.params)) == (Decision.REJECT, "risk.deny_list", {"on": kind})
    assert stored.parts[0].reason == "risk: deny_list"
    portal.drain()
    assert debits(portal) == [] and paid_out(portal) == []
    assert portal.rig.carrier.balances[alice.phone] == 20_000
    assert count(portal.engine, LedgerPosting) == 0 and count(portal.engine, OutboxMessage) == 0
    assert portal.journey.expected(stored) is None

    asked = portal.deny_list.request_removal_of(operator, kind, value, "owner proved it was recovered")
    portal.deny_list.agree(portal.operator("op.deny.checker"), asked.id)  # off the list, with four eyes
    assert portal.risk.deny_list(operator) == []  # the next one goes through
    portal.rig.carrier.balances[alice.phone] = 20_000
    assert portal.recover(alice).state is S.DEBITING


def test_only_an_operator_manages_the_deny_list(portal):
    alice = portal.consumer(1)
    with pytest.raises(NotAllowed):
        portal.risk.deny(alice.who, "number", alice.phone, "not mine to say")
    with pytest.raises(NotAllowed):
        portal.risk.deny_list(alice.who)


# --- risk in the engine: review by an operator -----------------------------------------------------------


def test_an_amount_at_the_review_amount_goes_to_review_and_waits_in_the_queue(portal):
    review_fen = SETTINGS.risk.review_amount_fen
    alice = portal.consumer(1, balance_fen=review_fen)
    operator = portal.operator("op.queue")

    view = portal.recover(alice)

    assert view.state is S.REVIEW
    assert view.risk is not None and view.risk.decision is Decision.REVIEW
    assert rules(view) == {"amount"}
    assert [v.id for v in portal.recoveries.review_queue(operator)] == [view.id]
    portal.drain()
    assert debits(portal) == [] and count(portal.engine, OutboxMessage) == 0  # nothing asked of the carrier
    bob = portal.consumer(2, balance_fen=review_fen - 1)
    assert portal.recover(bob).state is S.DEBITING  # one fen under: approved


def test_a_day_old_account_asking_500_cny_or_more_goes_to_review_and_a_day_later_does_not(portal):
    young = SETTINGS.risk.new_account_s - 60
    alice = portal.consumer(1, balance_fen=SETTINGS.risk.new_account_review_fen, age=dt.timedelta(seconds=young))
    first = portal.recover(alice)
    assert (first.state, rules(first)) == (S.REVIEW, {"new_account"})
    portal.recoveries.cancel(alice.who, first.id)

    portal.advance(minutes=1)  # the account is a day old now
    portal.rig.carrier.balances[alice.phone] = SETTINGS.risk.new_account_review_fen
    assert portal.recover(alice).state is S.DEBITING


def test_an_operator_approves_a_recovery_in_review_which_then_debits_with_name_and_reason_audited(portal):
    alice, view = in_review(portal, 1)
    operator = portal.operator("op.approver")
    reason = "called the holder; the number and the payee are theirs"

    approved = portal.recoveries.review(operator, view.id, approve=True, reason=reason, operator="Wang Fang")

    assert states(approved) == [S.DEBITING] * 3 and approved.state is S.DEBITING
    assert portal.recoveries.review_queue(operator) == []
    moves = [
        (t.event, t.actor, t.reason)
        for t in all_rows(portal.engine, RecoveryTransition, col(RecoveryTransition.after).in_(["approved"]))
    ]
    assert moves == [("approve", operator.user_id, reason)] * 3
    (record,) = all_rows(
        portal.engine, AuditRecord, AuditRecord.action == "review", AuditRecord.actor == operator.user_id
    )
    assert record.subject == view.id
    assert json.loads(record.detail) == {"decision": "approve", "operator": "Wang Fang", "reason": reason}
    checked, broken = verify_audit_chain(portal.engine)
    assert broken is None and checked == count(portal.engine, AuditRecord)

    portal.drain()
    assert states(portal.recoveries.get(alice.who, view.id)) == [S.PAID] * 3
    assert debits(portal) == [20_000, 50_000, 50_000]
    assert check_invariants(portal.rig, {alice.phone: 120_000}) == []
    assert verify_audit_chain(portal.engine)[1] is None
    with pytest.raises(IllegalTransition):  # decided once
        portal.recoveries.review(operator, view.id, approve=False, reason="changed my mind", operator="Wang Fang")


def test_an_operator_rejects_a_recovery_in_review_and_nothing_is_debited(portal):
    alice, view = in_review(portal, 1)
    operator = portal.operator("op.rejecter")

    rejected = portal.recoveries.review(
        operator, view.id, approve=False, reason="payee account flagged by the bank", operator="Li Lei"
    )

    assert states(rejected) == [S.REJECTED] * 3 and rejected.settled
    assert {p.reason for p in rejected.parts} == {"payee account flagged by the bank"}
    (record,) = all_rows(
        portal.engine, AuditRecord, AuditRecord.action == "review", AuditRecord.actor == operator.user_id
    )
    assert (record.subject, json.loads(record.detail)["decision"]) == (view.id, "reject")
    portal.drain()
    assert debits(portal) == [] and count(portal.engine, LedgerPosting) == 0
    assert portal.rig.carrier.balances[alice.phone] == 120_000
    assert verify_audit_chain(portal.engine)[1] is None


def test_an_operator_can_never_decide_on_their_own_recovery(portal, engine):
    alice, view = in_review(portal, 1)
    before = snapshot(engine)
    with UnitOfWork(engine) as uow:  # alice later joins the operators
        user = uow.session.get(User, alice.user_id)
        assert user is not None
        user.role = "operator"
        uow.session.add(user)
        uow.commit()
    alice_as_operator = Principal(alice.user_id, "operator")
    for approve in (True, False):
        with pytest.raises(OwnRecovery):
            portal.recoveries.review(
                alice_as_operator, view.id, approve=approve, reason="looks fine to me", operator="Alice"
            )
    assert snapshot(engine) == before
    assert portal.recoveries.get(alice.who, view.id).state is S.REVIEW


def test_an_operator_can_never_decide_on_a_recovery_on_a_number_they_verified(portal, engine):
    alice, view = in_review(portal, 1)
    with UnitOfWork(engine) as uow:  # the number leaves alice's account ...
        uow.session.delete(
            uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.user_id == alice.user_id)).one()
        )
        uow.commit()
    operator = portal.operator("op.numberholder", phone=alice.phone)  # ... and an operator verifies it
    before = snapshot(engine)

    with pytest.raises(OwnRecovery):
        portal.recoveries.review(operator, view.id, approve=True, reason="looks fine to me", operator="Zhao")
    assert snapshot(engine) == before
    other = portal.operator("op.independent")
    decided = portal.recoveries.review(other, view.id, approve=False, reason="number changed hands", operator="Qian")
    assert decided.state is S.REJECTED


def test_a_consumer_cannot_review_and_an_operator_must_give_a_reason(portal, engine):
    alice, view = in_review(portal, 1)
    bob = portal.consumer(2)
    operator = portal.operator("op.reasons")
    before = snapshot(engine)

    with pytest.raises(NotAllowed):
        portal.recoveries.review_queue(bob.who)
    for consumer in (alice, bob):
        with pytest.raises(NotAllowed):
            portal.recoveries.review(consumer.who, view.id, approve=True, reason="approve myself", operator="x")
    for reason in ("", "   ", "ok", "x" * 201):
        with pytest.raises(InputError) as refused:
            portal.recoveries.review(operator, view.id, approve=True, reason=reason, operator="Sun")
        assert refused.value.key == "error.review.reason"
    with pytest.raises(UnknownRecovery):
        portal.recoveries.review(operator, "no-such-recovery", approve=True, reason="a fine reason", operator="Sun")
    assert snapshot(engine) == before
    assert [v.id for v in portal.recoveries.review_queue(operator)] == [view.id]


# --- risk in the engine: velocity over time --------------------------------------------------------------


def test_the_sixth_recovery_from_one_device_within_an_hour_goes_to_review_and_an_hour_later_is_approved(portal):
    operator = portal.operator("op.velocity")
    start = portal.clock.now
    people = [portal.consumer(n, balance_fen=5_000) for n in range(1, 9)]  # different users, one device

    decided = []
    for minute, person in enumerate(people[:6]):
        portal.clock.now = start + dt.timedelta(minutes=minute)
        decided.append(portal.recover(person))
    assert [v.state for v in decided] == [S.DEBITING] * 5 + [S.REVIEW]
    sixth = decided[-1]
    assert rules(sixth) == {"velocity_device"}
    assert sixth.risk is not None
    (reason,) = sixth.risk.reasons
    assert dict(reason.params) == {"count": 6, "limit": 5, "window_min": 60}
    assert [v.id for v in portal.recoveries.review_queue(operator)] == [sixth.id]

    portal.clock.now = start + dt.timedelta(minutes=59)  # the first five still within the hour
    assert portal.recover(people[6]).state is S.REVIEW

    portal.clock.now = start + dt.timedelta(minutes=5 + 60)  # an hour after the sixth
    later = portal.recover(people[7])
    assert later.state is S.DEBITING
    assert "velocity_device" not in rules(later)
    assert portal.recover(portal.consumer(9, balance_fen=5_000), device="198.51.100.0/24|Firefox").state is (S.DEBITING)


def test_risk_facts_a_cancelled_recovery_does_not_count_towards_velocity(portal):
    alice = portal.consumer(1, balance_fen=120_000)
    for _ in range(4):  # four large ones in review (the fourth also for velocity), each cancelled
        view = portal.recover(alice)
        assert view.state is S.REVIEW
        portal.recoveries.cancel(alice.who, view.id)

    portal.rig.carrier.balances[alice.phone] = 5_000
    small = portal.recover(alice)

    assert small.state is S.DEBITING
    assert not rules(small) & {"velocity_user", "velocity_number", "velocity_device"}


def test_risk_facts_rejected_recoveries_do_count_towards_velocity(portal):
    alice = portal.consumer(1, balance_fen=120_000)
    operator = portal.operator("op.facts")
    for _ in range(4):  # four large ones in review, each rejected by an operator
        view = portal.recover(alice)
        assert view.state is S.REVIEW
        portal.recoveries.review(operator, view.id, approve=False, reason="refused for the test", operator="Zhou")

    portal.rig.carrier.balances[alice.phone] = 5_000
    small = portal.recover(alice)

    assert small.state is S.REVIEW
    assert small.risk is not None
    counts = {r.rule: r.params["count"] for r in small.risk.reasons}
    assert counts == {"velocity_user": 5, "velocity_number": 5}  # the device's limit is five: not passed


# --- cancelling ------------------------------------------------------------------------------------------


def test_a_recovery_in_review_is_cancelled_by_its_owner_every_part_and_the_ledger_untouched(portal, engine):
    alice, view = in_review(portal, 1)
    operator = portal.operator("op.cancel")
    assert view.cancellable

    cancelled = portal.recoveries.cancel(alice.who, view.id)

    assert states(cancelled) == [S.CANCELLED] * 3 and not cancelled.cancellable
    assert {p.reason for p in cancelled.parts} == {"cancelled by its owner"}
    assert count(engine, LedgerPosting) == 0 and count(engine, OutboxMessage) == 0
    assert portal.recoveries.review_queue(operator) == []
    assert verify_audit_chain(engine)[1] is None
    portal.drain()
    assert debits(portal) == []


def test_a_debiting_recovery_cannot_be_cancelled_and_nothing_changes(portal, engine):
    alice = portal.consumer(1, balance_fen=80_000)
    view = portal.recover(alice)
    assert view.state is S.DEBITING and not view.cancellable
    before = snapshot(engine)

    with pytest.raises(CannotCancel):
        portal.recoveries.cancel(alice.who, view.id)

    assert snapshot(engine) == before
    assert states(portal.recoveries.get(alice.who, view.id)) == [S.DEBITING, S.DEBITING]


def test_another_users_recovery_cannot_be_cancelled_or_even_seen(portal, engine):
    alice, view = in_review(portal, 1)
    bob = portal.consumer(2)
    before = snapshot(engine)
    with pytest.raises(UnknownRecovery):
        portal.recoveries.cancel(bob.who, view.id)
    with pytest.raises(UnknownRecovery):
        portal.recoveries.get(bob.who, view.id)
    with pytest.raises(UnknownRecovery):
        portal.recoveries.history(bob.who, view.id)
    assert snapshot(engine) == before
    assert portal.recoveries.get(alice.who, view.id).state is S.REVIEW


# --- the timeline ----------------------------------------------------------------------------------------


def test_the_history_lists_every_step_in_order_with_who_made_it(portal):
    portal.rig.payouts.settle_s = 3_600.0  # the partner's notice, an hour later, settles the payout
    submitted_at = portal.clock.now
    alice, view = in_review(portal, 1, balance_fen=100_000)  # two transactions
    operator = portal.operator("op.history")
    portal.advance(minutes=5)
    portal.recoveries.review(operator, view.id, approve=True, reason="verified by phone", operator="Wu")
    portal.advance(seconds=1)
    portal.rig.worker().run_until_idle()
    assert portal.recoveries.get(alice.who, view.id).state is S.PAYING
    portal.advance(seconds=3_601)
    assert portal.rig.payouts.deliver_due() == 2

    steps = portal.recoveries.history(alice.who, view.id)

    expected = []
    for part in (1, 2):
        expected += [(part, E.REVIEW, S.REVIEW, "engine")]
    for part in (1, 2):
        expected += [(part, E.APPROVE, S.APPROVED, "operator"), (part, E.START_DEBIT, S.DEBITING, "engine")]
    for part in (1, 2):
        expected += [(part, E.DEBIT_CONFIRMED, S.DEBITED, "engine"), (part, E.START_PAYOUT, S.PAYING, "engine")]
    for part in (1, 2):
        expected += [(part, E.PAYOUT_CONFIRMED, S.PAID, "partner")]
    assert [(s.part, s.event, s.state, s.by) for s in steps] == expected
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert steps[0].at == submitted_at and steps[2].at == submitted_at + dt.timedelta(minutes=5)
    assert steps[2].reason == "verified by phone"
    assert portal.recoveries.history(operator, view.id) == steps  # staff see the same timeline

    bob, other = in_review(portal, 2)
    portal.advance(minutes=1)
    portal.recoveries.cancel(bob.who, other.id)
    assert [(s.part, s.event, s.by) for s in portal.recoveries.history(bob.who, other.id)] == [
        (1, E.REVIEW, "engine"),
        (2, E.REVIEW, "engine"),
        (3, E.REVIEW, "engine"),
        (1, E.CANCEL, "owner"),
        (2, E.CANCEL, "owner"),
        (3, E.CANCEL, "owner"),
    ]


def test_the_history_of_an_approved_recovery_is_in_order_within_one_instant(portal):
    """Approval and the start of the debit are recorded at the same moment: the timeline must
    still show them in the order they happened, on every run."""
    for n in range(1, 6):
        c = portal.consumer(n, balance_fen=80_000)
        view = portal.recover(c, device=f"device-{n}")
        steps = portal.recoveries.history(c.who, view.id)
        assert [(s.part, s.event) for s in steps] == [
            (1, E.APPROVE),
            (1, E.START_DEBIT),
            (2, E.APPROVE),
            (2, E.START_DEBIT),
        ]
        assert {s.by for s in steps} == {"engine"}


# --- a second number ---------------------------------------------------------------------------------------


def sign_up(portal: Portal, phone: str, client: str = "10.0.0.1") -> Principal:
    portal.identity.request_code(phone, client)
    return portal.identity.verify_code(phone, last_code(portal.sms), client)


def test_a_consumer_verifies_a_second_number_by_sms_code_and_recovers_from_it(portal):
    alice = sign_up(portal, mobile(1))
    portal.agreements.accept(alice, AGREEMENT.version)
    assert portal.identity.request_code(mobile(2), "10.0.0.1") == "138****0002"
    wrong = f"{(int(last_code(portal.sms)) + 1) % 10**6:06d}"
    with pytest.raises(CodeRefused):
        portal.identity.add_number(alice, mobile(2), wrong, "10.0.0.1")

    assert portal.identity.add_number(alice, mobile(2), last_code(portal.sms), "10.0.0.1") == "138****0002"

    numbers = dict((masked, number_id) for number_id, masked in portal.identity.verified_numbers(alice, alice.user_id))
    assert sorted(numbers) == ["138****0001", "138****0002"]
    second = Consumer(alice, mobile(2), numbers["138****0002"])
    portal.rig.carrier.balances[mobile(2)] = 15_000
    check = portal.check(second)
    assert (check.masked, check.balance_fen, check.current_carrier) == ("138****0002", 15_000, Carrier.CHINA_MOBILE)
    view = portal.recover(second)
    assert (view.masked_number, view.state) == ("138****0002", S.DEBITING)


def test_a_lock_for_one_of_my_numbers_is_refused_for_another_of_them(portal):
    alice = sign_up(portal, mobile(1))
    portal.agreements.accept(alice, AGREEMENT.version)
    portal.identity.request_code(mobile(2), "10.0.0.1")
    portal.identity.add_number(alice, mobile(2), last_code(portal.sms), "10.0.0.1")
    numbers = dict((masked, number_id) for number_id, masked in portal.identity.verified_numbers(alice, alice.user_id))
    first, second = (Consumer(alice, mobile(n), numbers[f"138****000{n}"]) for n in (1, 2))
    portal.rig.carrier.balances[mobile(1)], portal.rig.carrier.balances[mobile(2)] = 20_000, 5_000
    lock = portal.lock(second)

    with pytest.raises(QuoteUnusable) as refused:
        portal.journey.locked(alice, lock.id, first.number_id)
    assert refused.value.key == "error.quote.unusable"
    assert portal.journey.locked(alice, lock.id, second.number_id).amount_fen == lock.amount_fen


def test_adding_a_number_another_account_holds_is_refused(portal):
    alice = sign_up(portal, mobile(1))
    bob = sign_up(portal, mobile(2), client="10.0.0.2")
    portal.advance(minutes=2)
    portal.identity.request_code(mobile(2), "10.0.0.1")

    with pytest.raises(NotAllowed) as refused:
        portal.identity.add_number(alice, mobile(2), last_code(portal.sms), "10.0.0.1")

    assert refused.value.key == "error.number.taken"
    assert [m for _, m in portal.identity.verified_numbers(alice, alice.user_id)] == ["138****0001"]
    ((bob_number, _),) = portal.identity.verified_numbers(bob, bob.user_id)
    with pytest.raises(NotAllowed):  # nor may alice use bob's number through the journey
        portal.journey.check_number(alice, bob_number)
    staff = portal.operator("op.numbers")
    with pytest.raises(NotAllowed):
        portal.identity.add_number(staff, mobile(3), "123456", "10.0.0.3")


# --- receipts ------------------------------------------------------------------------------------------------


def test_a_receipt_for_a_paid_recovery_verifies_against_the_published_keys(portal):
    alice = portal.consumer(1, balance_fen=80_000)
    lock = portal.lock(alice)
    view = portal.submit(alice, lock)
    portal.drain()
    portal.advance(minutes=3)

    token = portal.receipts.issue(alice.who, view.id)
    receipt = verify_receipt(token, portal.receipts.jwks(), issuer="http://portal.test")

    issued_at = dt.datetime.fromtimestamp(int(portal.clock.now.timestamp()), dt.UTC)
    assert (receipt.key_id, receipt.issuer, receipt.issued_at) == ("receipts-test", "http://portal.test", issued_at)
    signed = receipt.recovery
    assert {k: signed[k] for k in ("id", "channel", "number", "state", "settled")} == {
        "id": view.id,
        "channel": ALIPAY,
        "number": "138****0001",
        "state": "paid",
        "settled": True,
    }
    assert signed["asked"] == {"amount_fen": lock.amount_fen, "fee_fen": lock.fee_fen, "payout_fen": lock.net_fen}
    assert signed["outcome"] == {
        "received_fen": lock.net_fen,
        "fee_fen": lock.fee_fen,
        "refunded_fen": 0,
        "not_moved_fen": 0,
        "pending_fen": 0,
        "expected_fen": 0,
    }
    assert [(p["part"], p["debit_fen"], p["state"]) for p in signed["parts"]] == [
        (1, 50_000, "paid"),
        (2, 30_000, "paid"),
    ]
    assert [t["event"] for t in signed["timeline"] if t["part"] == 1] == [
        "approve",
        "start_debit",
        "debit_confirmed",
        "start_payout",
        "payout_confirmed",
    ]
    assert len(signed["audit_hash"]) == 64
    assert alice.phone not in json.dumps(signed)  # the number only masked
    assert "keys" in portal.receipts.jwks() and "d" not in portal.receipts.jwks()["keys"][0]  # public half only


def test_a_receipt_for_another_users_recovery_cannot_be_issued(portal):
    alice = portal.consumer(1)
    bob = portal.consumer(2)
    view = portal.recover(alice)
    portal.drain()
    with pytest.raises(UnknownRecovery):
        portal.receipts.issue(bob.who, view.id)
    operator = portal.operator("op.receipts")
    token = portal.receipts.issue(operator, view.id)  # staff may issue any
    assert verify_receipt(token, portal.receipts.jwks()).recovery["id"] == view.id


# --- the wiring ---------------------------------------------------------------------------------------------


def test_the_portals_services_wire_risk_agreements_receipts_and_the_journey_into_recoveries(engine, tmp_path):
    from core.bootstrap import build_recoveries

    settings = Settings(secrets_file=tmp_path / "secrets.json")
    keys = PortalKeys(bytes(32), bytes([1]) * 32, "cookie-secret-for-tests-only-0123456789", generated=True)
    quotes = QuoteService(snapshot=CATALOG, calendar=CALENDAR)
    sms = SandboxSmsGateway()
    identity = IdentityService(
        engine, keys, SmsGateway(httpx.Client(transport=httpx.MockTransport(sms), base_url="http://sms.sandbox/"))
    )
    key = RSAKey.generate_key(2048, parameters={"kid": "wired", "alg": "RS256"})
    env = {"PORTAL_RECEIPT_SIGNING_KEY": json.dumps(key.as_dict(private=True))}

    services = build_recoveries(settings, engine, keys, quotes, identity, env)

    assert services.recoveries is not None and services.journey is not None and services.receipts is not None
    assert services.recoveries.risk is services.risk and services.recoveries.agreements is services.agreements
    assert services.agreements is not None and services.agreements.current().version == AGREEMENT.version
    assert services.receipts.jwks()["keys"][0]["kid"] == "wired"
    identity.request_code(mobile(1), "10.0.0.1")
    who = identity.verify_code(mobile(1), last_code(sms), "10.0.0.1")
    ((number_id, _),) = identity.verified_numbers(who, who.user_id)
    check = services.journey.check_number(who, number_id)  # the sandbox carrier answers
    lock = services.journey.lock(who, check, ALIPAY)
    with pytest.raises(AgreementRequired):  # the agreement is checked inside the engine
        services.journey.submit(who, lock, PAYEE, DEVICE)
    services.agreements.accept(who, AGREEMENT.version)
    view = services.journey.submit(who, lock, PAYEE, DEVICE)
    assert view.risk is not None and view.state in (S.DEBITING, S.REVIEW)
