"""Stuck work on SQLite and PostgreSQL: a recovery past its channel's promise or with a partner
call unanswered after its retries is listed with why; asking the partner shows its own record;
a manual resolution takes two operators and moves the recovery with balanced ledger entries."""

from __future__ import annotations

import pytest

from core.domain.access import NotAllowed, Principal, Role
from core.domain.recovery import RecoveryState
from core.domain.review import FourEyesAction, RequestStatus
from core.domain.stuck import UNKNOWN_AFTER_ATTEMPTS, StuckReason
from core.i18n import Translator
from core.services.console.approvals import SameOperator
from core.services.console.stuck import NotStuck
from core.services.recovery_worker import reference
from pages._ui.console_view import request_line
from pages._ui.plain_text import plain
from tests.support.db import ledger

S = RecoveryState


def paying_forever(portal, n: int):
    """A 200 CNY Alipay recovery (4% fee: 192 CNY paid out) whose payout the partner keeps processing
    for ten days."""
    portal.rig.payouts.settle_s = 10 * 86_400
    alice = portal.consumer(n, balance_fen=20_000)
    view = portal.recover(alice)
    portal.rig.worker().run_until_idle()  # the debit, then the payout call
    assert portal.recoveries.get(alice.who, view.id).state is S.PAYING
    return alice, view


def test_an_instant_payout_still_processing_after_half_an_hour_is_stuck(portal):
    op = portal.operator("op.stuck")
    _, view = paying_forever(portal, 1)
    portal.advance(minutes=29)
    assert portal.stuck.stuck(op) == []
    portal.advance(minutes=2)
    (case,) = portal.stuck.stuck(op)
    assert case.view.id == view.id and case.reason is StuckReason.PAST_PROMISE
    assert [p.state for p in case.parts] == [S.PAYING]


def test_asking_the_partner_shows_its_own_record_beside_ours(portal):
    op = portal.operator("op.ask")
    _, view = paying_forever(portal, 2)
    answer = portal.stuck.ask_partner(op, view.id)
    assert (answer.call, answer.ours, answer.theirs, answer.amount_fen) == ("payout", S.PAYING, "processing", 19_200)


def test_marking_paid_takes_two_operators_and_books_balanced_entries(portal):
    maker, checker = portal.operator("op.mk"), portal.operator("op.ck")
    alice, view = paying_forever(portal, 3)
    with pytest.raises(NotStuck):  # not yet late: nothing to resolve by hand
        portal.stuck.request_resolution(maker, view.id, FourEyesAction.MARK_PAID, "partner says paid")
    portal.advance(hours=1)
    request = portal.stuck.request_resolution(maker, view.id, FourEyesAction.MARK_PAID, "partner confirmed by phone")
    assert portal.recoveries.get(maker, view.id).state is S.PAYING
    # the checker sees what they agree to: the recovery, its part, the money, the partner's reference
    (pending,) = portal.approvals.pending(checker)
    shown = request_line(pending, Translator("en", {"alipay": {"en": "Alipay"}}))
    for expected in (view.id[:8], "part 1", "¥200.00", "via Alipay", reference(view.id, "payout"), "partner confirmed"):
        assert plain(expected) in shown or expected in shown, (expected, shown)
    with pytest.raises(SameOperator):
        portal.approvals.agree(maker, request.id)

    portal.approvals.agree(checker, request.id)

    assert portal.recoveries.get(alice.who, view.id).state is S.PAID
    entries, accounts = ledger(portal.engine)
    assert all(total == 0 for total in entries.values())
    assert accounts.get("payouts_in_flight", 0) == 0
    assert portal.stuck.stuck(maker) == []
    portal.advance(days=11)
    portal.rig.payouts.deliver_due()  # the partner's late notice changes nothing now
    assert portal.recoveries.get(alice.who, view.id).state is S.PAID


def test_a_manual_refund_sends_the_balance_back_to_the_number(portal):
    maker, checker = portal.operator("op.rf1"), portal.operator("op.rf2")
    alice, view = paying_forever(portal, 4)
    portal.advance(hours=1)
    request = portal.stuck.request_resolution(maker, view.id, FourEyesAction.MANUAL_REFUND, "payee account frozen")
    portal.approvals.agree(checker, request.id)
    portal.rig.worker().run_until_idle()
    assert portal.recoveries.get(alice.who, view.id).state is S.REFUNDED
    assert portal.rig.carrier.balances[alice.phone] == 20_000


def test_a_debit_unanswered_after_its_retries_is_stuck_and_can_be_marked_failed(portal):
    maker, checker = portal.operator("op.u1"), portal.operator("op.u2")
    alice = portal.consumer(5, balance_fen=20_000)
    view = portal.recover(alice)
    portal.rig.carrier.faults.error_rate = 1.0  # from now on the carrier answers 503 to everything
    for _ in range(UNKNOWN_AFTER_ATTEMPTS * 3):
        portal.rig.worker().run_until_idle()
        portal.advance(minutes=2)
        if portal.stuck.stuck(maker):
            break
    (case,) = portal.stuck.stuck(maker)
    assert case.reason is StuckReason.UNKNOWN_OUTCOME and case.parts[0].attempts >= UNKNOWN_AFTER_ATTEMPTS
    assert portal.stuck.ask_partner(maker, view.id).theirs == "unreachable"
    portal.rig.carrier.faults.error_rate = 0.0
    assert portal.stuck.ask_partner(maker, view.id).theirs == "unknown"  # the carrier never debited it
    request = portal.stuck.request_resolution(maker, view.id, FourEyesAction.MARK_FAILED, "carrier has no record")
    shown = request_line(portal.approvals.get(checker, request.id), Translator("zh-CN"))
    assert "运营商" in shown and plain(reference(view.id, "carrier_debit")) in shown and "¥200.00" in shown
    portal.approvals.agree(checker, request.id)
    assert portal.recoveries.get(alice.who, view.id).state is S.FAILED
    assert portal.approvals.get(checker, request.id).status is RequestStatus.DONE
    assert portal.rig.worker().run_until_idle() == 0  # the debit call was closed with it


def test_retry_now_makes_the_open_call_due(portal):
    op = portal.operator("op.retry")
    alice = portal.consumer(6, balance_fen=20_000)
    view = portal.recover(alice)
    portal.rig.carrier.faults.error_rate = 1.0
    portal.rig.worker().run_until_idle()  # one failed try: the next is backed off
    portal.rig.carrier.faults.error_rate = 0.0
    assert portal.rig.worker().run_until_idle() == 0
    assert portal.stuck.retry_now(op, view.id)
    portal.rig.worker().run_until_idle()
    assert portal.recoveries.get(alice.who, view.id).state is not S.DEBITING


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.ANALYST])
def test_only_operators_handle_stuck_work(portal, role):
    _, view = paying_forever(portal, 7)
    someone = Principal(portal.consumer(8).user_id, role)
    for call in (
        lambda: portal.stuck.stuck(someone),
        lambda: portal.stuck.ask_partner(someone, view.id),
        lambda: portal.stuck.retry_now(someone, view.id),
        lambda: portal.stuck.request_resolution(someone, view.id, FourEyesAction.MARK_PAID, "because"),
    ):
        with pytest.raises(NotAllowed):
            call()
