"""The review queue with claims and four eyes, on SQLite and PostgreSQL: what an operator sees
to decide, who holds a case, reasons the owner reads in their language, and approvals above the
four-eyes amount that take a second operator."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from core.domain.access import NotAllowed, Principal, Role
from core.domain.recovery import RecoveryState
from core.domain.review import RequestStatus
from core.i18n import Translator
from core.persistence.tables import AuditRecord, VerifiedNumber
from core.persistence.uow import UnitOfWork
from core.services.console.approvals import DuplicateRequest, RequestClosed, SameOperator
from core.services.console.queue import ClaimHeld, ClaimNeeded
from core.services.recovery.transitions import OwnRecovery, SecondPersonNeeded
from tests.support.portal import Consumer, Portal, in_review

S = RecoveryState
FOUR_EYES_FEN = 100_000  # 1,000 CNY: the 1,200 CNY cases below need a second operator to approve


def _operator_who_verified(portal: Portal, consumer: Consumer) -> Principal:
    """The number leaves the consumer's account and an operator verifies it."""
    with UnitOfWork(portal.engine) as uow:
        uow.session.delete(
            uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.user_id == consumer.user_id)).one()
        )
        uow.commit()
    return portal.operator(f"op.holder{consumer.phone[-4:]}", phone=consumer.phone)


@pytest.fixture
def four_eyes(portal):
    portal.recoveries.four_eyes_above_fen = FOUR_EYES_FEN
    return portal


def test_the_queue_shows_oldest_first_with_rules_age_history_and_the_other_open_recovery_on_the_number(portal):
    op = portal.operator("op.queue")
    alice, first = in_review(portal, 1)
    portal.advance(minutes=5)
    portal.rig.carrier.balances[alice.phone] = 240_000  # topped up while the first waits in review
    second = portal.recover(alice)
    assert second.state is S.REVIEW
    portal.advance(hours=5)  # past the four-hour service time

    cases = portal.queue.cases(op)

    assert [c.view.id for c in cases] == [first.id, second.id] and portal.queue.waiting(op) == 2
    assert [c.view.id for c in portal.queue.cases(op, limit=1)] == [first.id]  # the oldest first
    oldest = cases[0]
    assert oldest.overdue and oldest.age_s == pytest.approx(5 * 3600 + 300)
    assert [r.rule for r in oldest.view.risk.reasons] == ["amount"]
    assert [o.id for o in oldest.same_number] == [second.id]  # visible at a glance
    assert [o.id for o in cases[1].same_number] == [first.id]
    assert oldest.history.recoveries == 2 and oldest.history.by_state == {"review": 2}
    assert oldest.history.numbers == (alice.phone[:3] + "****" + alice.phone[-4:],)
    assert oldest.carrier == "china_mobile" and oldest.claim is None and oldest.request is None


def test_a_claim_keeps_other_operators_off_until_it_is_released_or_runs_out(portal):
    one, two = portal.operator("op.one"), portal.operator("op.two")
    _, view = in_review(portal, 2)

    portal.queue.claim(one, view.id)
    with pytest.raises(ClaimHeld) as held:
        portal.queue.claim(two, view.id)
    assert held.value.params["holder"] == "op.one"
    (case,) = portal.queue.cases(two)
    assert case.claim.holder == "op.one" and not case.claim.mine
    with pytest.raises(ClaimNeeded):
        portal.queue.release(two, view.id)
    with pytest.raises(ClaimNeeded):  # deciding needs the claim
        portal.queue.decide(two, view.id, approve=False, reason="suspected_fraud")

    portal.advance(minutes=11)  # the ten-minute claim ran out by itself
    assert portal.queue.claim(two, view.id).mine
    portal.queue.release(two, view.id)
    assert portal.queue.cases(one)[0].claim is None


def test_of_two_operators_claiming_at_once_exactly_one_holds_the_case(portal):
    ops = [portal.operator(f"op.race{i}") for i in range(2)]
    _, view = in_review(portal, 3)
    won, lost, errors = [], [], []
    start = threading.Barrier(2)

    def claim(op: Principal) -> None:
        start.wait()
        try:
            portal.queue.claim(op, view.id)
            won.append(op)
        except ClaimHeld:
            lost.append(op)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(op,)) for op in ops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(won) == 1 and len(lost) == 1


def test_a_rejection_reason_from_the_list_reaches_the_owner_in_their_language(portal):
    op = portal.operator("op.reject")
    alice, view = in_review(portal, 4)
    portal.queue.claim(op, view.id)
    with pytest.raises(Exception, match="list"):
        portal.queue.decide(op, view.id, approve=False, reason="because I say so")

    decision = portal.queue.decide(op, view.id, approve=False, reason="balance_already_claimed", note="see case 12")

    assert decision.view.state is S.REJECTED and decision.request is None
    steps = portal.recoveries.history(alice.who, view.id)
    reject = next(s for s in steps if s.state is S.REJECTED)
    assert Translator("zh-CN")(reject.why.key, **reject.why.params) == Translator("zh-CN")(
        "reason.review.balance_already_claimed"
    )
    assert "see case 12" not in str(reject.why)  # the note is for colleagues only
    assert portal.queue.cases(op) == []


