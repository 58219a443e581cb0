"""The operations metrics page under AppTest: staff (an operator, an analyst) see the figures and
the charts of the last 30 days; a consumer's and a visitor's address answers with what it needs."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.apptest import open_app, open_page, recovery_in_review, signed_in_as

PAGE = "pages/console/metrics.py"
HEADLINES = ["回收笔数", "回收金额", "手续费", "到账成功率", "转人工审核率", "待审核", "最久等待", "卡住"]


def metrics_as(role: str) -> AppTest:
    return open_page(PAGE, signed_in_as(role))


@pytest.mark.parametrize("role", ["operator", "analyst", "admin"])
def test_staff_see_the_headline_figures_and_the_charts(role):
    recovery_in_review()
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
