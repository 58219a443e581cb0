import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidAmount, InvalidValuation
from core.money import (
    MAX_BALANCE_FEN,
    PPM,
    Rounding,
    apply_rate,
    format_fen,
    parse_amount,
    parse_valuation,
    rate_to_ppm,
    yuan_to_fen,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1200", 120000),
        ("1,200.50", 120050),
        ("１２００", 120000),
        ("１，２００．５", 120050),
        ("¥1,200元", 120000),
        ("￥ 0.01", 1),
        ("  88.8 ", 8880),
        ("1 200", 120000),
        ("12。5", 1250),
        ("100000", MAX_BALANCE_FEN),
        ("١٢٠", 12000),  # another script's decimal digits are digits
        ("٣.٥", 350),
        ("00000000000000001", 100),  # leading zeros are no size
        ("0" * 40 + "1.50", 150),
        ("0.5", 50),
        ("0,001", 100),
    ],
)
def test_parse_amount_reads_what_people_type(text, fen):
    assert parse_amount(text) == fen


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "error.amount.empty"),
        ("   ", "error.amount.empty"),
        ("-5", "error.amount.negative"),
        ("+5", "error.amount.negative"),
        ("0", "error.amount.zero"),
        ("0.00", "error.amount.zero"),
        ("1.234", "error.amount.decimals"),
        ("NaN", "error.amount.invalid"),
        ("inf", "error.amount.invalid"),
        ("Infinity", "error.amount.invalid"),
        ("1e3", "error.amount.invalid"),
        ("12,34", "error.amount.invalid"),
        ("1,2345", "error.amount.invalid"),
        ("abc", "error.amount.invalid"),
        ("100000.01", "error.amount.too_large"),
        ("9" * 40, "error.amount.too_large"),
        ("0x10", "error.amount.invalid"),
        ("12 00", "error.amount.invalid"),
        ("1 2 3 4", "error.amount.invalid"),
        ("²", "error.amount.invalid"),  # NFKC would fold each of these into digits
        ("①", "error.amount.invalid"),
        ("¹²⁰", "error.amount.invalid"),
        ("₁₂", "error.amount.invalid"),
        ("1²", "error.amount.invalid"),
        ("⒈", "error.amount.invalid"),
        ("㉑", "error.amount.invalid"),
        ("¥①,²⁰⁰元", "error.amount.invalid"),
    ],
)
def test_parse_amount_refuses_bad_input_with_a_named_reason(text, key):
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text)
    assert caught.value.key == key


@pytest.mark.parametrize("value", [12.5, math.nan, math.inf, True])
def test_parse_amount_refuses_float_objects(value):
    with pytest.raises(InvalidAmount):
        parse_amount(value)


@given(st.integers(min_value=1, max_value=MAX_BALANCE_FEN))
def test_formatted_amount_parses_back_to_the_same_fen(fen):
    assert parse_amount(format_fen(fen)) == fen


@given(st.text(max_size=30))
def test_parse_amount_either_returns_positive_fen_or_raises_input_error(text):
    try:
        fen = parse_amount(text)
    except InvalidAmount:
        return
    assert isinstance(fen, int) and 0 < fen <= MAX_BALANCE_FEN


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=PPM))
def test_rounding_rules_bracket_the_exact_product(fen, rate):
    exact = fen * rate / PPM
    down, half, up = (apply_rate(fen, rate, r) for r in (Rounding.DOWN, Rounding.HALF_UP, Rounding.UP))
    assert down <= half <= up
    assert up - down <= 1
    assert down <= exact <= up or math.isclose(down, exact)


def test_half_up_rounds_half_a_fen_up():
    assert apply_rate(10, 50_000, Rounding.HALF_UP) == 1  # 0.5 fen -> 1
    assert apply_rate(10, 49_999, Rounding.HALF_UP) == 0


def test_data_file_figures_must_be_exact():
    assert yuan_to_fen("500.00") == 50000
    assert rate_to_ppm("0.025") == 25000
    for bad in ("1.001", "-1", "NaN"):
        with pytest.raises(ValueError):
            yuan_to_fen(bad)
    for bad in ("1.5", "0.0000001", 0.025):
        with pytest.raises(ValueError):
            rate_to_ppm(bad)


@pytest.mark.parametrize(
    ("text", "ppm"), [("0.8", 800_000), ("80%", 800_000), ("１００％", PPM), ("0.95", 950_000), ("٠.٨", 800_000)]
)
def test_valuations_read_as_shares_or_percentages(text, ppm):
    assert parse_valuation(text) == ppm


@pytest.mark.parametrize(
    "text", ["0", "1.2", "120%", "-0.5", "abc", "", "0.0000004", "0.00004%", "1.0000006", "⁰.⁸", "⑧⓪%"]
)
def test_valuations_outside_zero_to_one_are_refused(text):
    with pytest.raises(InvalidValuation):
        parse_valuation(text)


def test_format_fen_uses_thousands_and_two_decimals():
    assert format_fen(120050) == "¥1,200.50"
    assert format_fen(1) == "¥0.01"
