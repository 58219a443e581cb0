"""What a consumer is told happened, and the balance a second recovery may take (issue: money
shown that never arrived, a second recovery for the same balance, reasons not shown, payees
that slip past the deny list, a side door around review). On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from core.domain.access import NotAllowed
from core.domain.reasons import describe_outcome
from core.domain.recovery import RecoveryState
from core.i18n import Translator, local_time
from core.services.journey import NumberUnavailable
from core.services.receipts import receipt_outcome, verify_receipt
from core.services.recovery.submission import BalanceCommitted, ChannelNotServed
from core.services.recovery.views import RecoveryRequest
from pages._ui import journey_view
from tests.support.db import snapshot
from tests.support.portal import ALIPAY, Portal, in_review

S = RecoveryState
FAILING_PAYEE = "payout@fail.sandbox"  # the sandbox accepts it, then the payout fails for good
LANGUAGES = (Translator("zh-CN"), Translator("en"))


def page_text(portal: Portal, c, group_id: str, t: Translator) -> str:
    view, steps = portal.recoveries.follow(c.who, group_id)
    lines = journey_view.status_line(view, steps, portal.journey.expected(view), t)
    table = journey_view.timeline(steps, view, t).to_string()
    return lines + "\n" + table


def receipt_text(portal: Portal, c, group_id: str, t: Translator) -> str:
    token = portal.receipts.issue(c.who, group_id)
    return journey_view.receipt_summary(verify_receipt(token, portal.receipts.jwks()), t)


# --- 1. what actually happened to the money ------------------------------------------------------


def test_a_refunded_recovery_shows_nothing_received_and_the_whole_debit_back_on_the_number(portal):
    alice = portal.consumer(1, balance_fen=30_000)
    view = portal.recover(alice, payee=FAILING_PAYEE)
    portal.drain()
    view = portal.recoveries.get(alice.who, view.id)
    assert view.state is S.REFUNDED
    outcome = view.outcome
    assert (outcome.received_fen, outcome.fee_fen, outcome.refunded_fen) == (0, 0, 30_000)
    assert portal.rig.carrier.balances[alice.phone] == 30_000  # the page tells the truth: it is back

    signed = verify_receipt(portal.receipts.issue(alice.who, view.id), portal.receipts.jwks()).recovery
    assert signed["outcome"]["received_fen"] == 0 and signed["outcome"]["refunded_fen"] == 30_000
    for t in LANGUAGES:
        shown, receipt = page_text(portal, alice, view.id, t), receipt_text(portal, alice, view.id, t)
        for text in (shown, receipt):
            assert t("outcome.refunded", amount_fen=30_000) in text
            assert "到账 ¥" not in text and "Received ¥" not in text
        # and the partner's reason, in words, never its code
        assert t("reason.partner.payee_account_closed") in shown
        assert "payee_account_closed" not in shown


def test_a_rejected_recovery_says_nothing_moved_and_shows_the_operators_reason(portal):
    alice, view = in_review(portal, 1)
    operator = portal.operator("op.outcome")
    portal.recoveries.review(operator, view.id, approve=False, reason="账户信息与号码不符", operator="Li")
    for t in LANGUAGES:
        text = page_text(portal, alice, view.id, t)
        assert t("outcome.not_moved", amount_fen=view.amount_fen) in text
        assert "账户信息与号码不符" in text  # the operator's own words, labelled
        assert t("mine.why", reason=t("reason.operator", text="账户信息与号码不符")) in text
        assert "¥" + "0.00" not in text


def test_a_cancelled_recovery_says_nothing_moved(portal):
    alice, view = in_review(portal, 1)
    portal.recoveries.cancel(alice.who, view.id)
    for t in LANGUAGES:
        text = page_text(portal, alice, view.id, t)
        assert t("outcome.not_moved", amount_fen=view.amount_fen) in text
        assert t("outcome.received", net_fen=1, amount_fen=1, fee_fen=0).split("¥")[0] not in text


def test_a_paid_recovery_shows_what_was_received_after_the_fee(portal):
    alice = portal.consumer(1, balance_fen=30_000)
    lock = portal.lock(alice)
    view = portal.submit(alice, lock)
    in_flight = portal.recoveries.get(alice.who, view.id).outcome
    assert (in_flight.pending_fen, in_flight.expected_fen, in_flight.received_fen) == (30_000, lock.net_fen, 0)
    portal.drain()
    done = portal.recoveries.get(alice.who, view.id).outcome
    assert (done.received_fen, done.fee_fen, done.pending_fen) == (lock.net_fen, lock.fee_fen, 0)
    for t in LANGUAGES:
        text = receipt_text(portal, alice, view.id, t)
        assert t("outcome.received", net_fen=lock.net_fen, amount_fen=30_000, fee_fen=lock.fee_fen) in text


def test_a_receipt_checked_later_says_when_it_was_issued_and_that_its_state_is_as_of_then(portal):
    alice = portal.consumer(1, balance_fen=30_000)
    view = portal.recover(alice)
    issued = portal.clock.now
    token = portal.receipts.issue(alice.who, view.id)
    portal.drain()
    portal.advance(days=3)
    assert portal.recoveries.get(alice.who, view.id).state is S.PAID
    receipt = verify_receipt(token, portal.receipts.jwks())
    for t in LANGUAGES:
        text = journey_view.receipt_summary(receipt, t)
        assert local_time(issued) in text
        assert t(f"state.{view.state.value}") in text and t("state.paid") not in text
    assert "凭证签发时" in journey_view.receipt_summary(receipt, LANGUAGES[0])
    assert "when the receipt was issued" in journey_view.receipt_summary(receipt, LANGUAGES[1])


def test_a_failed_debit_shows_the_carriers_reason_translated(portal):
    alice = portal.consumer(1, balance_fen=30_000)
    view = portal.recover(alice)
    portal.rig.carrier.balances[alice.phone] = 100  # spent elsewhere before the debit
    portal.drain()
    view = portal.recoveries.get(alice.who, view.id)
    assert view.state is S.FAILED and view.outcome.not_moved_fen == 30_000
    for t in LANGUAGES:
        text = page_text(portal, alice, view.id, t)
        assert t("reason.partner.insufficient_balance") in text and "insufficient_balance" not in text


# --- 2. a balance already promised to a recovery in review ----------------------------------------


def test_a_balance_in_review_is_not_offered_again_and_a_second_submission_is_refused(portal, engine):
    alice, first = in_review(portal, 1)
    check = portal.check(alice)
    assert (check.balance_fen, check.in_review_fen, check.available_fen) == (120_000, 120_000, 0)
    with pytest.raises(NumberUnavailable) as refused:
        portal.journey.compare(check)
    assert refused.value.key == "error.journey.all_committed"

    # past the page, straight at the engine: refused under the number's lock, nothing written
    before = snapshot(engine)
    national = portal.identity.number_of(alice.who, alice.number_id)
    with pytest.raises(BalanceCommitted) as held:
        portal.recoveries.submit(alice.who, "second-for-same-balance", RecoveryRequest(ALIPAY, national, 50_000, PAYEE))
    assert held.value.params == {"balance_fen": 120_000, "committed_fen": 120_000, "left_fen": 0}
    assert snapshot(engine) == before
    assert [v.id for v in portal.recoveries.review_queue(portal.operator("op.queue2"))] == [first.id]


def test_only_what_open_recoveries_leave_can_be_recovered_and_a_cancel_frees_it(portal):
    alice = portal.consumer(1, balance_fen=150_000)
    national = portal.identity.number_of(alice.who, alice.number_id)
    first = portal.recoveries.submit(alice.who, "first-of-two-0001", RecoveryRequest(ALIPAY, national, 120_000, PAYEE))
    assert first.state is S.REVIEW
    check = portal.check(alice)
    assert (check.committed_fen, check.in_review_fen, check.available_fen) == (120_000, 120_000, 30_000)
    comparison = portal.journey.compare(check)
    assert comparison.request.balance_fen == 30_000  # the quotes are for what is left
    with pytest.raises(BalanceCommitted):
        portal.recoveries.submit(alice.who, "second-of-two-01", RecoveryRequest(ALIPAY, national, 30_001, PAYEE))
    portal.recoveries.cancel(alice.who, first.id)
    assert portal.check(alice).available_fen == 150_000


def test_two_recoveries_for_one_balance_at_once_never_both_pass(portal):
    from concurrent.futures import ThreadPoolExecutor

    alice = portal.consumer(1, balance_fen=60_000)
    national = portal.identity.number_of(alice.who, alice.number_id)

    def submit(i: int):
        try:
            return portal.recoveries.submit(
                alice.who, f"race-balance-{i:02d}", RecoveryRequest(ALIPAY, national, 60_000, PAYEE)
            )
        except BalanceCommitted:
            return None

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(submit, range(4)))
    assert sum(r is not None for r in results) == 1


# --- 3. every partner code has words, and an unknown one never shows -------------------------------


@pytest.mark.parametrize("code", ["payee_frozen_by_bank_7731", "http_418", "lookup:weird", "carrier_not_served:mars"])
def test_an_unknown_partner_code_is_shown_as_a_plain_sentence_never_raw(code):
    from core.domain.reasons import partner_reason

    for t in LANGUAGES:
        text = t.reason(partner_reason(code))
        assert text and code.split(":")[-1] not in text and "reason.partner" not in text


def test_every_partner_code_the_portal_knows_has_words_in_both_languages():
    from core.domain.reasons import PARTNER_CODES, partner_reason

    for code in PARTNER_CODES:
        for t in LANGUAGES:
            text = t.reason(partner_reason(code if code != "carrier_not_served" else f"{code}:china_unicom"))
            assert text and not text.startswith("reason.") and code not in text


def test_the_outcome_sentences_exist_in_both_languages():
    from core.domain.recovery import Outcome

    outcome = Outcome(received_fen=100, fee_fen=5, refunded_fen=50, not_moved_fen=20, pending_fen=10, expected_fen=9)
    for t in LANGUAGES:
        lines = [t.reason(r) for r in describe_outcome(outcome)]
        assert len(lines) == 4 and all("outcome." not in line for line in lines)


# --- 10. a payee on the deny list, however it is typed -------------------------------------------


@pytest.mark.parametrize("typed", ["139-0013-9000", "+86 139 0013 9000", "１３９００１３９０００", " 13900139000 "])
def test_a_denied_payee_is_refused_however_it_is_formatted(portal, typed):
    operator = portal.operator("op.deny.payee")
    portal.risk.deny(operator, "payee", "139 0013 9000", "reported stolen")
    alice = portal.consumer(1, balance_fen=30_000)
    national = portal.identity.number_of(alice.who, alice.number_id)
    view = portal.recoveries.submit(alice.who, "denied-payee-01", RecoveryRequest(ALIPAY, national, 30_000, typed))
    assert view.state is S.REJECTED and "deny_list" in {r.rule for r in view.risk.reasons}


def test_the_owner_is_told_a_refusal_or_a_check_without_the_deny_list_or_the_thresholds(portal):
    """Operators read every rule with its figures; the recovery's owner reads that it cannot be
    accepted, or that staff check it (a deny-list match and the review amounts told a fraudster
    what to change), and in words, never a raw code such as `(user)`."""
    operator = portal.operator("op.deny.told")
    portal.risk.deny(operator, "payee", "139 0013 9000", "reported stolen")
    alice = portal.consumer(1, balance_fen=30_000)
    national = portal.identity.number_of(alice.who, alice.number_id)
    asked = RecoveryRequest(ALIPAY, national, 30_000, "13900139000")
    view = portal.recoveries.submit(alice.who, "denied-told-01", asked)
    assert view.state is S.REJECTED
    for t in LANGUAGES:
        told = journey_view.consumer_risk_reasons(view, t)
        assert told == t("risk.consumer.refused")
        assert told not in journey_view.risk_reasons(view, t)  # operators read the rule itself
    _, reviewed = in_review(portal, 2)
    for t in LANGUAGES:
        told = journey_view.consumer_risk_reasons(reviewed, t)
        assert "¥" not in told and told == t("risk.consumer.check")


def test_a_payee_the_channel_cannot_pay_is_refused_by_the_engine(portal, engine):
    alice = portal.consumer(1, balance_fen=30_000)
    national = portal.identity.number_of(alice.who, alice.number_id)
    before = snapshot(engine)
    with pytest.raises(Exception) as refused:
        portal.recoveries.submit(alice.who, "bad-payee-0001", RecoveryRequest(ALIPAY, national, 30_000, "hello world"))
    assert refused.value.key.startswith("error.payee")
    assert snapshot(engine) == before


# --- 14. one way to review ----------------------------------------------------------------------


def test_there_is_no_side_door_around_review(portal):
    alice, view = in_review(portal, 1)
    assert not hasattr(portal.recoveries, "apply")
    with pytest.raises(NotAllowed):
        portal.recoveries.review(alice.who, view.id, approve=True, reason="approve myself", operator="me")
    assert portal.recoveries.get(alice.who, view.id).state is S.REVIEW


def test_receipt_outcome_reads_the_signed_parts():
    import datetime as dt

    from core.services.receipts import VerifiedReceipt

    receipt = VerifiedReceipt(
        "k",
        "iss",
        dt.datetime.now(dt.UTC),
        {
            "parts": [
                {"state": "refunded", "debit_fen": 500, "fee_fen": 10},
                {"state": "paid", "debit_fen": 100, "fee_fen": 5},
                "junk",
            ]
        },
    )
    outcome = receipt_outcome(receipt)
    assert (outcome.received_fen, outcome.refunded_fen, outcome.fee_fen) == (95, 500, 5)


PAYEE = "wallet.owner@example.com"
UNICOM_APP, MOBILE_APP = "china_unicom_app", "china_mobile_app"  # own network only


# --- 9. deleting an account that has recoveries -----------------------------------------------


def test_an_account_with_a_settled_recovery_is_erased_and_its_records_kept_detached(portal, engine):
    from sqlmodel import select

    from core.persistence.tables import (
        AgreementAcceptance,
        LedgerPosting,
        QuoteLock,
        Recovery,
        SignInSession,
        User,
        VerifiedNumber,
    )
    from core.persistence.uow import UnitOfWork
    from core.services.audit import verify_audit_chain

    alice = portal.consumer(1, balance_fen=30_000)
    view = portal.recover(alice)
    portal.drain()
    signed_in = int(portal.clock.now.timestamp())
    assert portal.identity.check_session(alice.user_id, signed_in) is not None
    portal.identity.delete_account(alice.who, alice.user_id, signed_in_at=signed_in)

    with UnitOfWork(engine) as uow:

        def rows(table, *where):
            return uow.session.exec(select(table).where(*where)).all()

        user = uow.session.get(User, alice.user_id)
        assert user is not None and user.deleted_at is not None  # a pseudonym for the records ...
        assert (user.username, user.password_hash, user.totp_secret_cipher) == (None, None, None)
        for table in (VerifiedNumber, SignInSession, QuoteLock):  # ... and nothing of the person
            assert rows(table, table.user_id == alice.user_id) == []
        kept = rows(Recovery, Recovery.user_id == alice.user_id)
        assert {r.state for r in kept} == {"paid"}  # the financial records stay
        assert rows(LedgerPosting, LedgerPosting.recovery_id == kept[0].id)
        assert rows(AgreementAcceptance, AgreementAcceptance.user_id == alice.user_id)
    assert verify_audit_chain(engine)[1] is None
    assert portal.identity.check_session(alice.user_id, signed_in) is None  # nobody signs in as it
    with pytest.raises(NotAllowed):
        portal.identity.delete_account(alice.who, alice.user_id, signed_in_at=signed_in)
    # the number is free: verifying it again makes a new, unrelated account with no history
    again = portal.consumer(1, balance_fen=10_000)
    assert again.user_id != alice.user_id and portal.recoveries.list_for(again.who) == []
    assert portal.recoveries.get(portal.operator("op.erasure"), view.id).id == view.id


def test_a_recovery_under_way_blocks_deleting_the_account_and_nothing_changes(portal, engine):
    from core.services.identity.accounts import AccountBusy

    alice, view = in_review(portal, 1)
    signed_in = int(portal.clock.now.timestamp())
    before = snapshot(engine)
    with pytest.raises(AccountBusy) as busy:
        portal.identity.delete_account(alice.who, alice.user_id, signed_in_at=signed_in)
    for t in LANGUAGES:
        assert t.error(busy.value) == t("error.account.recovery_in_flight")
    assert snapshot(engine) == before
    assert portal.identity.verified_numbers(alice.who, alice.user_id)
    portal.recoveries.cancel(alice.who, view.id)  # once it has settled (here: cancelled) ...
    portal.identity.delete_account(alice.who, alice.user_id, signed_in_at=signed_in)  # ... it goes
    assert portal.identity.check_session(alice.user_id, signed_in) is None


def test_an_account_without_recoveries_is_deleted_outright(portal, engine):
    from core.persistence.tables import User
    from core.persistence.uow import UnitOfWork

    bob = portal.consumer(2)
    portal.identity.delete_account(bob.who, bob.user_id, signed_in_at=int(portal.clock.now.timestamp()))
    with UnitOfWork(engine) as uow:
        assert uow.session.get(User, bob.user_id) is None


def test_a_retried_submission_is_answered_even_while_the_carrier_is_down(portal):
    """The same key again returns the first recovery without asking the carrier: a retry after a
    dropped answer must not fail because the carrier is briefly unreachable."""
    from core.services.recovery.submission import CarrierUnavailable

    class CarrierDown:
        def current(self, national: str):
            raise CarrierUnavailable("the carrier did not answer; try again in a moment")

    alice = portal.consumer(1, balance_fen=30_000)
    lock = portal.lock(alice)
    first = portal.submit(alice, lock)
    portal.recoveries.carrier = CarrierDown()
    again = portal.submit(alice, lock)
    assert again.id == first.id and not again.created
    with pytest.raises(CarrierUnavailable):  # a new submission still needs the carrier's answer
        bob = portal.consumer(2, balance_fen=30_000)
        portal.submit(bob, portal.lock(bob))


def test_a_recovery_its_owner_cancelled_gives_no_other_reason_for_ending(portal):
    """After "Yes, cancel it" the status said "Why: a new account asking …" (the review's
    reason); the owner's own cancel ends it, and the timeline says so."""
    consumer, view = in_review(portal, 3)
    portal.recoveries.cancel(consumer.who, view.id)
    cancelled, steps = portal.recoveries.follow(consumer.who, view.id)
    assert cancelled.state is S.CANCELLED and steps[-1].by == "owner"
    for t in LANGUAGES:
        line = journey_view.status_line(cancelled, steps, None, t)
        assert t("mine.why", reason="") not in line


