"""The channel catalog: every recovery channel's terms, each figure with where it comes from.

`catalog_from_dict` turns the data (the bundled file or a live feed, same schema) into
immutable objects, or raises `CatalogError` listing every problem with its field path.
`catalog_problems`-style checks are plain functions returning problems (beancount's habit).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from core.domain.carriers import Carrier
from core.domain.problems import Problem, ProblemValue, quoted
from core.errors import CatalogError, InvalidCarrier
from core.money import MAX_CREDIT_LIMIT_FEN, PPM, Rounding, apply_rate, rate_to_ppm, yuan_to_fen

SCHEMA_VERSION = 1
LANGUAGES = ("zh-CN", "en")


class ChannelKind(enum.Enum):
    THIRD_PARTY_PAYMENT = "third_party_payment"
    CARRIER_APP = "carrier_app"
    BANK_POINTS = "bank_points"
    OWN_OFFER = "own_offer"  # the portal's own direct recovery, whose terms the portal sets


class PayoutForm(enum.Enum):
    CASH_WALLET = "cash_wallet"
    CASH_BANK_CARD = "cash_bank_card"
    E_VOUCHER = "e_voucher"
    POINTS = "points"

    @property
    def is_cash(self) -> bool:
        return self in (PayoutForm.CASH_WALLET, PayoutForm.CASH_BANK_CARD)


class Basis(enum.Enum):
    ARTICLE = "article"  # the source article's own figure (it gives no sources of its own)
    ESTIMATE = "estimate"  # chosen by this project inside the article's range, or absent from it


@dataclass(frozen=True)
class Provenance:
    basis: Basis
    note: Mapping[str, str]


# --- fee rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    up_to_fen: int | None  # inclusive upper bound of a transaction's amount; None = no bound
    rate_ppm: int


@dataclass(frozen=True)
class TieredPercentFee:
    """The rate of the tier a transaction falls in, on the whole transaction; floor and cap."""

    tiers: tuple[Tier, ...]
    floor_fen: int
    cap_fen: int | None
    rounding: Rounding

    def rate_for(self, amount_fen: int) -> int:
        for tier in self.tiers:
            if tier.up_to_fen is None or amount_fen <= tier.up_to_fen:
                return tier.rate_ppm
        return self.tiers[-1].rate_ppm

    def fee(self, amount_fen: int) -> int:
        fee = max(self.floor_fen, apply_rate(amount_fen, self.rate_for(amount_fen), self.rounding))
        if self.cap_fen is not None:
            fee = min(fee, self.cap_fen)
        return min(fee, amount_fen)

    def breakpoints(self) -> list[int]:
        return [t.up_to_fen for t in self.tiers if t.up_to_fen is not None]


@dataclass(frozen=True)
class NoFee:
    """Free of charge: the cost, if any, hides in the payout form (vouchers, points)."""

    def fee(self, amount_fen: int) -> int:
        return 0

    def breakpoints(self) -> list[int]:
        return []


FeeRule = TieredPercentFee | NoFee


# --- who is served ---------------------------------------------------------------------------


class ServesRule(enum.Enum):
    LISTED = "listed"  # the carriers listed
    OWN_NETWORK = "own_network"  # only the channel's own carrier's subscribers
    BOUND_CARD_CARRIER = "bound_card_carrier"  # only the carrier of the bank card's bound phone


@dataclass(frozen=True)
class Serves:
    rule: ServesRule
    carriers: frozenset[Carrier]  # LISTED: served ones; OWN_NETWORK: the one own network


# --- speed -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instant:
    pass


@dataclass(frozen=True)
class WorkingDays:
    minimum: int
    maximum: int


@dataclass(frozen=True)
class TPlus:
    days: int
    cutoff: dt.time  # orders after the cut-off (Asia/Shanghai) count from the next working day


Speed = Instant | WorkingDays | TPlus


# --- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    min_transaction_fen: int
    per_transaction_fen: int | None
    per_transaction_share_of_credit_limit_ppm: int | None
    share_of_balance_ppm: int | None
    per_day_fen: int | None
    per_month_fen: int | None


@dataclass(frozen=True)
class Channel:
    id: str
    name: Mapping[str, str]
    kind: ChannelKind
    serves: Serves
    fee: FeeRule
    payout_form: PayoutForm
    payout_value_ppm: int  # what one yuan of face value is worth in cash, by default
    points_per_yuan: int | None
    speed: Speed
    limits: Limits
    as_of: dt.date
    provenance: Mapping[str, Provenance]  # per block: serves, fee, payout, speed, limits

    def display_name(self, language: str) -> str:
        return self.name.get(language) or self.name["en"]


@dataclass(frozen=True)
class CatalogSource:
    """Where the catalog's figures come from, as the Methodology page cites it."""

    title: str
    url: str
    note: Mapping[str, str]  # by language


