"""The portal's economics and its own offer, as versioned data.

For every route the portal operates (a channel of the catalog) the user pays the channel's
published terms — the fee Compare shows. What the route costs the portal is its **cost schedule**:

    partner fee       what the payout partner charges per transaction: tiers, a minimum and a cap,
                      written like a channel's fee rule
    resale value      what one yuan of recovered face value fetches when the portal resells or uses
                      it, as a share (0.97: three fen in the yuan are lost)
    loss rate         the share of recovered face value expected to be lost (charge-backs, fraud)

so that, per transaction of `amount` fen with the user's fee `fee`:

    cost   = partner_fee(amount) + amount × (1 − resale value) + amount × loss rate
    margin = fee − cost

The ledger books only what is owed on the day: the partner's fee to `partner_fees_payable` and the
rest of the user's fee to `fee_revenue` (our margin); the resale shortfall and the expected losses
are the lab's estimates, not movements of money.

The portal's **own offer** (本平台直收, channel id `direct`, kind `own_offer`) is a channel in the
catalog's own format, validated the same way, plus an optional promotion window that discounts
its fee. A **pricing version** holds both — the own offer and every route's cost schedule — and
moves draft → submitted → live (approved by a second person) → retired, or submitted → declined.
Only the live version quotes; a quote locked under one version is honoured under it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from core.domain.calendar import FIRST_BUSINESS_DAY
from core.domain.catalog import (
    LANGUAGES,
    Channel,
    ChannelKind,
    FieldReader,
    NoFee,
    Tier,
    TieredPercentFee,
    channel_from_dict,
    date_field,
    rate_field,
    read_fee_rule,
)
from core.domain.notes import kept_words, text_problem
from core.domain.problems import Problem, ProblemValue, quoted
from core.errors import CatalogError, InputError
from core.money import PPM, Rounding, apply_rate

OWN_OFFER_ID = "direct"
SCHEMA_VERSION = 1
#: A document larger than this is not a pricing schedule (a page's upload or a script's mistake).
MAX_DOCUMENT_BYTES = 64 * 1024
#: The longest own offer name (a channel's name in a table on a phone) and the longest note.
NAME_MAX, NOTE_MAX = 40, 300


class VersionStatus(enum.StrEnum):
    DRAFT = "draft"  # the author is still editing it
    SUBMITTED = "submitted"  # waiting for an admin who is not the author
    LIVE = "live"  # approved: the one version that quotes (one at a time)
    RETIRED = "retired"  # was live; another version replaced it
    DECLINED = "declined"  # an admin declined it; it never quoted


class PricingError(InputError):
    """A pricing document that cannot be used: every problem named by its field path."""

    key = "error.pricing"


# --- cost schedules --------------------------------------------------------------------------


@dataclass(frozen=True)
class CostSchedule:
    channel_id: str
    partner_fee: TieredPercentFee | NoFee
    resale_value_ppm: int  # of face value; PPM = resold at face value
    loss_rate_ppm: int

    def partner_fee_fen(self, amount_fen: int) -> int:
        return self.partner_fee.fee(amount_fen)

    def cost_fen(self, amount_fen: int) -> int:
        """The route's whole cost of one transaction of `amount_fen` (the lab's estimate)."""
        shortfall = amount_fen - apply_rate(amount_fen, self.resale_value_ppm, Rounding.DOWN)
        loss = apply_rate(amount_fen, self.loss_rate_ppm, Rounding.HALF_UP)
        return self.partner_fee_fen(amount_fen) + shortfall + loss


@dataclass(frozen=True)
class Promotion:
    """From `starts` to `ends` (Shanghai days, inclusive) the own offer's fee is discounted."""

    starts: dt.date
    ends: dt.date
    fee_discount_ppm: int  # 500_000: half the fee

    def applies(self, day: dt.date) -> bool:
        return self.starts <= day <= self.ends


@dataclass(frozen=True)
class PricingSchedule:
    """One version's content: the own offer and the cost schedule of every route."""

    own_offer: Channel
    promotion: Promotion | None
    costs: Mapping[str, CostSchedule]  # by channel id, the own offer's included

    def own_offer_on(self, day: dt.date) -> Channel:
        """The own offer as it quotes on `day`: with the promotion's discount inside its window."""
        if self.promotion is None or not self.promotion.applies(day):
            return self.own_offer
        return replace(self.own_offer, fee=discounted(self.own_offer.fee, self.promotion.fee_discount_ppm))


def discounted(fee: TieredPercentFee | NoFee, discount_ppm: int) -> TieredPercentFee | NoFee:
    """A fee rule charging (1 − discount) of what `fee` charges: rates, floor and cap alike."""
    return scale_fee(fee, PPM - discount_ppm)