def test_an_account_on_the_deny_list_does_not_get_past_it_by_deleting_itself_and_signing_up_again(portal):
    """Denied by account id, a consumer deleted the account and signed up again with the same
    number (a new id): the new account's recovery went through. A number a denied account used
    is now a deny-list match of its own."""
    operator = portal.operator("op.deny.owner")
    first = portal.consumer(7, balance_fen=30_000)
    national = portal.identity.number_of(first.who, first.number_id)
    paid = portal.recoveries.submit(first.who, "before-deny-1", RecoveryRequest(ALIPAY, national, 10_000, PAYEE))
    portal.drain()
    assert portal.recoveries.get(first.who, paid.id).state is S.PAID
    portal.risk.deny(operator, "user", first.who.user_id, "fraud ring")
    portal.identity.delete_account(first.who, first.who.user_id, signed_in_at=int(portal.clock.now.timestamp()))

    again = portal.consumer(7, balance_fen=30_000)  # the same number, a new account
    assert again.who.user_id != first.who.user_id
    view = portal.recoveries.submit(again.who, "after-deny-01", RecoveryRequest(ALIPAY, national, 10_000, PAYEE))
    assert view.state is S.REJECTED
    assert [r.params for r in view.risk.reasons if r.rule == "deny_list"] == [{"on": "user_number"}]


def test_a_channel_that_takes_no_balance_from_the_numbers_carrier_is_refused_before_anything_is_written(portal, engine):
    """Past the page (which offers only channels that serve the number), straight at the engine:
    a China Mobile number sent to China Unicom's own app is refused in the user's language, not
    accepted and then failed by the worker."""
    alice = portal.consumer(1, balance_fen=30_000)  # a China Mobile number
    national = portal.identity.number_of(alice.who, alice.number_id)
    before = snapshot(engine)
    with pytest.raises(ChannelNotServed) as refused:
        portal.recoveries.submit(
            alice.who, "unserved-channel-01", RecoveryRequest("china_unicom_app", national, 10_000, PAYEE)
        )
    assert snapshot(engine) == before
    for t in LANGUAGES:
        assert t.error(refused.value) == t("error.recovery.not_served")
    served = portal.recoveries.submit(
        alice.who, "served-channel-0001", RecoveryRequest("china_mobile_app", national, 10_000, PAYEE)
    )
    assert served.created
