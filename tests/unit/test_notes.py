"""Words staff type are kept on one line, without control or invisible formatting characters,
with any full mobile number masked (`core.domain.notes`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain.notes import MOBILE_LIKE, kept_words


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("consumer 13800138000 test", "consumer 138****8000 test"),
        ("+86 13912345678 and +8613700001111", "139****5678 and 137****1111"),
        ("order 2026113013800138000 id-x13912345678", "order 2026113013800138000 id-x13912345678"),
        ("=HYPERLINK(1)\x1b[2J\x1b[31mRED\nsecond\tline", "=HYPERLINK(1)[2J[31mRED second line"),
        ("\u202egnp.exe\u200b ok\x07", "gnp.exe ok"),
        ("  called   the owner  ", "called the owner"),
        ("已电话核实，机主本人", "已电话核实，机主本人"),
    ],
)
def test_typed_words_are_kept_readable_on_one_line_with_numbers_masked(typed, kept):
    assert kept_words(typed) == kept


@given(st.text(max_size=300))
def test_nothing_kept_holds_a_control_character_a_line_break_or_a_full_number(typed):
    kept = kept_words(typed)
    assert kept.isprintable()
    assert "\n" not in kept and "\x1b" not in kept and "\u202e" not in kept
    assert MOBILE_LIKE.search(kept) is None
    assert kept_words(kept) == kept  # keeping what was kept changes nothing
