"""Figures as people type them (`core.domain.typed_text.folded`): every script's decimal digits are
digits, full-width punctuation folds to ASCII, and characters that only look like digits are
never read as digits, by any parser of typed figures."""

from __future__ import annotations

import pytest

from core.domain.catalog import PayoutForm
from core.domain.codes import is_six_digits, typed_code
from core.domain.payee import InvalidPayee, canonical_payee, parse_payee
from core.domain.typed_text import folded


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("13800138000", "13800138000"),  # ASCII as it is
        ("１３８，．", "138,."),  # a Chinese input method's full-width forms
        ("١٣٨", "138"),  # Arabic-Indic
        ("१३८", "138"),  # Devanagari
        ("ｐ＠ｅｘａｍｐｌｅ．ｃｏｍ", "p@example.com"),
    ],
)
def test_every_scripts_decimal_digits_and_full_width_forms_read_as_ascii(typed, meant):
    assert folded(typed) == meant


@pytest.mark.parametrize("odd", ["①", "²", "₁₂", "⒈", "㉑", "❶", "፩", "➇", "1²3"])
def test_characters_that_only_look_like_digits_are_not_read_as_any(odd):
    assert folded(odd) is None


@pytest.mark.parametrize("odd", ["²²²²²²", "①②③④⑤⑥", "12345⁶"])
def test_a_code_typed_with_characters_that_only_look_like_digits_is_no_code(odd):
    assert not is_six_digits(typed_code(odd))


def test_a_code_typed_full_width_or_in_another_script_is_its_digits():
    assert typed_code("１２３ ４５６") == "123456" and is_six_digits(typed_code("١٢٣٤٥٦"))


@pytest.mark.parametrize(
    ("form", "odd"),
    [
        (PayoutForm.CASH_BANK_CARD, "62220202000012³⁵"),  # a valid card number, had ³⁵ been 35
        (PayoutForm.CASH_WALLET, "p²@example.com"),
        (PayoutForm.CASH_WALLET, "①③⁸00138000"),
    ],
)
def test_a_payout_account_typed_with_characters_that_only_look_like_digits_is_refused(form, odd):
    with pytest.raises(InvalidPayee):
        parse_payee(form, odd)


def test_a_wallet_number_in_another_scripts_digits_is_kept_in_its_ascii_form():
    assert canonical_payee("١٣٨٠٠١٣٨٠٠٠") == "13800138000"
    assert parse_payee(PayoutForm.CASH_WALLET, "+86 １３８-0013-8000") == "13800138000"
