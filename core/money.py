"""Money is integer fen (1 CNY = 100 fen). `Decimal` appears only to parse and to display.

There is one way to make an amount from user text (`parse_amount`) and one way to turn a rate
into fen (`apply_rate`); every rounding rule has a name. A float never touches money: parsing
refuses float objects and float notation (exponents, NaN, infinities).
"""

from __future__ import annotations

import enum
import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from core.domain import typed_text
from core.errors import InvalidAmount, InvalidValuation

FEN_PER_YUAN = 100
PPM = 1_000_000  # rates are integer parts per million: exact, and the same in numpy

#: A phone balance above this is not plausible; the parser refuses it as absurd.
MAX_BALANCE_FEN = 100_000 * FEN_PER_YUAN
#: Credit-card limits run higher than balances, but not without bound.
MAX_CREDIT_LIMIT_FEN = 10_000_000 * FEN_PER_YUAN

_GROUPED = re.compile(r"^[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$")
_PLAIN = re.compile(r"^[0-9]+(\.[0-9]*)?$")


class Rounding(enum.Enum):
    """How a fractional fen becomes a whole fen. Each fee or value rule names one."""

    HALF_UP = "half_up"  # commercial rounding: 0.5 fen and above rounds up
    DOWN = "down"  # toward zero: never credits the user a fen that is not there
    UP = "up"  # away from zero: a fee never undercharged by a fraction


def _normalise(text: str) -> str | None:
    folded = typed_text.folded(text)
    if folded is None:
        return None
    text = folded.strip()
    text = text.replace("。", ".").replace("､", ",").replace("、", ",")
    for prefix in ("CNY", "RMB", "¥", "￥"):
        if text.upper().startswith(prefix):
            text = text[len(prefix) :].strip()
    for suffix in ("元", "CNY", "RMB"):
        if text.upper().endswith(suffix):
            text = text[: -len(suffix)].strip()
    # A space may group thousands like a comma ("1 200"), and is checked like one.
    return re.sub(r"[ \u202f\u00a0]", ",", text)


def parse_amount(text: object, *, maximum_fen: int = MAX_BALANCE_FEN, field: str = "amount") -> int:
    """Read a CNY amount the way people type it and return integer fen.

    Accepts full-width digits, `¥`/`元` marks and correctly placed thousands separators
    (`1,200.50`, `１２００`, `¥1，200元`). Refuses float objects, exponents, NaN, infinities,
    signs, zero, more than two decimals and amounts above `maximum_fen`.
    """
    if isinstance(text, (bool, float)):
        raise InvalidAmount(f"{field}: give the amount as text, not a float", key="error.amount.float", field=field)
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        raise InvalidAmount(f"{field}: not an amount", key="error.amount.invalid", field=field)
    cleaned = _normalise(text)
    if cleaned is None:
        raise InvalidAmount(
            f"{field}: '{text[:20]}' is not an amount like 1200 or 1,200.50", key="error.amount.invalid", field=field
        )
    if not cleaned:
        raise InvalidAmount(f"{field}: enter an amount", key="error.amount.empty", field=field)
    if cleaned.startswith("-") or cleaned.startswith("+"):
        raise InvalidAmount(f"{field}: no signs, the amount must be positive", key="error.amount.negative", field=field)
    if not (_PLAIN.match(cleaned) or _GROUPED.match(cleaned)):
        raise InvalidAmount(
            f"{field}: '{text[:20]}' is not an amount like 1200 or 1,200.50", key="error.amount.invalid", field=field
        )
    digits = cleaned.replace(",", "")
    whole, _, decimals = digits.partition(".")
    whole = whole.lstrip("0")  # 0001 is 1: its length says nothing of its size
    if len(decimals) > 2:
        raise InvalidAmount(f"{field}: at most two decimals (fen)", key="error.amount.decimals", field=field)
    if len(whole) > 15:
        raise InvalidAmount(
            f"{field}: amount too large", key="error.amount.too_large", field=field, maximum=format_fen(maximum_fen)
        )
    fen = int(whole or "0") * FEN_PER_YUAN + int((decimals + "00")[:2])
    if fen <= 0:
        raise InvalidAmount(f"{field}: must be more than 0", key="error.amount.zero", field=field)
    if fen > maximum_fen:
        raise InvalidAmount(
            f"{field}: at most {format_fen(maximum_fen)}",
            key="error.amount.too_large",
            field=field,
            maximum=format_fen(maximum_fen),
        )
    return fen


def yuan_to_fen(text: str) -> int:
    """Exact conversion for figures in data files ("500.00"); refuses anything inexact."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a non-negative finite amount: {text!r}")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"more than two decimals: {text!r}")
    return int(fen)


def rate_to_ppm(text: str) -> int:
    """An exact rate in [0, 1] ("0.025") as integer parts per million; refuses anything inexact."""
    try:
        value = Decimal(str(text)) if not isinstance(text, float) else None
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal rate: {text!r}") from exc
    if value is None or not value.is_finite() or not (0 <= value <= 1):
        raise ValueError(f"not a rate between 0 and 1: {text!r}")
    ppm = value * PPM
    if ppm != ppm.to_integral_value():
        raise ValueError(f"more precision than parts per million: {text!r}")
    return int(ppm)


def parse_valuation(text: object, *, field: str = "valuation") -> int:
    """A user's valuation of vouchers or points, as a share of face value (0 < v <= 1), in ppm.

    Accepts "0.8", "80%" and full-width forms; refuses float objects like amounts do.
    """
    if isinstance(text, (bool, float)) or not isinstance(text, str):
        raise InvalidValuation(f"{field}: give the valuation as text", key="error.valuation.invalid", field=field)
    cleaned = (typed_text.folded(text) or "?").strip()  # "?": not a share, as anything else unreadable
    scale = Decimal(1)
    if cleaned.endswith("%"):
        cleaned, scale = cleaned[:-1].strip(), Decimal(100)
    if not _PLAIN.match(cleaned):
        raise InvalidValuation(
            f"{field}: '{text[:20]}' is not a share like 0.8 or 80%", key="error.valuation.invalid", field=field
        )
    ppm = int((Decimal(cleaned) / scale * PPM).to_integral_value(rounding=ROUND_HALF_UP))
    if not (0 < ppm <= PPM):  # checked after rounding: a share too small to count is zero
        raise InvalidValuation(
            f"{field}: must be above 0 and at most 1 (100%)", key="error.valuation.range", field=field
        )
    return ppm


def apply_rate(fen: int, rate_ppm: int, rounding: Rounding) -> int:
    """`fen × rate` in whole fen, rounded by the named rule. Integer arithmetic only."""
    if fen < 0 or rate_ppm < 0:
        raise ValueError("apply_rate works on non-negative amounts and rates")
    product = fen * rate_ppm
    if rounding is Rounding.DOWN:
        return product // PPM
    if rounding is Rounding.UP:
        return -((-product) // PPM)
    return (product + PPM // 2) // PPM


def to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"), rounding=ROUND_DOWN)


def format_fen(fen: int, *, symbol: str = "¥") -> str:
    """¥1,200.00 — the format both zh-CN and en readers expect for CNY."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{symbol}{to_yuan(abs(fen)):,.2f}"


def format_ppm_percent(ppm: int) -> str:
    """A rate in ppm as a percentage with at most two decimals: 25000 -> '2.5%'."""
    value = (Decimal(ppm) / 10_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()
    return f"{value:f}%"
