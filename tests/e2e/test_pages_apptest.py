"""Each page through Streamlit's AppTest: what a visitor sees for good and bad input."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from pages._ui.plain_text import plain
from tests.support.apptest import open_app, shown


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.info]
    parts += [s.value for s in at.success]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [c.value for c in at.code]
    return "\n".join(str(p) for p in parts)


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def best_card(at: AppTest) -> str:
    return next(m.value for m in at.success if "最适合您" in m.value or "Best for you" in m.value)


def test_compare_shows_every_channel_ranked_with_a_best_card_and_a_chart():
    at = open_app()
    assert not at.exception
    # 200 CNY: the portal's own offer (3.5%) leaves ¥1 more than Alipay (4%), so it ranks first
    # by the same rule as every channel; the page says it is the operator's own offer
    assert "本平台直收" in best_card(at) and "¥193.00" in best_card(at)
    table = at.dataframe[0].value
    assert len(table) == 8  # the seven market channels and the own offer
    assert list(table["排名"][:3]) == ["1", "2", "3"]
    assert any("本站运营方自己的报价" in c.value for c in at.caption)
    assert at.segmented_control(key="chart").options == ["到手金额", "到账时间", "费用构成"]
    assert chart_titles(at) == ["不同余额下实际到手(现金等值)"]


@pytest.mark.parametrize(
    ("tab", "title"),
    [("eta", "到账时间窗口(按中国工作日历)"), ("breakdown", "余额去向:手续费 / 隐性成本 / 到手")],
)
def test_each_chart_choice_draws_only_its_own_chart(tab, title):
    at = open_app()
    at.segmented_control(key="chart").set_value(tab).run()
    assert chart_titles(at) == [title]


def test_the_net_chart_marks_the_balance_tier_edges_and_the_per_transaction_limit():
    at = open_app()
    at.text_input(key="balance").set_value("1200").run()
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    lines = {round(shape["x0"], 2) for shape in layout["shapes"]}
    assert {100, 200, 300} <= lines  # fee tier edges
    assert {500, 1000, 1500} <= lines  # per-transaction limit and its multiples
    assert layout["shapes"][-1]["x0"] == 1200  # your balance
    names = [trace["name"] for trace in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert names == ["支付宝", "微信支付", "中国移动APP", "本平台直收"]


def test_compare_follows_a_new_balance():
    at = open_app()
    at.text_input(key="balance").set_value("１，２００").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    alipay = table[table["渠道"] == "支付宝"].iloc[0]
    assert alipay["笔数"] == "3"
    assert alipay["说明"] == "分 3 笔(单笔上限 ¥500.00)"
    mobile_app = table[table["渠道"] == "中国移动APP"].iloc[0]
    assert mobile_app["说明"] == "¥600.00 留在话费中"
    assert alipay["实际到手"] in {"¥1,167.00", "¥1,168.00"}  # the sandbox feed may be running a promotion


@pytest.mark.parametrize(
    ("balance", "message"),
    [
        ("-5", "正数"),
        ("abc", "1,200.50"),
        ("1.234", "两位小数"),
        ("0", "大于 0"),
        ("1e9", "1,200.50"),
        ("NaN", "1,200.50"),
        ("999999999", "过大"),
        ("", "请输入金额"),
        ("²", "1,200.50"),  # a superscript, circled or subscript figure is not a digit typed
        ("①", "1,200.50"),
        ("₁₂", "1,200.50"),
    ],
)
def test_bad_balance_gets_a_clear_message_and_no_traceback(balance, message):
    at = open_app()
    at.text_input(key="balance").set_value(balance).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert not at.dataframe and not at.get("plotly_chart")


@pytest.mark.parametrize(("phone", "message"), [("12345", "11 位"), ("10012345678", "号段"), ("1380013800x", "11 位")])
def test_bad_phone_gets_a_clear_message(phone, message):
    at = open_app()
    at.text_input(key="phone").set_value(phone).run()
    assert not at.exception and message in at.error[0].value


def test_a_phone_number_is_shown_masked_and_names_its_carrier():
    at = open_app()
    at.text_input(key="phone").set_value("16512345678").run()
    shown = texts(at)
    assert "165****5678" in shown and "虚拟运营商" in shown
    assert "16512345678" not in shown
    table = at.dataframe[0].value
    mobile_app = table[table["渠道"] == "中国移动APP"].iloc[0]
    assert "虚拟运营商" in mobile_app["说明"]


def test_a_satellite_segment_asks_for_the_carrier():
    at = open_app()
    at.text_input(key="phone").set_value("13491234567").run()
    assert "选择运营商" in at.error[0].value
    at.selectbox(key="carrier").set_value("china_mobile").run()
    assert not at.error and at.dataframe


def test_the_share_link_carries_the_comparison_but_never_the_phone_number():
    at = open_app()
    at.text_input(key="phone").set_value("13012345678").run()
    at.text_input(key="balance").set_value("888").run()
    assert not at.code  # the link is built when the share box opens
    at.session_state["sharing"] = True
    at.run()
    link = at.code[0].value
    assert dict(at.query_params) == {"balance": "888", "carrier": "china_unicom"}
    assert "balance=888" in link and "carrier=china_unicom" in link and "priority=cost" in link
    assert "13012345678" not in link and "5678" not in link


def test_a_shared_link_reproduces_the_comparison():
    at = open_app(balance="888", carrier="china_unicom", priority="speed", lang="en")
    assert not at.exception
    assert at.text_input(key="balance").value == "888"
    assert at.selectbox(key="carrier").value == "china_unicom"
    card = best_card(at)
    assert "Best for you" in card
    table = at.dataframe[0].value
    assert table[table["Channel"] == "China Unicom app"].iloc[0]["Rank"] != "—"


def test_credit_limit_opens_the_bank_points_malls():
    at = open_app()
    table = at.dataframe[0].value
    assert table[table["渠道"] == "工商银行融e购"].iloc[0]["排名"] == "—"
    at.text_input(key="credit").set_value("10,000").run()
    table = at.dataframe[0].value
    assert table[table["渠道"] == "工商银行融e购"].iloc[0]["实际到手"] == "¥160.00"  # 200 in points worth 80%


def test_bad_credit_limit_gets_a_clear_message():
    at = open_app()
    at.text_input(key="credit").set_value("lots").run()
    assert not at.exception and "信用卡额度" in at.error[0].value


def test_switching_to_english_translates_the_page():
    at = open_app()
    at.segmented_control(key="lang").set_value("en").run()
    assert at.title[0].value == "Compare recovery channels"
    assert plain("Direct recovery (this portal)") in best_card(at)  # Markdown: names escaped, read as written
    assert any("this portal's own offer" in c.value for c in at.caption)


def test_methodology_lists_the_provenance_of_every_figure_and_the_regulations():
    at = open_app()
    at.switch_page("pages/methodology.py").run()
    assert not at.exception
    sources = at.dataframe[0].value
    assert len(sources) == 8 * 5  # the own offer's terms too, each an estimate set by the operator
    assert set(sources["依据"]) == {"文章原文", "本项目估计"}
    assert set(sources[sources["渠道"] == "本平台直收"]["依据"]) == {"本项目估计"}
    shown = texts(at)
    assert "第五十九条" in shown and "第三十一条" in shown and "第二十八" in shown
    assert "免责声明" in "\n".join(w.value for w in at.warning)


@pytest.fixture
def feed_down(monkeypatch):
    """The portal configured with a terms feed nobody answers at (a closed loopback port)."""
    from core import bootstrap
    from pages._ui.session import services

    monkeypatch.setenv("TERMS_FEED_URL", "http://127.0.0.1:9/terms")
    monkeypatch.setenv("TERMS_FEED_TIMEOUT_S", "0.5")
    services.clear()
    bootstrap.reset_shared()
    yield
    services.clear()
    bootstrap.reset_shared()


def test_when_the_feed_is_down_the_page_quotes_the_snapshot_and_flags_stale_terms(feed_down):
    at = open_app()
    assert not at.exception
    assert at.dataframe  # still compares, on the bundled snapshot
    stale = [w.value for w in at.warning if "可能已过期" in w.value]
    assert len(stale) == 7
    assert "2026-11-20" in stale[0]


def test_an_opened_link_stays_in_the_address_bar_until_the_comparison_changes():
    at = open_app(balance="888", carrier="china_unicom")
    assert dict(at.query_params) == {"balance": "888", "carrier": "china_unicom"}
    at.text_input(key="balance").set_value("500").run()
    assert dict(at.query_params) == {}  # a stale link is cleared, not left to be copied


def test_a_balance_with_leading_zeros_is_quoted_for_what_it_is():
    at = open_app(balance="00000000000000001")
    assert not at.exception and not at.error
    assert "¥1.00" in shown(at)


def test_a_shared_link_with_a_bad_balance_shows_the_message_once_and_clears_the_link():
    at = open_app(balance="abc", carrier="china_unicom")
    assert not at.exception
    assert len(at.error) == 1 and not at.toast  # no rerun loop: the message is shown once
    assert dict(at.query_params) == {}


def test_left_at_the_published_value_the_sliders_let_each_channel_use_its_own():
    at = open_app()
    assert at.slider(key="voucher").value == 90 and at.slider(key="points").value == 80
    at.text_input(key="credit").set_value("10000").run()
    at.slider(key="points").set_value(100).run()
    table = at.dataframe[0].value
    assert table[table["渠道"] == "工商银行融e购"].iloc[0]["实际到手"] == "¥200.00"


def test_every_channel_says_when_its_terms_were_last_confirmed():
    at = open_app()
    table = at.dataframe[0].value
    assert table["条款确认"].str.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}").all()