def scale_fee(fee: TieredPercentFee | NoFee, factor_ppm: int) -> TieredPercentFee | NoFee:
    """A fee rule charging factor (parts per million) × what `fee` charges: rates, floor and cap
    alike, each rounded down (a fee never exceeds the transaction). PPM is `fee` itself."""
    if isinstance(fee, NoFee) or factor_ppm == PPM:
        return fee
    return TieredPercentFee(
        tuple(Tier(t.up_to_fen, apply_rate(t.rate_ppm, factor_ppm, Rounding.DOWN)) for t in fee.tiers),
        apply_rate(fee.floor_fen, factor_ppm, Rounding.DOWN),
        None if fee.cap_fen is None else apply_rate(fee.cap_fen, factor_ppm, Rounding.DOWN),
        fee.rounding,
    )


# --- reading a document ----------------------------------------------------------------------


def _share(value: Any) -> int:
    ppm = rate_field(value)
    if not 0 <= ppm <= PPM:
        raise ProblemValue("share")
    return ppm


def schedule_from_dict(
    data: Any, *, market: Mapping[str, Channel], source: str = "pricing", strict: bool = True
) -> PricingSchedule:
    """A pricing document, checked whole: the own offer as a catalog channel of kind own_offer
    with the id `direct`, an optional promotion, and one cost schedule for each of the market's
    channels and for the own offer. PricingError lists every problem by field path.

    `strict=False` reads a version already approved against a market that has moved since (a
    channel added to the catalog or gone from it): a cost row for a channel no longer there is
    left out, and a channel without one has no known cost — everything else is checked alike.
    A draft is saved, submitted and approved strictly."""
    r = FieldReader()
    problems = r.problems
    if not isinstance(data, Mapping):
        problem = Problem("", "not_object")
        raise PricingError(f"{source}: {problem}", key="error.pricing", source=source, problems=[problem])
    version = r.get(data, "", "schema_version", int)
    if version is not None and version != SCHEMA_VERSION:
        r.add("schema_version", "schema_version", value=version, supported=SCHEMA_VERSION)
    own_offer = None
    raw_offer = r.get(data, "", "own_offer", dict)
    if raw_offer is not None and raw_offer.get("id") == "":  # the catalog's reader cannot take an empty id
        r.add("own_offer.id", "must_be", value=repr(OWN_OFFER_ID))
        raw_offer = {**raw_offer, "id": OWN_OFFER_ID}  # still read the rest, for its problems
    if strict:
        problems.extend(_text_problems(data, raw_offer))
    elif raw_offer is not None:  # approved before names were checked: shown cleaned, never refused
        raw_offer = _cleaned_texts(raw_offer)
    if raw_offer is not None:
        try:
            own_offer = channel_from_dict(raw_offer, source=source, path="own_offer")
        except CatalogError as exc:
            problems.extend(exc.params.get("problems") or [str(exc)])
    if own_offer is not None and own_offer.id != OWN_OFFER_ID:
        r.add("own_offer.id", "must_be", value=repr(OWN_OFFER_ID))
    if own_offer is not None and own_offer.kind is not ChannelKind.OWN_OFFER:
        r.add("own_offer.kind", "must_be", value="own_offer")
    promotion = _read_promotion(r, data.get("promotion"), strict=strict)
    costs: dict[str, CostSchedule] = {}
    named: set[str] = set()  # channels with a cost row, readable or not
    for i, raw in enumerate(r.get(data, "", "costs", list) or []):
        path = f"costs[{i}]"
        channel_id = r.get(raw, path, "channel", str)
        named.add(channel_id or "")
        fee = read_fee_rule(r, r.get(raw, path, "partner_fee", dict) or {}, f"{path}.partner_fee")
        resale = r.get(raw, path, "resale_value", _share)
        loss = r.get(raw, path, "loss_rate", _share)
        if channel_id is None or fee is None or resale is None or loss is None:
            continue
        if channel_id in costs:
            r.add(f"{path}.channel", "second_cost", route=quoted(channel_id))
        elif channel_id != OWN_OFFER_ID and channel_id not in market:
            if strict:
                r.add(f"{path}.channel", "not_in_catalog", route=quoted(channel_id))
            continue
        costs[channel_id] = CostSchedule(channel_id, fee, resale, loss)
    missing = [c for c in (*market, OWN_OFFER_ID) if c not in named and (strict or c == OWN_OFFER_ID)]
    if missing and isinstance(data.get("costs"), list):
        r.add("costs", "no_cost", routes=", ".join(missing))
    if problems or own_offer is None:
        raise PricingError(
            f"{source}: " + "; ".join(problems), key="error.pricing", source=source, problems=list(problems)
        )
    return PricingSchedule(own_offer, promotion, costs)


