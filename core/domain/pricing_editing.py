"""The pricing document as the lab's editors show it, and back: the own offer's fee tiers, its
terms, a promotion and the routes' cost schedules as rows of plain numbers (yuan and percent),
written back into a copy of a document in its own notation (strings of yuan, decimal rates).

Nothing here judges the terms: the document goes through core.domain.pricing's checks like any
other, which name each problem by its field path. Only what cannot become a figure at all (text
in a number's place, infinity) is refused here, by the same path.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from core.domain.pricing import PricingError
from core.domain.problems import Problem

Row = Mapping[str, Any]
#: No figure of a pricing document is larger (yuan or percent): beyond it, a typo.
LARGEST = Decimal(10) ** 9


def _number(value: Any, path: str, problems: list[Problem]) -> Decimal | None:
    """A finite figure, or None for an empty cell (None, NaN, "")."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        problems.append(Problem(path, "not_number"))
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        problems.append(Problem(path, "not_number"))
        return None
    if not number.is_finite():
        problems.append(Problem(path, "not_number"))
        return None
    if abs(number) > LARGEST:
        problems.append(Problem(path, "beyond"))
        return None
    return number


def _yuan(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(Decimal('0.01')):f}"


def _rate(percent: Decimal | None) -> str | None:
    if percent is None:
        return None
    return f"{(percent / 100).quantize(Decimal('0.000001')).normalize():f}"


def _percent(rate: str | None) -> float | None:
    return None if rate is None else float(Decimal(rate) * 100)


def _float(yuan: str | None) -> float | None:
    return None if yuan is None else float(Decimal(yuan))


def tier_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The own offer's fee tiers: up to (yuan; empty for the last, open-ended one) and rate (%).
    A free own offer has none."""
    fee = document["own_offer"]["fee"]
    tiers = fee.get("tiers") if fee.get("rule") == "tiered_percent" else None
    return [{"up_to_yuan": _float(t.get("up_to_yuan")), "rate_percent": _percent(t["rate"])} for t in tiers or []]


def offer_terms(document: Mapping[str, Any]) -> dict[str, Any]:
    """The own offer's floor, cap and limits in yuan (None where the document has none)."""
    fee, limits = document["own_offer"]["fee"], document["own_offer"]["limits"]
    return {
        "floor_yuan": _float(fee.get("floor_yuan")),
        "cap_yuan": _float(fee.get("cap_yuan")),
        "min_transaction_yuan": _float(limits.get("min_transaction_yuan")),
        "per_transaction_yuan": _float(limits.get("per_transaction_yuan")),
        "per_day_yuan": _float(limits.get("per_day_yuan")),
    }


