"""Quote every channel for one balance and rank them by what the user cares about.

All amounts are integer fen. For an eligible channel:
    recoverable = fee + hidden_cost + net
where `hidden_cost` is what vouchers or points lose against cash at the user's own valuation.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from core.domain.calendar import DayCount, WorkingDayCalendar, to_shanghai
from core.domain.carriers import Carrier
from core.domain.catalog import (
    Catalog,
    Channel,
    Instant,
    PayoutForm,
    ServesRule,
    TPlus,
    WorkingDays,
)
from core.money import PPM, Rounding, apply_rate

if TYPE_CHECKING:
    import numpy as np


class Priority(enum.Enum):
    COST = "cost"  # the most money in hand
    SPEED = "speed"  # the soonest arrival
    CASH = "cash"  # cash rather than vouchers or points

    @staticmethod
    def order_with_first(first: Priority) -> tuple[Priority, ...]:
        return (first, *tuple(p for p in Priority if p is not first))


DEFAULT_PRIORITIES = (Priority.COST, Priority.SPEED, Priority.CASH)


@dataclass(frozen=True)
class Reason:
    """A sentence in waiting: a message key and its parameters, rendered in the user's language.

    Parameters stay codes (a channel id, a carrier code): the reader's language is not known here.
    Those named in `CHANNEL_PARAMS` hold a channel id, to be shown as that channel's catalog name."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


#: Reason parameters that hold a channel id: the best channel, and the runner-up it is compared with.
CHANNEL_PARAMS = frozenset({"channel", "other"})


@dataclass(frozen=True)
class QuoteRequest:
    balance_fen: int
    carrier: Carrier
    at: dt.datetime
    is_virtual_operator: bool = False
    credit_limit_fen: int | None = None
    bound_carrier: Carrier | None = None  # carrier of the phone bound to the bank card; None = this number's
    voucher_value_ppm: int | None = None  # None = the channel's published default
    points_value_ppm: int | None = None
    priorities: tuple[Priority, ...] = DEFAULT_PRIORITIES


