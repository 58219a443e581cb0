"""The Compare page's charts: a line hidden by another is said so; labels keep clear of the data."""

from __future__ import annotations

import dataclasses

import pytest

from core.domain.catalog import Catalog
from core.i18n import Translator
from core.money import PPM
from core.services.quoting import QuoteService
from pages._ui import charts
from tests.support.quotes import make_request


@pytest.fixture
def service(catalog, calendar):
    return QuoteService(snapshot=catalog, calendar=calendar)


def net_figure(service, request, language="zh-CN"):
    return charts.net_by_balance(service, service.terms(), request, language, {}).to_dict()


def test_two_channels_paying_the_same_at_every_balance_share_one_line_named_for_both(service):
    # Points at face value and a credit limit: the two bank malls pay the same at every balance.
    figure = net_figure(service, make_request(1200, credit_limit_fen=1_000_000, points_value_ppm=PPM))
    names = [trace["name"] for trace in figure["data"] if trace.get("showlegend", True)]
    assert "工商银行融e购 = 招商银行掌上生活" in names
    assert "工商银行融e购" not in names and "招商银行掌上生活" not in names


def test_a_line_that_covers_another_over_a_stretch_is_dashed(catalog, calendar):
    # WeChat Pay on Alipay's fee and no per-transaction limit: the same up to 500 CNY, not above.
    channels = catalog.by_id()
    limits = dataclasses.replace(channels["wechat_pay"].limits, per_transaction_fen=None)
    wechat = dataclasses.replace(channels["wechat_pay"], fee=channels["alipay"].fee, limits=limits)
    edited = Catalog(tuple(wechat if c.id == "wechat_pay" else c for c in catalog.channels), catalog.as_of)
    service = QuoteService(snapshot=edited, calendar=calendar)
    figure = net_figure(service, make_request(1200), "en")
    lines = {trace["name"]: trace["line"] for trace in figure["data"] if trace.get("mode") == "lines"}
    assert lines["Alipay"].get("dash", "solid") == "solid"
    assert lines["WeChat Pay"].get("dash", "solid") != "solid"  # drawn over Alipay: Alipay shows through


def test_a_line_drawn_over_one_a_pixel_away_is_dashed_and_lines_apart_stay_solid(service):
    # Alipay and WeChat Pay differ by a few yuan on a 1,000-yuan axis: one line on screen.
    figure = net_figure(service, make_request(1200))
    lines = {t["name"]: t["line"].get("dash", "solid") for t in figure["data"] if t.get("mode") == "lines"}
    assert lines == {"支付宝": "solid", "微信支付": "dash", "中国移动APP": "solid"}


def labels_above_the_plot(layout):
    return [
        a for a in layout["annotations"] if a.get("yref") == "paper" and a["y"] >= 1 and a.get("yanchor") == "bottom"
    ]


@pytest.mark.parametrize("balance", [3, 200, 480, 1200, 60_000])
def test_your_balance_is_labelled_above_the_plot_on_a_background(service, balance):
    layout = net_figure(service, make_request(balance, credit_limit_fen=1_000_000))["layout"]
    (label,) = [a for a in layout["annotations"] if a["text"] == "您的余额"]
    assert label in labels_above_the_plot(layout) and label.get("bgcolor")
    # Nothing else sits in that strip: the limit is told in the legend, not in a second label.
    assert len(labels_above_the_plot(layout)) == 1


def test_today_is_labelled_above_the_bars_on_a_background(service):
    comparison = service.compare_request(make_request(200))
    layout = charts.eta_window(comparison, service, Translator("zh-CN")).to_dict()["layout"]
    (label,) = [a for a in layout["annotations"] if a["text"] == "今天"]
    assert label in labels_above_the_plot(layout) and label.get("bgcolor")


def test_each_channel_keeps_its_colour_whichever_channels_are_drawn(service, catalog):
    from core.domain.carriers import Carrier

    place = {c.display_name("en"): i for i, c in enumerate(catalog.channels)}
    for carrier in Carrier:
        figure = net_figure(service, make_request(300, carrier=carrier), "en")
        for trace in figure["data"]:
            assert trace["line"]["color"] == charts.PALETTE[place[trace["name"]] % len(charts.PALETTE)]