def promotion_of(document: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = document.get("promotion")
    if not raw:
        return None
    return {"starts": raw["starts"], "ends": raw["ends"], "discount_percent": _percent(raw["fee_discount"])}


def cost_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per route: the partner's rate (%), floor and cap (yuan), resale value and loss rate (%)."""
    rows = []
    for cost in document["costs"]:
        fee = cost["partner_fee"]
        tiers = fee.get("tiers") or [{"rate": "0"}]  # several tiers show as the last one's rate
        rows.append(
            {
                "channel": cost["channel"],
                "partner_rate_percent": _percent(tiers[-1]["rate"]) if fee.get("rule") != "free" else 0.0,
                "partner_floor_yuan": _float(fee.get("floor_yuan")),
                "partner_cap_yuan": _float(fee.get("cap_yuan")),
                "resale_value_percent": _percent(cost["resale_value"]),
                "loss_rate_percent": _percent(cost["loss_rate"]),
            }
        )
    return rows


def _same(row: Row, shown: Row) -> bool:
    """Whether an editor row still holds the figures it was shown with (NaN and None alike)."""

    def plain(value: Any) -> Any:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    return all(plain(row.get(key)) == plain(value) for key, value in shown.items())


def edited(
    document: Mapping[str, Any],
    tiers: Sequence[Row],
    terms: Mapping[str, Any],
    promotion: Mapping[str, Any] | None,
    costs: Sequence[Row],
) -> dict[str, Any]:
    """A copy of `document` with the editors' figures written in. PricingError names every cell
    that is not a figure (row numbers from 1, as the editor shows them); the terms themselves are
    judged when the document is parsed. A cell's path is its editor's and column's
    (`tiers[2].rate_percent`, rows from 1 as the editor shows them)."""
    out: dict[str, Any] = json.loads(json.dumps(document))  # a deep copy of plain JSON data
    problems: list[Problem] = []
    fee, limits = out["own_offer"]["fee"], out["own_offer"]["limits"]
    new_tiers = []
    for i, row in enumerate(tiers, start=1):
        known = len(problems)
        up_to = _number(row.get("up_to_yuan"), f"tiers[{i}].up_to_yuan", problems)
        rate = _number(row.get("rate_percent"), f"tiers[{i}].rate_percent", problems)
        if len(problems) > known:
            continue  # a cell that is not a figure: named already
        if rate is None and up_to is None:
            continue  # an empty row the editor added
        if rate is None:
            problems.append(Problem(f"tiers[{i}].rate_percent", "missing"))
            continue
        new_tiers.append({"up_to_yuan": _yuan(up_to), "rate": _rate(rate)})
    if new_tiers or fee.get("rule") != "free":
        fee["rule"] = "tiered_percent"
        fee["tiers"] = new_tiers
        fee.setdefault("rounding", "half_up")
    for key, target in (("floor_yuan", fee), ("cap_yuan", fee)):
        target[key] = _yuan(_number(terms.get(key), key, problems))
    for key in ("min_transaction_yuan", "per_transaction_yuan", "per_day_yuan"):
        value = _yuan(_number(terms.get(key), key, problems))
        if value is None:
            limits.pop(key, None)
        else:
            limits[key] = value
    if promotion is None:
        out.pop("promotion", None)
    else:
        discount = _number(promotion.get("discount_percent"), "promotion.discount_percent", problems)
        out["promotion"] = {
            "starts": str(promotion.get("starts", "")),
            "ends": str(promotion.get("ends", "")),
            "fee_discount": _rate(discount) if discount is not None else None,
        }
    by_channel = {c["channel"]: c for c in out["costs"]}
    shown = {r["channel"]: r for r in cost_rows(document)}
    for i, row in enumerate(costs, start=1):
        cost = by_channel.get(str(row.get("channel")))
        if cost is None:
            problems.append(Problem(f"costs[{i}].channel", "not_a_route"))
            continue
        if _same(row, shown[cost["channel"]]):
            continue  # untouched: the schedule stays as written (several tiers, say)
        rate = _number(row.get("partner_rate_percent"), f"costs[{i}].partner_rate_percent", problems)
        floor = _number(row.get("partner_floor_yuan"), f"costs[{i}].partner_floor_yuan", problems)
        cap = _number(row.get("partner_cap_yuan"), f"costs[{i}].partner_cap_yuan", problems)
        resale = _number(row.get("resale_value_percent"), f"costs[{i}].resale_value_percent", problems)
        loss = _number(row.get("loss_rate_percent"), f"costs[{i}].loss_rate_percent", problems)
        if (rate is None or rate == 0) and not floor:
            cost["partner_fee"] = {"rule": "free"}
        else:
            cost["partner_fee"] = {
                "rule": "tiered_percent",
                "tiers": [{"up_to_yuan": None, "rate": _rate(rate or Decimal(0))}],
                "floor_yuan": _yuan(floor),
                "cap_yuan": _yuan(cap),
                "rounding": "half_up",
            }
        cost["resale_value"] = _rate(resale) if resale is not None else None
        cost["loss_rate"] = _rate(loss) if loss is not None else None
    if problems:
        raise PricingError("; ".join(problems), key="error.pricing", problems=problems)
    return out


__all__ = ["cost_rows", "edited", "offer_terms", "promotion_of", "tier_rows"]


def document_diff(before: str, after: str, names: tuple[str, str] = ("live", "submitted")) -> list[str]:
    """The changed lines of two pricing documents (what an approver reads), both laid out alike
    first so that only what changed shows, not how it was written; `names` head the two sides."""
    old = json.dumps(json.loads(before), ensure_ascii=False, indent=1, sort_keys=True).splitlines()
    new = json.dumps(json.loads(after), ensure_ascii=False, indent=1, sort_keys=True).splitlines()
    return [line.rstrip() for line in difflib.unified_diff(old, new, *names, n=1, lineterm="")]