@dataclass(frozen=True)
class Catalog:
    channels: tuple[Channel, ...]
    as_of: dt.date
    source: CatalogSource | None = None

    def by_id(self) -> dict[str, Channel]:
        return {c.id: c for c in self.channels}


# --- reading ---------------------------------------------------------------------------------

T = TypeVar("T")


class _Reader:
    """Walks a dict, collecting every problem with its field path instead of stopping at one."""

    def __init__(self) -> None:
        self.problems: list[str] = []  # each a Problem

    def add(self, path: str, code: str, **params: Any) -> None:
        self.problems.append(Problem(path, code, **params))

    def get(self, data: Any, path: str, key: str, convert: Callable[[Any], T], *, optional: bool = False) -> T | None:
        full = f"{path}.{key}" if path else key
        if not isinstance(data, Mapping):
            self.add(path, "not_object")
            return None
        if key not in data or data[key] is None:
            if not optional:
                self.add(full, "missing")
            return None
        try:
            return convert(data[key])
        except ProblemValue as exc:
            self.problems.append(exc.at(full))
        except InvalidCarrier as exc:
            self.add(full, "carrier", value=quoted(data[key]), choices=exc.params.get("choices", ""))
        except (ValueError, TypeError, KeyError):
            self.add(full, "invalid")
        return None


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(value.get(lang), str) and value.get(lang) for lang in LANGUAGES
    ):
        raise ProblemValue("texts", languages=", ".join(LANGUAGES))
    return {lang: value[lang] for lang in LANGUAGES}


#: Bounds on what any terms (bundled or from a partner's feed) may say: beyond them a figure is
#: an error, not a term, and must not reach every user's quote.
MAX_TERMS_FEN = MAX_CREDIT_LIMIT_FEN
MAX_DAYS = 60
MAX_POINTS_PER_YUAN = 10_000


def _money(value: Any) -> int:
    if not isinstance(value, str):
        raise ProblemValue("money_text")
    try:
        fen = yuan_to_fen(value)
    except ValueError:
        raise ProblemValue("money", value=quoted(value)) from None
    if fen > MAX_TERMS_FEN:
        raise ProblemValue("implausible", value=value[:40])
    return fen


def _rate(value: Any) -> int:
    if not isinstance(value, str):
        raise ProblemValue("rate_text")
    try:
        return rate_to_ppm(value)
    except ValueError:
        raise ProblemValue("rate", value=quoted(value)) from None


