"""The Recover page under AppTest, opened by its address (a number's id and a locked quote's id,
as a reload or Back opens it): what it says of the recovery a quote made, of a quote for another
number, of a quote renewed, and of a quote already submitted from another tab."""

from __future__ import annotations

import datetime as dt
import secrets
from unittest import mock

from core.bootstrap import shared
from core.domain.access import Principal
from core.domain.recovery import RecoveryState
from core.services.journey import LockedQuote
from tests.support.apptest import open_page, shown, user_of
from tests.support.cli import verified_consumer

PAGE = "pages/recover.py"
PAYEE = "me@example.com"


def consumer(*balances_fen: int) -> tuple[dict, Principal, list[str]]:
    """A month-old consumer (signed in now) who verified one new number per balance, with the
    agreement accepted; the numbers' ids in the same order."""
    svc = shared()
    phones = [f"136{secrets.randbelow(10**8):08d}" for _ in balances_fen]
    who = verified_consumer(svc, phones[0])
    for phone, balance in zip(phones, balances_fen, strict=True):
        if phone != phones[0]:
            who = verified_consumer_again(who, phone)
        svc.partners.sandbox_carrier.balances[phone] = balance
    svc.agreements.accept(who, svc.agreements.current().version)
    by_masked = dict((masked, number_id) for number_id, masked in svc.identity.verified_numbers(who, who.user_id))
    ids = [next(i for m, i in by_masked.items() if m[-4:] == phone[-4:]) for phone in phones]
    return user_of(who.user_id), who, ids


def verified_consumer_again(who: Principal, phone: str) -> Principal:
    """`who` verifies another number by SMS code, as the Recover page's expander does."""
    from tests.support.people import last_code

    svc = shared()
    svc.identity.request_code(phone, "10.2.0.1")
    svc.identity.add_number(who, phone, last_code(svc.sandbox_sms), "10.2.0.1")
    return who


def locked(who: Principal, number_id: str, channel: str = "alipay") -> LockedQuote:
    journey = shared().journey
    return journey.lock(who, journey.check_number(who, number_id), channel)


def recover(user: dict, number_id: str, lock: LockedQuote):
    return open_page(PAGE, user, number_id=number_id, quote_id=lock.id)


def test_a_submitted_quote_whose_recovery_was_cancelled_since_says_it_was_cancelled():
    user, who, (number,) = consumer(120_000)
    lock = locked(who, number)
    view = shared().journey.submit(who, lock, PAYEE, "test-device")
    assert view.state is RecoveryState.REVIEW
    shared().recoveries.cancel(who, view.id)

    at = recover(user, number, lock)
    text = shown(at)
    assert "已提交;这笔回收现已结束:已取消。" in text
    assert "正在处理" not in text
    assert "未扣减:余额留在号码上" in text  # what happened to the money


def test_a_quote_locked_for_another_of_my_numbers_is_dropped_from_the_address():
    user, who, (first, second) = consumer(20_000, 5_000)
    lock = locked(who, second)

    at = recover(user, first, lock)
    assert not at.exception
    assert at.query_params.get("number_id") == first
    assert "quote_id" not in at.query_params
    text = shown(at)
    assert "¥200.00" in text  # the first number's balance, and no quote locked beside it
    assert not at.success
    assert "rc_submit_button" not in [b.key for b in at.button]


def eleven_minutes_on():
    """The journey's clock eleven minutes on: a lock made now has run out."""
    return mock.patch.object(shared().journey, "_clock", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11))


def test_a_quote_renewed_unchanged_on_submit_says_so_and_asks_for_another_click():
    user, who, (number,) = consumer(20_000)
    lock = locked(who, number)
    at = recover(user, number, lock)
    at.text_input(key="rc_payee").set_value(PAYEE)
    with eleven_minutes_on():
        at.button(key="rc_submit_button").click().run()
        assert not at.exception
        text = shown(at)
        assert "报价已按相同的金额续期,请再次提交。" in text
        assert "查看上方变化" not in text
        assert any("没有变化" in i.value for i in at.info)
        assert shared().recoveries.list_for(who) == []  # nothing submitted on a quote not yet seen

        at.button(key="rc_submit_button").click().run()  # the renewed quote, submitted
    assert [v.amount_fen for v in shared().recoveries.list_for(who)] == [lock.amount_fen]


def test_a_quote_renewed_unchanged_on_opening_says_nothing_changed():
    user, who, (number,) = consumer(20_000)
    lock = locked(who, number)
    with eleven_minutes_on():
        at = recover(user, number, lock)
    assert not at.exception
    assert any("没有变化" in i.value for i in at.info)
    assert at.query_params.get("quote_id") not in (None, lock.id)  # the renewed lock's


def test_a_quote_submitted_in_another_tab_to_another_account_says_so_and_points_to_my_recoveries():
    user, who, (number,) = consumer(20_000)
    lock = locked(who, number)
    first, second = recover(user, number, lock), recover(user, number, lock)
    first.text_input(key="rc_payee").set_value(PAYEE)
    second.text_input(key="rc_payee").set_value("other@example.com")
    first.button(key="rc_submit_button").click().run()
    second.button(key="rc_submit_button").click().run()
    assert not second.exception
    (error,) = second.error
    assert "这个报价已经提交过" in error.value and "「我的回收」" in error.value
    assert "请求编号" not in error.value
    assert [link.proto.page for link in second.get("page_link")] == ["my_recoveries"]
    assert len(shared().recoveries.list_for(who)) == 1
