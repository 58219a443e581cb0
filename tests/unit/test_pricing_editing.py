"""The lab's editors and the pricing document: the document's figures shown as rows and written
back unchanged; 1,000 generated edits each give either a document the pricing checks accept or
a PricingError naming the row and the field — never another exception, and the original
document is never changed."""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.pricing import PricingError, parse_document
from core.domain.pricing_editing import cost_rows, document_diff, edited, offer_terms, promotion_of, tier_rows
from core.domain.problems import Problem
from core.i18n import Translator
from core.reference_data import load_catalog
from tests.support import ROOT

SHIPPED = json.loads((ROOT / "data" / "pricing" / "schedule.json").read_text(encoding="utf-8"))
MARKET = load_catalog().by_id()

cell = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**12), 10**12),
    st.text(max_size=12),
    st.sampled_from(["", "1e400", "NaN", "-0", "12.345", "３.５", True]),
)


def test_the_shipped_document_round_trips_through_the_editors():
    again = edited(SHIPPED, tier_rows(SHIPPED), offer_terms(SHIPPED), promotion_of(SHIPPED), cost_rows(SHIPPED))
    assert parse_document(json.dumps(again), market=MARKET) == parse_document(json.dumps(SHIPPED), market=MARKET)


@settings(max_examples=1000, deadline=None)
@given(
    tiers=st.lists(st.fixed_dictionaries({"up_to_yuan": cell, "rate_percent": cell}), max_size=5),
    terms=st.fixed_dictionaries({k: cell for k in offer_terms(SHIPPED)}),
    costs=st.lists(
        st.fixed_dictionaries(
            {
                "channel": st.sampled_from([*MARKET, "direct", "nowhere"]),
                **{k: cell for k in cost_rows(SHIPPED)[0] if k != "channel"},
            }
        ),
        max_size=3,
    ),
    promotion=st.one_of(
        st.none(),
        st.fixed_dictionaries({"starts": st.text(max_size=12), "ends": st.text(max_size=12), "discount_percent": cell}),
    ),
)
def test_any_edit_gives_a_checked_document_or_a_message_naming_the_cell(tiers, terms, costs, promotion):
    before = copy.deepcopy(SHIPPED)
    try:
        document = edited(SHIPPED, tiers, terms, promotion, costs)
        parse_document(json.dumps(document, allow_nan=False), market=MARKET)
    except PricingError as error:
        problems = error.params["problems"]
        assert problems and all(isinstance(p, Problem) and ":" in p for p in problems)
        said = [Translator("zh-CN").problem(p) for p in problems]  # every one has its Chinese words
        assert all(p.path in s and "problem." not in s for p, s in zip(problems, said, strict=True))
    assert before == SHIPPED


def test_a_cell_that_is_not_a_figure_names_its_row_and_field():
    tiers = [{"up_to_yuan": 100, "rate_percent": "four"}, {"up_to_yuan": math.nan, "rate_percent": 3}]
    try:
        edited(SHIPPED, tiers, offer_terms(SHIPPED), None, cost_rows(SHIPPED))
    except PricingError as error:
        assert error.params["problems"] == ["tiers[1].rate_percent: not a number"]  # rows from 1, as shown
    else:
        raise AssertionError("a rate of 'four' was accepted")


def test_the_approvers_diff_shows_what_changed_not_how_it_was_written():
    document = json.dumps(SHIPPED, ensure_ascii=False)
    rewritten = json.dumps(SHIPPED, ensure_ascii=False, indent=4, sort_keys=False)  # same terms, other layout
    assert document_diff(document, rewritten) == []
    cheaper = copy.deepcopy(SHIPPED)
    cheaper["own_offer"]["fee"]["tiers"][0]["rate"] = "0.01"
    changes = document_diff(document, json.dumps(cheaper))
    removed = [line for line in changes if line.startswith("-") and not line.startswith("---")]
    added = [line for line in changes if line.startswith("+") and not line.startswith("+++")]
    assert len(removed) == len(added) == 1 and '"0.01"' in added[0]
    assert changes[:2] == ["--- live", "+++ submitted"]


def test_problems_are_said_in_the_readers_language_with_their_field_path():
    """The lab showed "未保存,以下问题需要修改: own_offer.fee.cap_yuan: below floor_yuan" in Chinese."""
    document = copy.deepcopy(SHIPPED)
    document["own_offer"]["fee"]["cap_yuan"] = "0.10"
    with pytest.raises(PricingError) as caught:
        parse_document(json.dumps(document), market=MARKET)
    error = caught.value
    (problem,) = error.params["problems"]
    assert problem == "own_offer.fee.cap_yuan: below floor_yuan"  # the English line, as before
    assert Translator("zh-CN").problem(problem) == "own_offer.fee.cap_yuan: 低于 floor_yuan"
    assert Translator("en").problem(problem) == str(problem)
    assert "低于 floor_yuan" in Translator("zh-CN").error(error) and "below" not in Translator("zh-CN").error(error)


def test_every_problem_has_its_words_in_both_languages():
    from core.domain.problems import MESSAGES
    from core.i18n import load_messages, placeholders

    for code, english in MESSAGES.items():
        assert load_messages("en")[f"problem.{code}"] == english
        assert placeholders(load_messages("zh-CN")[f"problem.{code}"]) == placeholders(english)
