"""The operations metrics page under AppTest: staff (an operator, an analyst) see the figures and
the charts of the last 30 days; a consumer's and a visitor's address answers with what it needs."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from core.domain.recovery import RecoveryState
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.services.recovery.views import RecoveryRequest
from core.simulation.rig import add_verified_consumer
from tests.support.apptest import open_app, signed_in_as

PAGE = "pages/console/metrics.py"
HEADLINES = ["回收笔数", "回收金额", "手续费", "到账成功率", "转人工审核率", "待审核", "最久等待", "卡住"]


def a_case_in_review() -> None:
    """A consumer's 1,200 CNY recovery today, waiting in review (the amount rule)."""
    svc = shared()
    phone = f"137{secrets.randbelow(10**8):08d}"
    keys = svc.keys
    who = add_verified_consumer(
        svc.engine,
        FieldCipher(keys.data_key),
        BlindIndex(keys.index_key, MOBILE_NUMBER),
        phone,
        dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
    )
    svc.partners.sandbox_carrier.balances[phone] = 120_000
    svc.agreements.accept(who, svc.agreements.current().version)
    view = svc.recoveries.submit(
        who, f"key-{secrets.token_hex(6)}", RecoveryRequest("alipay", phone, 120_000, "me@example.com")
    )
    assert view.state is RecoveryState.REVIEW


def metrics_as(role: str) -> AppTest:
    at = open_app(user=signed_in_as(role))
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("role", ["operator", "analyst", "admin"])
def test_staff_see_the_headline_figures_and_the_charts(role):
    a_case_in_review()
    at = metrics_as(role)

    assert at.title[0].value == "运营指标"
    shown = {m.label: m.value for m in at.metric}
    assert list(shown) == HEADLINES
    assert int(shown["回收笔数"].replace(",", "")) >= 1 and int(shown["待审核"].replace(",", "")) >= 1
    assert shown["回收金额"].startswith("¥") and shown["转人工审核率"].endswith("%")
    assert len(at.get("plotly_chart")) >= 2  # by day; by carrier (and payout times once something is paid)
    assert not at.error


def test_the_page_speaks_english_too():
    at = open_app(user=signed_in_as("analyst"), lang="en")
    at.switch_page(PAGE).run()
    assert not at.exception
    assert [m.label for m in at.metric][:3] == ["Recoveries", "Amount", "Fees"]


@pytest.mark.parametrize("role", [None, "consumer"])
def test_the_page_is_not_registered_for_a_visitor_or_a_consumer(role):
    """Its address answers with what it needs instead (a consumer: "for staff only"); the page's
    file is never run for them."""
    at = open_app(user=signed_in_as(role) if role else None)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