def _texts(data: Mapping[str, Any], offer: Any) -> list[tuple[str, Mapping[str, Any], int]]:
    """The texts a version shows to everyone, as (path, the text by language, longest): the own
    offer's name, its provenance notes and the document's note."""
    texts: list[tuple[str, Any, int]] = []
    offer = offer if isinstance(offer, Mapping) else {}
    texts.append(("own_offer.name", offer.get("name"), NAME_MAX))
    for block in ("serves", "fee", "payout", "speed", "limits"):
        raw = offer.get(block)
        provenance = raw.get("provenance") if isinstance(raw, Mapping) else None
        if isinstance(provenance, Mapping):
            texts.append((f"own_offer.{block}.provenance.note", provenance.get("note"), NOTE_MAX))
    if "note" in data:
        texts.append(("note", data.get("note"), NOTE_MAX))
    return [t for t in texts if isinstance(t[1], Mapping)]  # missing or not a map: the catalog's reader names it


def _text_problems(data: Mapping[str, Any], offer: Any) -> list[Problem]:
    """The texts (`_texts`) that could not be shown as one line exactly as written."""
    problems = []
    for path, by_language, most in _texts(data, offer):
        for language in LANGUAGES:
            if language not in by_language:
                continue  # named by the catalog's reader
            problem = text_problem(by_language[language], most)
            if problem is not None:
                problems.append(Problem(f"{path}.{language}", f"text_{problem}", most=most))
    return problems


def _cleaned_texts(offer: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the own offer with its texts as staff words are kept (`kept_words`), cut to
    their length: how a version approved before the texts were checked is shown."""
    copied: dict[str, Any] = json.loads(json.dumps(offer))
    for _, by_language, most in _texts({}, copied):
        for language, text in list(by_language.items()):
            if isinstance(text, str) and text_problem(text, most) is not None:
                cast(dict[str, Any], by_language)[language] = kept_words(text)[:most] or "—"
    return copied


#: The days a promotion may name: from the first business day the books know to the end of the
#: century (year 1 or 9999 is a typing slip, not a promotion).
PROMOTION_DAYS = (FIRST_BUSINESS_DAY, dt.date(2099, 12, 31))


def _day(value: Any) -> dt.date:
    """A date written as the text "2026-12-01" (not the number 20261201 that `date_field` takes)."""
    if not isinstance(value, str) or len(value) != 10:
        raise ProblemValue("date_text")
    return date_field(value)


def _read_promotion(r: FieldReader, raw: Any, *, strict: bool) -> Promotion | None:
    """The promotion, its days within `PROMOTION_DAYS` (a version approved before they were
    checked is read as approved)."""
    if raw is None:
        return None
    starts = r.get(raw, "promotion", "starts", _day)
    ends = r.get(raw, "promotion", "ends", _day)
    first, last = PROMOTION_DAYS
    for name, day in (("starts", starts), ("ends", ends)):
        if strict and day is not None and not first <= day <= last:
            r.add(f"promotion.{name}", "day_range", value=day.isoformat(), first=first, last=last)
            return None
    discount = r.get(raw, "promotion", "fee_discount", _share)
    if starts is None or ends is None or discount is None:
        return None
    if ends < starts:
        r.add("promotion.ends", "before", bound="promotion.starts")
        return None
    return Promotion(starts, ends, discount)


def parse_document(
    text: str | bytes, *, market: Mapping[str, Channel], source: str = "pricing", strict: bool = True
) -> PricingSchedule:
    """A pricing document from JSON text (a file, an upload, a stored version; see
    `schedule_from_dict` for `strict`)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        problem = Problem("", "too_large", most=MAX_DOCUMENT_BYTES)
        raise PricingError(f"{source}: {problem}", key="error.pricing", source=source, problems=[problem])
    if isinstance(text, str):
        text = text.removeprefix("\ufeff")  # a byte-order mark, as an editor on Windows saves UTF-8
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        problem = Problem("", "not_json", kind=type(exc).__name__)
        raise PricingError(f"{source}: {problem}", key="error.pricing", source=source, problems=[problem]) from None
    return schedule_from_dict(data, market=market, source=source, strict=strict)


__all__ = [
    "MAX_DOCUMENT_BYTES",
    "OWN_OFFER_ID",
    "CostSchedule",
    "PricingError",
    "PricingSchedule",
    "Promotion",
    "VersionStatus",
    "discounted",
    "parse_document",
    "schedule_from_dict",
]