@dataclass(frozen=True)
class ChannelQuote:
    channel: Channel
    eligible: bool
    reason: Reason | None
    recoverable_fen: int = 0
    transactions: int = 0
    fee_fen: int = 0
    hidden_cost_fen: int = 0
    net_fen: int = 0
    payout_value_ppm: int = PPM
    eta_earliest: dt.date | None = None
    eta_latest: dt.date | None = None
    eta_estimated: bool = False
    rank: int | None = None

    @property
    def effective_rate_ppm(self) -> int | None:
        """What the user gives up per yuan recovered: (fee + hidden cost) / recoverable."""
        if not self.recoverable_fen:
            return None
        lost = self.fee_fen + self.hidden_cost_fen
        return (lost * PPM + self.recoverable_fen // 2) // self.recoverable_fen


@dataclass(frozen=True)
class Comparison:
    request: QuoteRequest
    quotes: tuple[ChannelQuote, ...]  # eligible ones by rank, then ineligible ones
    best_reason: Reason | None

    @property
    def best(self) -> ChannelQuote | None:
        return self.quotes[0] if self.quotes and self.quotes[0].eligible else None


# --- one channel -----------------------------------------------------------------------------


def ineligibility(channel: Channel, request: QuoteRequest) -> Reason | None:
    """Why this channel cannot take this balance at all, or None."""
    serves = channel.serves
    carrier = request.carrier
    if serves.rule is ServesRule.LISTED and carrier not in serves.carriers:
        return Reason("reason.carrier_not_served", {"carrier": carrier.value})
    if serves.rule is ServesRule.OWN_NETWORK:
        (own,) = serves.carriers
        if carrier is not own:
            return Reason("reason.own_network_only", {"carrier": own.value})
        if request.is_virtual_operator:
            return Reason("reason.virtual_operator", {"carrier": own.value})
    if serves.rule is ServesRule.BOUND_CARD_CARRIER:
        bound = request.bound_carrier or carrier
        if bound is not carrier:
            return Reason("reason.bound_card_carrier", {"carrier": bound.value})
    if channel.limits.per_transaction_share_of_credit_limit_ppm is not None and not request.credit_limit_fen:
        return Reason("reason.needs_credit_limit")
    return None


def transaction_size(channel: Channel, credit_limit_fen: int | None) -> int | None:
    """The largest single transaction this channel allows, or None for no per-transaction bound.
    A transaction is never split across days, so a daily limit bounds it too."""
    limits = channel.limits
    sizes = []
    if limits.per_transaction_fen is not None:
        sizes.append(limits.per_transaction_fen)
    if limits.per_day_fen is not None:
        sizes.append(limits.per_day_fen)
    if limits.per_transaction_share_of_credit_limit_ppm is not None and credit_limit_fen:
        sizes.append(apply_rate(credit_limit_fen, limits.per_transaction_share_of_credit_limit_ppm, Rounding.DOWN))
    return min(sizes) if sizes else None


def recoverable_ceiling(channel: Channel, balance_fen: int) -> int:
    """How much of the balance the channel will take in total, before splitting."""
    ceiling = balance_fen
    if channel.limits.share_of_balance_ppm is not None:
        ceiling = apply_rate(balance_fen, channel.limits.share_of_balance_ppm, Rounding.DOWN)
    if channel.limits.per_month_fen is not None:
        ceiling = min(ceiling, channel.limits.per_month_fen)
    return ceiling


@dataclass(frozen=True)
class Split:
    full: int  # transactions of exactly `size`
    size: int
    remainder: int  # one more transaction of this amount, or 0

    @property
    def count(self) -> int:
        return self.full + (1 if self.remainder else 0)

    @property
    def total(self) -> int:
        return self.full * self.size + self.remainder


def split(ceiling: int, size: int | None, minimum: int) -> Split:
    """Largest-first split; a remainder below the channel's minimum stays on the balance."""
    if size is None:
        return Split(1, ceiling, 0) if ceiling >= minimum else Split(0, 0, 0)
    full, remainder = divmod(ceiling, size)
    return Split(full, size, remainder if remainder >= minimum else 0)


def days_for(parts: Split, per_day_fen: int | None) -> int:
    """Days a daily limit needs, packing whole transactions (none exceeds the limit) day by day."""
    if per_day_fen is None or parts.full == 0:
        return 1
    per_day = per_day_fen // parts.size
    days = -(-parts.full // per_day)
    room_on_last_day = per_day_fen - (parts.full - (days - 1) * per_day) * parts.size
    return days + (1 if parts.remainder > room_on_last_day else 0)


def payout_value(channel: Channel, request: QuoteRequest) -> int:
    if channel.payout_form is PayoutForm.E_VOUCHER and request.voucher_value_ppm is not None:
        return request.voucher_value_ppm
    if channel.payout_form is PayoutForm.POINTS and request.points_value_ppm is not None:
        return request.points_value_ppm
    return channel.payout_value_ppm


def eta(channel: Channel, calendar: WorkingDayCalendar, at: dt.datetime, days_needed: int) -> tuple[DayCount, DayCount]:
    """Earliest and latest arrival dates (Asia/Shanghai) for a recovery started at `at`.

    `days_needed` > 1 when a daily limit spreads the transactions over several days: calendar
    days for instant payouts (no working-day maths, so never an estimate), working days otherwise.
    """
    local = to_shanghai(at)
    today = local.date()
    extra = days_needed - 1
    speed = channel.speed
    if isinstance(speed, Instant):
        return DayCount(today, False), DayCount(today + dt.timedelta(days=extra), False)
    if isinstance(speed, WorkingDays):
        return calendar.add_working_days(today, speed.minimum), calendar.add_working_days(today, speed.maximum + extra)
    assert isinstance(speed, TPlus)
    start = calendar.next_workday_on_or_after(today)
    if start.date == today and local.time() >= speed.cutoff:
        start = calendar.add_working_days(today, 1)
    arrival = calendar.add_working_days(start.date, speed.days)
    last = calendar.add_working_days(start.date, speed.days + extra)
    return (
        DayCount(arrival.date, arrival.estimated or start.estimated),
        DayCount(last.date, last.estimated or start.estimated),
    )


def quote_channel(channel: Channel, request: QuoteRequest, calendar: WorkingDayCalendar) -> ChannelQuote:
    reason = ineligibility(channel, request)
    if reason is not None:
        return ChannelQuote(channel, False, reason)
    limits = channel.limits
    ceiling = recoverable_ceiling(channel, request.balance_fen)
    size = transaction_size(channel, request.credit_limit_fen)
    if size is not None and size < limits.min_transaction_fen:
        return ChannelQuote(
            channel, False, Reason("reason.limit_below_minimum", {"minimum_fen": limits.min_transaction_fen})
        )
    parts = split(ceiling, size, limits.min_transaction_fen)
    if parts.count == 0:
        return ChannelQuote(channel, False, Reason("reason.below_minimum", {"minimum_fen": limits.min_transaction_fen}))
    fee = parts.full * channel.fee.fee(parts.size) + (channel.fee.fee(parts.remainder) if parts.remainder else 0)
    recoverable = parts.total
    face = recoverable - fee
    value_ppm = payout_value(channel, request)
    net = apply_rate(face, value_ppm, Rounding.DOWN) if value_ppm != PPM else face
    days_needed = days_for(parts, limits.per_day_fen)
    first, last = eta(channel, calendar, request.at, days_needed)
    return ChannelQuote(
        channel,
        True,
        None,
        recoverable_fen=recoverable,
        transactions=parts.count,
        fee_fen=fee,
        hidden_cost_fen=face - net,
        net_fen=net,
        payout_value_ppm=value_ppm,
        eta_earliest=first.date,
        eta_latest=last.date,
        eta_estimated=first.estimated or last.estimated,
    )


# --- ranking ---------------------------------------------------------------------------------


#: One component of a rank key: a Python int for one quote, or a numpy array of many (the pricing lab).
RankPart = TypeVar("RankPart", int, "np.ndarray")


def rank_key(
    net_fen: RankPart, eta_latest_ordinal: RankPart, is_cash: RankPart, priorities: Sequence[Priority]
) -> tuple[RankPart, ...]:
    """The ranking, from its components: the smaller key ranks first. What matters most decides;
    the next priority only breaks its ties, then the next (ties after that: the channel id).

    The same arithmetic on Python ints (one quote, `compare`) and on numpy int arrays (`is_cash`
    as 0/1), elementwise (many users at once, the pricing simulation): one ranking, not a copy."""
    parts = {Priority.COST: -net_fen, Priority.SPEED: eta_latest_ordinal, Priority.CASH: 1 - is_cash}
    return tuple(parts[p] for p in priorities)


def _rank_key(quote: ChannelQuote, priorities: tuple[Priority, ...]) -> tuple[int, ...]:
    eta_latest = quote.eta_latest.toordinal() if quote.eta_latest else 0
    return rank_key(quote.net_fen, eta_latest, int(quote.channel.payout_form.is_cash), priorities)


def _best_reason(ranked: Sequence[ChannelQuote], request: QuoteRequest) -> Reason:
    best = ranked[0]
    params: dict[str, Any] = {
        "channel": best.channel.id,
        "net_fen": best.net_fen,
        "date": best.eta_latest.isoformat() if best.eta_latest else "",
        "form": best.channel.payout_form.value,
    }
    if len(ranked) == 1:
        return Reason("best.only", params)
    runner_up = ranked[1]
    params["other"] = runner_up.channel.id
    first = request.priorities[0]
    if first is Priority.SPEED:
        tied = runner_up.eta_latest == best.eta_latest
        return Reason("best.fastest_most" if tied else "best.fastest", params)
    if first is Priority.CASH and not best.channel.payout_form.is_cash:
        return Reason("best.no_cash", params)
    if first is Priority.CASH:
        return Reason("best.cash_most", params)
    params["gap_fen"] = best.net_fen - runner_up.net_fen
    return Reason("best.most_money" if params["gap_fen"] else "best.tied", params)


def compare(catalog: Catalog, request: QuoteRequest, calendar: WorkingDayCalendar) -> Comparison:
    quotes = [quote_channel(c, request, calendar) for c in catalog.channels]
    eligible = [q for q in quotes if q.eligible]
    ineligible = [q for q in quotes if not q.eligible]
    if not eligible:
        return Comparison(request, tuple(ineligible), None)
    eligible.sort(key=lambda q: (*_rank_key(q, request.priorities), q.channel.id))
    ranked = [_with_rank(q, i + 1) for i, q in enumerate(eligible)]
    return Comparison(request, tuple(ranked + ineligible), _best_reason(ranked, request))


def _with_rank(quote: ChannelQuote, rank: int) -> ChannelQuote:
    return replace(quote, rank=rank)