def test_approving_above_the_four_eyes_amount_takes_a_second_operator(four_eyes):
    portal = four_eyes
    maker, checker = portal.operator("op.maker"), portal.operator("op.checker")
    alice, view = in_review(portal, 5)
    portal.queue.claim(maker, view.id)

    decision = portal.queue.decide(maker, view.id, approve=True, reason="identity_confirmed", note="called her")

    assert decision.view is None and decision.request.status is RequestStatus.PENDING
    assert portal.recoveries.get(maker, view.id).state is S.REVIEW  # nothing moved yet
    assert portal.queue.cases(checker)[0].request.requested_by == "op.maker"
    with pytest.raises(SameOperator):
        portal.approvals.agree(maker, decision.request.id)
    portal.queue.claim(maker, view.id)
    with pytest.raises(DuplicateRequest):
        portal.queue.decide(maker, view.id, approve=True, reason="identity_confirmed")

    approved = portal.approvals.agree(checker, decision.request.id)
    assert approved.state is S.DEBITING
    portal.drain()
    assert portal.recoveries.get(alice.who, view.id).state is S.PAID
    with UnitOfWork(portal.engine) as uow:
        review = uow.session.exec(
            select(AuditRecord).where(AuditRecord.action == "review", AuditRecord.actor == checker.user_id)
        ).one()
    assert review.actor == checker.user_id and maker.user_id in review.detail and "called her" in review.detail
    with pytest.raises(RequestClosed):  # done once
        portal.approvals.agree(checker, decision.request.id)


def test_the_engine_itself_refuses_a_lone_approval_above_the_amount(four_eyes):
    """No door around the console: the command line and any other caller meet the same rule."""
    op = four_eyes.operator("op.alone")
    _, view = in_review(four_eyes, 6)
    with pytest.raises(SecondPersonNeeded):
        four_eyes.recoveries.review(op, view.id, approve=True, reason="identity_confirmed", operator="op.alone")
    assert four_eyes.recoveries.get(op, view.id).state is S.REVIEW
    rejected = four_eyes.recoveries.review(op, view.id, approve=False, reason="suspected_fraud", operator="op.alone")
    assert rejected.state is S.REJECTED  # rejecting needs no second person


def test_a_request_lapses_and_can_then_be_asked_again(four_eyes):
    portal = four_eyes
    maker, checker = portal.operator("op.lapse1"), portal.operator("op.lapse2")
    _, view = in_review(portal, 7)
    portal.queue.claim(maker, view.id)
    first = portal.queue.decide(maker, view.id, approve=True, reason="history_explains").request

    portal.advance(hours=25)  # past the 24-hour lapse
    with pytest.raises(RequestClosed):
        portal.approvals.agree(checker, first.id)
    assert portal.approvals.get(checker, first.id).status is RequestStatus.LAPSED
    portal.queue.claim(maker, view.id)
    again = portal.queue.decide(maker, view.id, approve=True, reason="history_explains").request
    assert again.id != first.id and again.status is RequestStatus.PENDING


def test_a_checker_who_owns_the_number_cannot_agree_and_the_request_is_closed_as_failed(four_eyes):
    portal = four_eyes
    maker = portal.operator("op.m")
    alice, view = in_review(portal, 8)
    checker = _operator_who_verified(portal, alice)
    portal.queue.claim(maker, view.id)
    request = portal.queue.decide(maker, view.id, approve=True, reason="identity_confirmed").request
    with pytest.raises(OwnRecovery):
        portal.approvals.agree(checker, request.id)
    assert portal.approvals.get(maker, request.id).status is RequestStatus.FAILED
    assert portal.recoveries.get(maker, view.id).state is S.REVIEW


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.ANALYST])
def test_only_operators_work_the_queue(portal, role):
    _, view = in_review(portal, 9)
    someone = Principal(portal.consumer(10).user_id, role)
    for call in (
        lambda: portal.queue.cases(someone),
        lambda: portal.queue.waiting(someone),
        lambda: portal.queue.claim(someone, view.id),
        lambda: portal.queue.release(someone, view.id),
        lambda: portal.queue.decide(someone, view.id, approve=False, reason="suspected_fraud"),
        lambda: portal.approvals.pending(someone),
    ):
        with pytest.raises(NotAllowed):
            call()


def test_an_operator_cannot_claim_their_own_recovery(portal):
    alice, view = in_review(portal, 11)
    op = _operator_who_verified(portal, alice)
    with pytest.raises(OwnRecovery):
        portal.queue.claim(op, view.id)


def test_claims_and_decisions_are_in_the_audit_chain(portal):
    op = portal.operator("op.audit")
    _, view = in_review(portal, 12)
    portal.queue.claim(op, view.id)
    portal.queue.decide(op, view.id, approve=False, reason="not_the_owner")
    with UnitOfWork(portal.engine) as uow:
        actions = [r.action for r in uow.session.exec(select(AuditRecord).where(AuditRecord.subject == view.id))]
    # the submission, the engine's move to review, the claim, the move to rejected, the decision
    assert actions == ["submit", "review", "queue.claim", "reject", "review"]
