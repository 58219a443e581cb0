"""The catalogs stay in step, and every key the code uses exists in both languages."""

import datetime as dt
import re

import pytest

from core.domain.recovery import RecoveryState
from core.domain.stuck import StuckReason
from core.i18n import LANGUAGES, Translator, load_messages, placeholders
from core.services.console.stuck import StuckPart, stuck_text
from tests.support import ROOT

KEY_USE = re.compile(r"""(?:\bt|Reason|\bkey=)\(?\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""")


def test_both_catalogs_have_the_same_keys():
    zh, en = (set(load_messages(lang)) for lang in LANGUAGES)
    assert zh - en == set() and en - zh == set()


@pytest.mark.parametrize("key", sorted(load_messages("en")))
def test_each_message_has_the_same_placeholders_in_both_languages(key):
    assert placeholders(load_messages("zh-CN")[key]) == placeholders(load_messages("en")[key])


def test_every_literal_key_in_the_code_has_a_message():
    used = set()
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("pages/**/*.py"), ROOT / "streamlit_app.py"]:
        used |= set(KEY_USE.findall(path.read_text(encoding="utf-8")))
    assert len(used) > 80  # the scan itself works
    missing = {k for k in used if k not in load_messages("en")}
    assert not missing


def test_every_reason_and_error_key_raised_by_the_core_is_translated():
    from core import errors

    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.PortalError):
            assert cls.key in load_messages("zh-CN"), cls


def test_money_and_dates_are_formatted_by_parameter_name():
    t = Translator("en", {"alipay": {"zh-CN": "支付宝", "en": "Alipay"}})
    text = t("best.most_money", channel="alipay", net_fen=116700, gap_fen=600, date="2026-09-30")
    assert text == "Alipay leaves you the most: ¥1,167.00, ¥6.00 more than the next best, by Wed 30 Sep."
    assert Translator("zh-CN")("reason.own_network_only", carrier="china_unicom") == "仅限中国联通本网用户"


def test_a_stuck_part_is_told_in_the_readers_language_on_the_page_and_the_command_line_alike():
    """`ops stuck` printed states and reasons as their English codes (`#1 paying past_promise`)."""
    deadline = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing
    late = StuckPart("p1", 1, RecoveryState.PAYING, StuckReason.PAST_PROMISE, deadline, 2, "", 2 * 3600 + 300)
    chinese = stuck_text(late, Translator("zh-CN"))
    assert chinese == "第 1 笔 · 付款中 · 渠道承诺 2026-12-01 10:00 前完成,已超时 2 小时 5 分"
    unanswered = StuckPart("p2", 2, RecoveryState.DEBITING, StuckReason.UNKNOWN_OUTCOME, deadline, 7, "HTTP 503*", 0)
    english = stuck_text(unanswered, Translator("en"), quote=lambda words: words.replace("*", r"\*"))
    assert english.endswith(r"after 7 tries: HTTP 503\*") and "paying" not in english
