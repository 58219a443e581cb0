"""Every form of the journey against generated bad input (AppTest, 1,000 inputs per form): a
clear message, never a traceback, and nothing changes (no number added, no recovery made)."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from core.domain.access import Principal
from core.errors import InputError
from core.phones import parse_mobile
from tests.support.apptest import open_app, signed_in_as

pytestmark = pytest.mark.slow  # 1,000 generated inputs per form, about a minute in all: `make test` runs them
FORM_EXAMPLES = settings(
    max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
typed = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.digits + " +-", max_size=24),
    st.text(alphabet=string.printable, max_size=80),
    st.sampled_from(["", " ", "1380013800", "138001380001", "+86 138", "６２２２", "a@b", "@x.cn", "0" * 19]),
)


def state_of(who: Principal) -> tuple[int, int]:
    svc = shared()
    return len(svc.identity.verified_numbers(who, who.user_id)), len(svc.recoveries.list_for(who))


def messages(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.warning, *at.success])


@pytest.fixture(scope="module")
def consumer():
    user = signed_in_as("consumer")
    return user, Principal(user["sub"], "consumer")


def opened(user: dict, page: str) -> AppTest:
    return open_app(user=user).switch_page(page).run()


@pytest.fixture(scope="module")
def recover_page(consumer):
    return opened(consumer[0], "pages/recover.py")


def not_a_number(text: str) -> bool:
    try:
        parse_mobile(text)
    except InputError:
        return True
    return False


@FORM_EXAMPLES
@given(phone=typed)
def test_the_send_code_form_refuses_bad_numbers_clearly_and_changes_nothing(recover_page, consumer, phone):
    assume(not_a_number(phone))
    at, (_, who) = recover_page, consumer
    before = state_of(who)
    at.text_input(key="rc_new_phone").set_value(phone)
    at.button(key="rc_send_code").click().run()
    assert not at.exception
    assert at.error, "a bad number gets a message"
    assert state_of(who) == before


@FORM_EXAMPLES
@given(phone=typed, code=typed)
def test_the_verify_number_form_refuses_bad_input_clearly_and_changes_nothing(recover_page, consumer, phone, code):
    assume(not_a_number(phone) or not (code.strip().isdigit() and len(code.strip()) == 6))
    at, (_, who) = recover_page, consumer
    before = state_of(who)
    at.text_input(key="rc_new_phone").set_value(phone)
    at.text_input(key="rc_new_code").set_value(code)
    at.button(key="rc_verify_number").click().run()
    assert not at.exception
    assert at.error
    assert state_of(who) == before


@pytest.fixture(scope="module")
def at_submit(consumer):
    """The Recover page at its last step: number checked, Alipay's quote locked, agreement accepted."""
    at = opened(consumer[0], "pages/recover.py")
    at.selectbox(key="rc_number").select_index(0).run()
    at.button(key="rc_check_button").click().run()
    at.radio(key="rc_channel").set_value("alipay").run()
    at.button(key="rc_lock_button").click().run()
    at.checkbox(key="rc_agree").check().run()
    at.button(key="rc_accept_button").click().run()
    assert not at.exception and at.button(key="rc_submit_button")
    return at


@FORM_EXAMPLES
@given(payee=typed)
def test_the_payout_account_is_refused_clearly_and_no_recovery_is_made(at_submit, consumer, payee):
    from core.domain.catalog import PayoutForm
    from core.domain.payee import parse_payee

    try:
        parse_payee(PayoutForm.CASH_WALLET, payee)
        assume(False)  # a valid account would submit: not this test's business
    except InputError:
        pass
    at, (_, who) = at_submit, consumer
    before = state_of(who)
    at.text_input(key="rc_payee").set_value(payee)
    at.button(key="rc_submit_button").click().run()
    assert not at.exception
    assert "钱包账户应为手机号或电子邮箱" in messages(at)
    assert state_of(who) == before


@pytest.fixture(scope="module")
def mine_page(consumer):
    return opened(consumer[0], "pages/my_recoveries.py")


@FORM_EXAMPLES
@given(text=st.one_of(typed, st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,200}\.[A-Za-z0-9_-]{0,60}")))
def test_the_receipt_box_refuses_anything_but_a_signed_receipt(mine_page, consumer, text):
    at, (_, who) = mine_page, consumer
    before = state_of(who)
    at.text_area(key="verify_text").set_value(text)
    at.button[-1].click().run()
    assert not at.exception
    shown = messages(at)
    refusals = ("凭证无效", "这不是一张凭证", "没有可验证的内容")  # altered / not a receipt / empty
    assert at.error and any(refusal in shown for refusal in refusals)
    if not "".join(text.split()):
        assert "没有可验证的内容" in shown  # an empty box is said to be empty, not "altered"
    assert state_of(who) == before