def _bounded_int(high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ProblemValue("whole_number", high=high)
        return value

    return convert


_days = _bounded_int(MAX_DAYS)


def _date(value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ProblemValue("date", value=quoted(value)) from None


def _time(value: Any) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise ProblemValue("time", value=quoted(value)) from None


def _enum(kind: type[enum.Enum]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in kind)
            raise ProblemValue("not_one_of", value=quoted(value), choices=choices) from None

    return convert


def _read_fee(r: _Reader, data: Any, path: str) -> FeeRule | None:
    rule = r.get(data, path, "rule", str)
    if rule == "free":
        return NoFee()
    if rule != "tiered_percent":
        if rule is not None:
            r.add(f"{path}.rule", "not_one_of", value=quoted(rule), choices="tiered_percent, free")
        return None
    tiers_raw = r.get(data, path, "tiers", list) or []
    tiers = []
    for i, raw in enumerate(tiers_raw):
        tpath = f"{path}.tiers[{i}]"
        up_to = r.get(raw, tpath, "up_to_yuan", _money, optional=True)
        rate = r.get(raw, tpath, "rate", _rate)
        if rate is not None:
            tiers.append(Tier(up_to, rate))
    floor = r.get(data, path, "floor_yuan", _money, optional=True) or 0
    cap = r.get(data, path, "cap_yuan", _money, optional=True)
    rounding = r.get(data, path, "rounding", _enum(Rounding))
    if not tiers:
        r.add(f"{path}.tiers", "one_tier")
        return None
    for i, tier in enumerate(tiers[:-1]):
        if tier.up_to_fen is None:
            r.add(f"{path}.tiers[{i}].up_to_yuan", "open_tier_not_last")
    if tiers[-1].up_to_fen is not None:
        r.add(f"{path}.tiers[{len(tiers) - 1}].up_to_yuan", "last_tier_open")
    bounds = [t.up_to_fen for t in tiers if t.up_to_fen is not None]
    if bounds != sorted(set(bounds)):
        r.add(f"{path}.tiers", "bounds_rise")
    if cap is not None and cap < floor:
        r.add(f"{path}.cap_yuan", "below", bound="floor_yuan")
    if rounding is None:
        return None
    return TieredPercentFee(tuple(tiers), floor, cap, rounding)


def _read_speed(r: _Reader, data: Any, path: str) -> Speed | None:
    rule = r.get(data, path, "rule", str)
    if rule == "instant":
        return Instant()
    if rule == "working_days":
        low = r.get(data, path, "min", _days)
        high = r.get(data, path, "max", _days)
        if low is None or high is None:
            return None
        if high < low:
            r.add(f"{path}.max", "below", bound="min")
            return None
        return WorkingDays(low, high)
    if rule == "t_plus":
        days = r.get(data, path, "days", _days)
        cutoff = r.get(data, path, "cutoff", _time)
        if days is None or cutoff is None:
            return None
        return TPlus(days, cutoff)
    if rule is not None:
        r.add(f"{path}.rule", "not_one_of", value=quoted(rule), choices="instant, working_days, t_plus")
    return None


def _read_channel(r: _Reader, data: Any, path: str) -> Channel | None:
    before = len(r.problems)
    cid = r.get(data, path, "id", str)
    name = r.get(data, path, "name", _text_map)
    kind = r.get(data, path, "kind", _enum(ChannelKind))
    as_of = r.get(data, path, "as_of", _date)
    serves_rule, carriers = _read_serves(r, r.get(data, path, "serves", dict) or {}, f"{path}.serves")
    fee = _read_fee(r, r.get(data, path, "fee", dict) or {}, f"{path}.fee")
    form, value, points_per_yuan = _read_payout(r, r.get(data, path, "payout", dict) or {}, f"{path}.payout")
    speed = _read_speed(r, r.get(data, path, "speed", dict) or {}, f"{path}.speed")
    limits = _read_limits(r, r.get(data, path, "limits", dict) or {}, f"{path}.limits")
    provenance = _read_provenance(r, data, path)

    if isinstance(fee, TieredPercentFee) and fee.floor_fen >= limits.min_transaction_fen:
        r.add(f"{path}.fee.floor_yuan", "floor_nets_nothing")

    if len(r.problems) > before:
        return None
    assert cid and name and kind and as_of and serves_rule and fee is not None and form and speed
    return Channel(
        id=cid,
        name=name,
        kind=kind,
        serves=Serves(serves_rule, carriers or frozenset()),
        fee=fee,
        payout_form=form,
        payout_value_ppm=value or PPM,
        points_per_yuan=points_per_yuan,
        speed=speed,
        limits=limits,
        as_of=as_of,
        provenance=provenance,
    )


def _read_serves(r: _Reader, raw: Any, spath: str) -> tuple[ServesRule | None, frozenset[Carrier] | None]:
    serves_rule = r.get(raw, spath, "rule", _enum(ServesRule))
    carriers = r.get(raw, spath, "carriers", lambda v: frozenset(Carrier.parse(c) for c in v), optional=True)
    if serves_rule in (ServesRule.LISTED, ServesRule.OWN_NETWORK) and not carriers:
        r.add(f"{spath}.carriers", "carriers_needed")
    if serves_rule is ServesRule.OWN_NETWORK and carriers and len(carriers) != 1:
        r.add(f"{spath}.carriers", "own_network_one")
    return serves_rule, carriers


def _read_payout(r: _Reader, raw: Any, ppath: str) -> tuple[PayoutForm | None, int | None, int | None]:
    form = r.get(raw, ppath, "form", _enum(PayoutForm))
    value = r.get(raw, ppath, "cash_value", _rate, optional=True)
    points_per_yuan = r.get(raw, ppath, "points_per_yuan", _bounded_int(MAX_POINTS_PER_YUAN), optional=True)
    if form is not None and form.is_cash and value not in (None, PPM):
        r.add(f"{ppath}.cash_value", "cash_at_face")
    if form is not None and not form.is_cash and not value:
        r.add(f"{ppath}.cash_value", "cash_value_needed")
    return form, value, points_per_yuan


def _read_limits(r: _Reader, raw: Any, lpath: str) -> Limits:
    limits = Limits(
        min_transaction_fen=r.get(raw, lpath, "min_transaction_yuan", _money, optional=True) or 1,
        per_transaction_fen=r.get(raw, lpath, "per_transaction_yuan", _money, optional=True),
        per_transaction_share_of_credit_limit_ppm=r.get(
            raw, lpath, "per_transaction_share_of_credit_limit", _rate, optional=True
        ),
        share_of_balance_ppm=r.get(raw, lpath, "share_of_balance", _rate, optional=True),
        per_day_fen=r.get(raw, lpath, "per_day_yuan", _money, optional=True),
        per_month_fen=r.get(raw, lpath, "per_month_yuan", _money, optional=True),
    )
    if limits.per_transaction_fen is not None and limits.per_transaction_fen < limits.min_transaction_fen:
        r.add(f"{lpath}.per_transaction_yuan", "below", bound="min_transaction_yuan")
    return limits


def _read_provenance(r: _Reader, data: Any, path: str) -> dict[str, Provenance]:
    provenance: dict[str, Provenance] = {}
    for block in ("serves", "fee", "payout", "speed", "limits"):
        raw = data.get(block) if isinstance(data, Mapping) else None
        bpath = f"{path}.{block}.provenance"
        prov = r.get(raw or {}, f"{path}.{block}", "provenance", dict)
        if prov is None:
            continue
        basis = r.get(prov, bpath, "basis", _enum(Basis))
        note = r.get(prov, bpath, "note", _text_map)
        if basis is not None and note is not None:
            provenance[block] = Provenance(basis, note)
    return provenance


def channel_from_dict(data: Any, *, source: str, path: str = "") -> Channel:
    """One channel's terms (the shape each live feed publishes)."""
    r = _Reader()
    channel = _read_channel(r, data, path)
    problems = r.problems + (monotonic_problems(channel) if channel else [])
    if problems or channel is None:
        raise CatalogError(f"{source}: " + "; ".join(problems), key="error.catalog", source=source, problems=problems)
    return channel


def catalog_from_dict(data: Any, *, source: str) -> Catalog:
    """The whole catalog; every problem is listed as `source: field.path: what is wrong`."""
    r = _Reader()
    version = r.get(data, "", "schema_version", int)
    if version is not None and version != SCHEMA_VERSION:
        r.add("schema_version", "schema_version", value=version, supported=SCHEMA_VERSION)
    as_of = r.get(data, "", "as_of", _date)
    channels = []
    for i, raw in enumerate(r.get(data, "", "channels", list) or []):
        channel = _read_channel(r, raw, f"channels[{i}]")
        if channel is not None:
            channels.append(channel)
            r.problems.extend(monotonic_problems(channel, path=f"channels[{i}]"))
    ids = [c.id for c in channels]
    if len(ids) != len(set(ids)):
        r.add("channels", "ids_unique")
    if not channels and not r.problems:
        r.add("channels", "no_channel")
    if r.problems or as_of is None:
        raise CatalogError(
            f"{source}: " + "; ".join(r.problems), key="error.catalog", source=source, problems=r.problems
        )
    return Catalog(tuple(channels), as_of, _read_source(data.get("source") if isinstance(data, dict) else None))


def _read_source(raw: Any) -> CatalogSource | None:
    """The optional `source` block: a title, a URL and a note per language (anything else: none)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        return None
    note = raw.get("note")
    if not isinstance(note, dict):
        note = {}
    return CatalogSource(
        str(raw.get("title", "")), raw["url"], {str(k): str(v) for k, v in note.items() if isinstance(v, str)}
    )


def monotonic_problems(channel: Channel, *, path: str = "") -> list[str]:
    """Within a transaction, recovering more must never leave the user less.

    Checked at every fee breakpoint and limit edge, one fen either side, plus the floor/cap edges.
    """
    edges = set(channel.fee.breakpoints())
    if isinstance(channel.fee, TieredPercentFee):
        for fen in (channel.fee.floor_fen, channel.fee.cap_fen):
            if fen:
                for tier in channel.fee.tiers:
                    if tier.rate_ppm:
                        edges.add(fen * PPM // tier.rate_ppm)
    edges.add(channel.limits.min_transaction_fen)
    problems: list[str] = []
    for edge in sorted(edges):
        for amount in (edge - 1, edge):
            if amount < 1:
                continue
            here = amount - channel.fee.fee(amount)
            after = amount + 1 - channel.fee.fee(amount + 1)
            if after < here:
                where = f"{path}.fee" if path else "fee"
                problems.append(Problem(where, "monotonic", more=amount + 1, amount=amount))
                break
    return problems


def iter_provenance(catalog: Catalog) -> Iterator[tuple[Channel, str, Provenance]]:
    for channel in catalog.channels:
        for block, prov in channel.provenance.items():
            yield channel, block, prov


# Readers other reference data shares (the pricing schedules): one way to write money, rates,
# dates and fee rules, with problems named by field path.
FieldReader = _Reader
read_fee_rule = _read_fee
money_field = _money
rate_field = _rate
date_field = _date
enum_field = _enum
