"""The Compare and Methodology pages through AppTest: names in the reader's language, never raw ids;
links written out; the ranked table's deciding columns first; coinciding chart lines told apart."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from core.domain.carriers import Carrier
from core.domain.catalog import PayoutForm
from core.i18n import Translator
from core.reference_data import load_catalog
from pages._ui.plain_text import plain
from tests.support.apptest import open_app

CATALOG = load_catalog()
#: Codes that must never reach the reader: channel, carrier and payout-form ids (`points` is also
#: the English word the form is called, so it cannot tell).
RAW_IDS = sorted(
    {c.id for c in CATALOG.channels}
    | {c.value for c in Carrier}
    | {f.value for f in PayoutForm if Translator("en")(f"payout_form.{f.value}") != f.value}
)
RAW_ID = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, RAW_IDS)) + r")(?![A-Za-z0-9_])")


def rendered_text(at: AppTest) -> str:
    """Everything a reader reads on the page: text elements, every table cell and header, and what
    the chart shows (trace names, axis categories, annotations). Not the share link (a URL, with
    codes in it on purpose)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.info]
    parts += [s.value for s in at.success] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [h.value for h in at.title] + [h.value for h in at.header] + [x.value for x in at.get("html")]
    for table in at.dataframe:
        frame = table.value
        parts += [str(c) for c in frame.columns] + [str(v) for v in frame.to_numpy().ravel()]
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for trace in spec["data"]:
            parts.append(str(trace.get("name", "")))
            if trace.get("orientation") == "h":
                parts += [str(y) for y in trace.get("y", [])]
        parts += [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    return "\n".join(str(p) for p in parts)


def best_card(at: AppTest) -> str:
    return next(m.value for m in at.success if "最适合您" in m.value or "Best for you" in m.value)


def again(at: AppTest, language: str) -> AppTest:
    """Run after an interaction, in the reader's language. (Under AppTest the sidebar's language
    switch loses its value on the next run, with or without this page: set it each time.)"""
    at.session_state["lang"] = language
    return at.run()


def tie_between_the_bank_malls(at: AppTest, language: str) -> None:
    """Points valued at face and a credit limit: both bank malls pay 1,200 in full, a tie."""
    at.text_input(key="balance").set_value("1200")
    again(at, language)
    at.text_input(key="credit").set_value("10000")
    again(at, language)
    at.slider(key="points").set_value(100)
    again(at, language)


@pytest.mark.parametrize(
    ("language", "names"),
    [("zh-CN", ("招商银行掌上生活", "工商银行融e购")), ("en", ("CMB Life (掌上生活)", "ICBC e-Mall (融e购)"))],
)
def test_a_tie_names_both_channels_from_the_catalog_in_the_readers_language(language, names):
    at = open_app(lang=language)
    tie_between_the_bank_malls(at, language)
    card = best_card(at)  # Markdown: a name in it is escaped to read as written (`plain`)
    assert all(plain(name) in card for name in names), card
    assert not RAW_ID.search(card), card


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("carrier", [c.value for c in Carrier])
def test_no_raw_id_reaches_the_compare_page(language, carrier):
    """Every carrier (so every channel is in or out somewhere), every priority, every chart, a tie,
    the bank malls in and out, in both languages."""
    at = open_app(lang=language, carrier=carrier)
    seen = [rendered_text(at)]
    tie_between_the_bank_malls(at, language)
    for priority in ("cost", "speed", "cash"):
        at.segmented_control(key="priority").set_value(priority)
        for chart in ("net", "eta", "breakdown"):
            at.segmented_control(key="chart").set_value(chart)
            seen.append(rendered_text(again(at, language)))
    at.text_input(key="phone").set_value("16512345678")  # a virtual-operator number
    seen.append(rendered_text(again(at, language)))
    assert at.title[0].value == ("话费余额回收比价" if language == "zh-CN" else "Compare recovery channels")
    text = "\n".join(seen)
    assert not at.exception
    assert not RAW_ID.findall(text), sorted(set(RAW_ID.findall(text)))


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_methodology_source_is_an_explicit_link_not_swallowing_the_punctuation(language):
    at = open_app(lang=language)
    at.switch_page("pages/methodology.py").run()
    assert not at.exception
    source = next(m.value for m in at.markdown if "huishouka.cn" in m.value)
    # An explicit [text](url): the URL ends where the link says, whatever punctuation follows.
    assert "](https://huishouka.cn/post/7439.html)" in source, source
    bare = re.sub(r"\[[^\]]*\]\([^)]*\)", "", source)
    assert "http" not in bare, source


def test_the_own_offers_name_reads_as_written_on_compare_never_as_markup():
    """The own offer's name is the operator's words (the pricing lab): on Compare it went into
    Markdown (the best card, the own-offer note, a reason naming it) and into the charts' labels,
    where plotly reads tags, as written."""
    from core.bootstrap import shared
    from core.domain.access import Principal, Role
    from tests.support.apptest import signed_in_as

    pricing = shared().pricing
    analyst = Principal(signed_in_as("analyst")["sub"], Role.ANALYST)
    admin = Principal(signed_in_as("admin")["sub"], Role.ADMIN)
    before = pricing.desk(analyst).live_document

    def publish(document: str, note: str) -> None:
        draft = pricing.save_draft(analyst, document, note)
        pricing.submit(analyst, draft.number, note)
        pricing.approve(admin, draft.number)

    name = "**粗体** :red[红] <b>x</b>"
    document = json.loads(before)
    document["own_offer"]["name"]["zh-CN"] = name
    publish(json.dumps(document, ensure_ascii=False), "a name with markup")
    try:
        at = open_app(balance="1000")
        shown = " ".join([c.value for c in at.caption] + [s.value for s in at.success])
        assert plain(name) in shown and name not in shown
        labels = []
        for chart in at.get("plotly_chart"):
            labels += [trace.get("name", "") for trace in json.loads(chart.proto.spec)["data"]]
        assert "<b>" not in " ".join(labels) and "&lt;b&gt;" in " ".join(labels)
    finally:
        publish(before, "the name as it was")
