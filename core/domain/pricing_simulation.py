"""The pricing lab's engine: a population of simulated users, each quoted on every market channel
and on the portal's own offer, each choosing as the portal's own ranking says; what that earns.

Pure and vectorised (numpy int64 fen). The quote arithmetic is `batch_quotes.batch_quote` (kept
equal to `quotes.quote_channel` by a property test), called once per *group* of users that share
everything eligibility depends on (carrier and credit-card limit). The choice uses
`quotes.rank_key` — the function `compare` ranks with — elementwise over channels, with ties broken
by channel id as `compare` breaks them. Every user is assumed to be on their carrier's own network
(no virtual operators), to have their bank card bound to their own number, and to value vouchers
and points at each channel's published default.

The market is ranked once per population (`_MarketBest`): the choice among every channel is the
smallest key among the eligible ones, so the own offer wins exactly when it beats the user's best
market channel, and every version and fee multiplier of it is one comparison per user. A fee
multiplier changes only the own offer's fee and net (`batch_quotes.batch_fee`), so a margin
curve quotes it once and prices it again at each point.

ETAs are exact: a daily limit that spreads the transactions over several days moves the latest
arrival (`quotes.days_for`, vectorised here), and each distinct number of days is looked up once
through `quotes.eta` for the simulated moment.

Economics, for every user who chooses the own offer (one arithmetic with the quote engine):
    revenue = the own offer's fee, as the quote engine charges it
    cost    = Σ over the transactions of `CostSchedule.cost_fen(amount)` (vectorised, same rounding)
    margin  = revenue − cost
The user's surplus is measured in money against the counterfactual: what the same user would have
chosen, by the same rule (the same logit draw too), had the own offer not existed — zero for
users who choose another channel anyway, and the whole net for a balance nothing else would take.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.domain.batch_quotes import (
    _rounded,
    batch_fee,
    batch_quote,
    fee_per_transaction,
    net_of,
    one_transaction_sizes,
)
from core.domain.calendar import WorkingDayCalendar, shanghai_day
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, Channel, NoFee, TieredPercentFee
from core.domain.pricing import OWN_OFFER_ID, CostSchedule, PricingSchedule, scale_fee
from core.domain.quotes import Priority, QuoteRequest, eta, payout_value, rank_key, transaction_size
from core.errors import InputError
from core.money import FEN_PER_YUAN, MAX_BALANCE_FEN, MAX_CREDIT_LIMIT_FEN, PPM, Rounding

CARRIERS: tuple[Carrier, ...] = tuple(Carrier)  # `Population.carrier` indexes this
PRIORITIES: tuple[Priority, ...] = tuple(Priority)  # `Population.priority` indexes this
#: Balance bands of the breakdowns, in fen: [lower, upper) — under 100, 100–300, 300–500, 500–1000,
#: 1000 CNY and over.
BAND_EDGES_FEN: tuple[int, ...] = (100_00, 300_00, 500_00, 1000_00)
BAND_LABELS: tuple[str, ...] = ("<100", "100-300", "300-500", "500-1000", ">=1000")
#: A simulated balance lies in [1 fen, the largest plausible balance].
MIN_SIMULATED_FEN = 1


class SimulationError(InputError):
    """Parameters a population or a simulation cannot use (a mix that sums to nothing, …)."""

    key = "error.pricing.simulation"


# --- populations -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Population:
    """N simulated users as parallel numpy arrays (never a number, never an account)."""

    balance_fen: np.ndarray  # int64, 1 … MAX_BALANCE_FEN
    carrier: np.ndarray  # int8, index into CARRIERS; the bank card's bound phone is on the same one
    credit_limit_fen: np.ndarray  # int64, 0 = no credit card
    priority: np.ndarray  # int8, index into PRIORITIES: what the user puts first

    def __post_init__(self) -> None:
        n = len(self.balance_fen)
        arrays = (self.balance_fen, self.carrier, self.credit_limit_fen, self.priority)
        if any(a.ndim != 1 or len(a) != n for a in arrays):
            raise SimulationError("a population's arrays are one-dimensional and of one length")
        if n and (self.balance_fen.min() < MIN_SIMULATED_FEN or self.balance_fen.max() > MAX_BALANCE_FEN):
            raise SimulationError("balances lie between 1 fen and the largest plausible balance")
        if n and (self.carrier.min() < 0 or self.carrier.max() >= len(CARRIERS)):
            raise SimulationError("carrier indexes CARRIERS")
        if n and (self.priority.min() < 0 or self.priority.max() >= len(PRIORITIES)):
            raise SimulationError("priority indexes PRIORITIES")
        if n and (self.credit_limit_fen.min() < 0 or self.credit_limit_fen.max() > MAX_CREDIT_LIMIT_FEN):
            raise SimulationError("credit limits lie between 0 (no card) and the largest plausible limit")

    def __len__(self) -> int:
        return len(self.balance_fen)

    @classmethod
    def of(
        cls,
        balance_fen: Sequence[int] | np.ndarray,
        carrier: Sequence[int] | np.ndarray,
        credit_limit_fen: Sequence[int] | np.ndarray,
        priority: Sequence[int] | np.ndarray,
    ) -> Population:
        return cls(
            np.asarray(balance_fen, dtype=np.int64),
            np.asarray(carrier, dtype=np.int8),
            np.asarray(credit_limit_fen, dtype=np.int64),
            np.asarray(priority, dtype=np.int8),
        )


DEFAULT_CARRIER_MIX: Mapping[Carrier, float] = {
    Carrier.CHINA_MOBILE: 0.60,
    Carrier.CHINA_UNICOM: 0.20,
    Carrier.CHINA_TELECOM: 0.18,
    Carrier.CHINA_BROADNET: 0.02,
}  # an illustration of the carriers' rough subscriber shares, for the analyst to overwrite
DEFAULT_PRIORITY_MIX: Mapping[Priority, float] = {Priority.COST: 0.6, Priority.SPEED: 0.25, Priority.CASH: 0.15}


def _shares(mix: Mapping[Any, float], members: Sequence[object], what: str) -> np.ndarray:
    unknown = [k for k in mix if k not in members]
    if unknown:
        raise SimulationError(f"{what}: {unknown[0]!r} is not one of {', '.join(map(str, members))}")
    shares = np.array([float(mix.get(m, 0.0)) for m in members])
    if not np.all(np.isfinite(shares)) or np.any(shares < 0) or shares.sum() <= 0:
        raise SimulationError(f"{what}: shares are finite, not negative, and not all zero")
    return shares / shares.sum()


def _draw(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    cumulative = np.cumsum(shares)
    cumulative[-1] = 1.0  # rounding must not leave a draw past the last member
    return np.searchsorted(cumulative, rng.random(n), side="right").astype(np.int8)


def _cards(rng: np.random.Generator, n: int, card_share: float, card_limit_yuan: float) -> np.ndarray:
    if not 0 <= card_share <= 1 or not 0 <= card_limit_yuan * FEN_PER_YUAN <= MAX_CREDIT_LIMIT_FEN:
        raise SimulationError("card_share is between 0 and 1; card_limit_yuan between 0 and the largest limit")
    has_card = rng.random(n) < card_share
    return np.where(has_card, round(card_limit_yuan * FEN_PER_YUAN), 0).astype(np.int64)


def synthetic_population(
    n: int,
    seed: int,
    *,
    median_yuan: float = 150.0,
    sigma: float = 1.0,
    carrier_mix: Mapping[Carrier, float] = DEFAULT_CARRIER_MIX,
    card_share: float = 0.4,
    card_limit_yuan: float = 20_000.0,
    priority_mix: Mapping[Priority, float] = DEFAULT_PRIORITY_MIX,
) -> Population:
    """`n` users with log-normal balances: ln(balance in yuan) ~ Normal(ln `median_yuan`, `sigma`),
    rounded to the fen and clipped to [1 fen, the largest plausible balance].

    No public data gives the distribution of stranded phone balances, so the analyst sets it (the
    defaults are an illustration, not a finding); `empirical_population` resamples the portal's own
    quote requests instead. Carriers and priorities are drawn from their mixes (shares, normalised);
    `card_share` of the users hold a credit card of limit `card_limit_yuan` (one limit for all, so
    the users fall into at most eight groups that quote alike). The same seed, the same population.
    """
    if n < 0 or not (median_yuan > 0 and math.isfinite(median_yuan)) or not (0 <= sigma <= 5):
        raise SimulationError("n >= 0, median_yuan > 0 and 0 <= sigma <= 5")
    rng = np.random.default_rng(seed)
    yuan = np.exp(rng.normal(math.log(median_yuan), sigma, n))
    balances = np.clip(np.rint(yuan * FEN_PER_YUAN), MIN_SIMULATED_FEN, MAX_BALANCE_FEN).astype(np.int64)
    carriers = _draw(rng, _shares(carrier_mix, CARRIERS, "carrier_mix"), n)
    credit = _cards(rng, n, card_share, card_limit_yuan)
    priorities = _draw(rng, _shares(priority_mix, PRIORITIES, "priority_mix"), n)
    return Population(balances, carriers, credit, priorities)


def _indexes(values: Sequence[object] | np.ndarray, members: tuple[Carrier, ...] | tuple[Priority, ...]) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == object or array.dtype.kind in "US":
        lookup = {m.value: i for i, m in enumerate(members)} | {m: i for i, m in enumerate(members)}
        try:
            return np.array([lookup[v] for v in array.tolist()], dtype=np.int8)
        except KeyError as exc:
            raise SimulationError(f"{exc.args[0]!r} is not one of {', '.join(m.value for m in members)}") from None
    return array.astype(np.int8)


def empirical_population(
    balances_fen: Sequence[int] | np.ndarray,
    carriers: Sequence[object] | np.ndarray,
    priorities: Sequence[object] | np.ndarray,
    n: int,
    seed: int,
    *,
    credit_limits_fen: Sequence[int] | np.ndarray | None = None,
    card_share: float = 0.4,
    card_limit_yuan: float = 20_000.0,
) -> Population:
    """`n` users drawn with replacement from logged quote requests (parallel arrays: balance in fen,
    carrier and priority as indexes, enum members or their codes): the portal's anonymous quote
    log (core.services.quote_log) hands its columns here. The log keeps no credit limit unless given in
    `credit_limits_fen`; without it cards are assigned as `synthetic_population` does."""
    balances = np.asarray(balances_fen, dtype=np.int64)
    if len(balances) == 0 or n < 0:
        raise SimulationError("resampling needs at least one logged request, and n >= 0")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(balances), n)
    carrier_index = _indexes(carriers, CARRIERS)
    priority_index = _indexes(priorities, PRIORITIES)
    if credit_limits_fen is None:
        credit = _cards(rng, n, card_share, card_limit_yuan)
    else:
        credit = np.asarray(credit_limits_fen, dtype=np.int64)[pick]
    return Population(balances[pick], carrier_index[pick], credit, priority_index[pick])


# --- the own offer under a fee multiplier ----------------------------------------------------


def multiplier_ppm(multiplier: float) -> int:
    """A fee multiplier as integer parts per million (fees stay integer arithmetic)."""
    if not math.isfinite(multiplier) or not 0 <= multiplier <= 1000:
        raise SimulationError("a fee multiplier is between 0 and 1000")
    return round(multiplier * PPM)


def scaled_fee(fee: TieredPercentFee | NoFee, multiplier: float) -> TieredPercentFee | NoFee:
    """A fee rule charging `multiplier` × what `fee` charges: rates, floor and cap alike (rounded
    down, as `pricing.discounted` does; a fee never exceeds the transaction). 1.0 is `fee` itself.
    Each part is non-decreasing in the multiplier, so a higher multiplier never charges less."""
    return scale_fee(fee, multiplier_ppm(multiplier))


def own_offer_at(schedule: PricingSchedule, at: dt.datetime, fee_multiplier: float = 1.0) -> Channel:
    """The own offer as it quotes at `at` (the promotion on its Shanghai day), fee scaled."""
    offer = schedule.own_offer_on(shanghai_day(at))
    return replace(offer, fee=scaled_fee(offer.fee, fee_multiplier))


def cost_per_transaction(cost: CostSchedule, amounts_fen: np.ndarray) -> np.ndarray:
    """`CostSchedule.cost_fen` over an array of transaction amounts: the same terms, the same
    rounding (partner fee by its rule, resale shortfall rounded down, loss half up)."""
    amounts = np.asarray(amounts_fen, dtype=np.int64)
    shortfall = amounts - _rounded(amounts * cost.resale_value_ppm, Rounding.DOWN)
    loss = _rounded(amounts * cost.loss_rate_ppm, Rounding.HALF_UP)
    return fee_per_transaction(cost.partner_fee, amounts) + shortfall + loss


def route_cost(
    cost: CostSchedule, channel: Channel, credit_limit_fen: int | None, recoverable: np.ndarray
) -> np.ndarray:
    """The cost of recovering `recoverable` fen through `channel`, split as the quote engine splits
    it (full transactions of the channel's size, then the remainder), transaction by transaction."""
    size = transaction_size(channel, credit_limit_fen)
    if size is None:
        return np.where(recoverable > 0, cost_per_transaction(cost, recoverable), 0)
    full, remainder = np.divmod(recoverable, size)
    return full * cost.cost_fen(size) + np.where(remainder > 0, cost_per_transaction(cost, remainder), 0)


def days_needed(channel: Channel, credit_limit_fen: int | None, recoverable: np.ndarray) -> np.ndarray | None:
    """`quotes.days_for` over an array (None: one day for everyone, no daily limit)."""
    per_day = channel.limits.per_day_fen
    size = transaction_size(channel, credit_limit_fen)
    if per_day is None or size is None:
        return None
    full, remainder = np.divmod(recoverable, size)
    per_day_count = per_day // size
    days = np.maximum(-(-full // per_day_count), 1)
    room_on_last_day = per_day - (full - (days - 1) * per_day_count) * size
    days = days + (remainder > room_on_last_day)
    return np.where(full == 0, 1, days)


# --- the choice ------------------------------------------------------------------------------


def lex_argmin(keys: Sequence[np.ndarray], eligible: np.ndarray) -> np.ndarray:
    """For each column of `eligible` (channels × users), the row whose key tuple is the smallest
    among the eligible rows — keys[0] most significant, ties to the lowest row — or -1 when no row
    is eligible. The order `np.lexsort` sorts by (the test checks it), as a single pass over the
    rows: one comparison per channel, not a sort per user."""
    rows, n = eligible.shape
    if rows == 0:
        return np.full(n, -1, dtype=np.int64)
    full = [np.broadcast_to(k, (rows, n)) for k in keys]
    best = np.where(eligible[0], 0, -1)
    best_keys = [k[0].copy() for k in full]
    found = eligible[0].copy()
    for row in range(1, rows):
        less = np.zeros(n, dtype=bool)
        tied = np.ones(n, dtype=bool)
        for key, held in zip(full, best_keys, strict=True):
            here = key[row]
            less |= tied & (here < held)
            tied &= here == held
        take = eligible[row] & (less | ~found)
        best[take] = row
        for key, held in zip(full, best_keys, strict=True):
            np.copyto(held, key[row], where=take)
        found |= eligible[row]
    return best


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breakdown:
    """The figures of one slice of the population (a balance band, a carrier)."""

    label: str
    users: int
    winners: int  # users who chose the own offer
    volume_fen: int
    revenue_fen: int
    cost_fen: int
    margin_fen: int
    user_surplus_fen: int
    #: by channel id: users who, without the own offer, would choose that channel; and of them,
    #: those who choose the own offer ("we win 18% of Alipay's users under 300 CNY").
    market_users: Mapping[str, int] = field(default_factory=dict)
    won_from: Mapping[str, int] = field(default_factory=dict)

    @property
    def win_rate(self) -> float:
        return self.winners / self.users if self.users else 0.0

    def win_share_of(self, channel_id: str) -> float:
        """The share of `channel_id`'s would-be users who choose the own offer instead."""
        users = self.market_users.get(channel_id, 0)
        return self.won_from.get(channel_id, 0) / users if users else 0.0


@dataclass(frozen=True, eq=False)
class SimulationResult:
    population: Population
    channel_ids: tuple[str, ...]  # `choice` indexes this; the own offer among them
    choice: np.ndarray  # per user (population order): index into channel_ids, -1 = nothing takes it
    alternative: np.ndarray  # per user: the choice had the own offer not existed
    fee_multiplier: float
    total: Breakdown
    by_band: tuple[Breakdown, ...]
    by_carrier: tuple[Breakdown, ...]
    chosen: Mapping[str, int]  # users per chosen channel; "none": no channel takes the balance

    @property
    def users(self) -> int:
        return self.total.users

    @property
    def win_rate(self) -> float:
        return self.total.win_rate

    @property
    def volume_fen(self) -> int:
        return self.total.volume_fen

    @property
    def revenue_fen(self) -> int:
        return self.total.revenue_fen

    @property
    def cost_fen(self) -> int:
        return self.total.cost_fen

    @property
    def margin_fen(self) -> int:
        return self.total.margin_fen

    @property
    def user_surplus_fen(self) -> int:
        return self.total.user_surplus_fen

    def summary(self) -> dict[str, int | float]:
        """The headline figures (what `python -m core pricing simulate --json` prints)."""
        return {
            "population": self.users,
            "win_rate": self.win_rate,
            "volume_fen": self.volume_fen,
            "revenue_fen": self.revenue_fen,
            "cost_fen": self.cost_fen,
            "margin_fen": self.margin_fen,
            "user_surplus_fen": self.user_surplus_fen,
        }


@dataclass(frozen=True)
class CurvePoint:
    multiplier: float
    win_rate: float
    margin_fen: int
    revenue_fen: int
    volume_fen: int


# --- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Quoted:
    """The population sorted by (priority, group), and every market channel quoted for it once:
    what a margin curve or a draft-against-live comparison shares between its runs."""

    population: Population
    at: dt.datetime
    calendar: WorkingDayCalendar
    order: np.ndarray  # sorted position -> population index
    priority_slices: tuple[tuple[int, slice], ...]  # (priority index, its users in sorted order)
    #: (carrier index, credit limit, users): everything a quote depends on, whatever the priority;
    #: users as a slice where the group is one run of the sorted order, else their positions
    groups: tuple[tuple[int, int | None, slice | np.ndarray], ...]
    balance: np.ndarray  # sorted
    carrier: np.ndarray  # sorted
    market: tuple[Channel, ...]
    eligible: np.ndarray  # market channels × users (sorted), bool
    net: np.ndarray  # int64
    eta: np.ndarray  # int64, days after the simulated day


def _eta_offsets(channel: Channel, calendar: WorkingDayCalendar, at: dt.datetime, days: np.ndarray | None) -> Any:
    """The latest arrival as days after `at`'s day: a scalar, or an array for per-user day counts."""
    today = shanghai_day(at).toordinal()
    if days is None:
        return eta(channel, calendar, at, 1)[1].date.toordinal() - today
    seen = np.bincount(days)  # day counts are small: which occur, without sorting them
    table = np.zeros(len(seen), dtype=np.int64)
    for d in np.flatnonzero(seen).tolist():
        table[d] = eta(channel, calendar, at, d)[1].date.toordinal() - today
    return table[days]


def _quote_into(
    channel: Channel,
    row: int,
    quoted: _Quoted,
    eligible: np.ndarray,
    net: np.ndarray,
    eta_rows: np.ndarray,
) -> None:
    for carrier, credit, users in quoted.groups:
        request = QuoteRequest(0, CARRIERS[carrier], quoted.at, credit_limit_fen=credit)
        quote = batch_quote(channel, request, quoted.balance[users])
        eligible[row, users] = quote.eligible
        net[row, users] = quote.net_fen
        eta_rows[row, users] = _eta_offsets(
            channel, quoted.calendar, quoted.at, days_needed(channel, credit, quote.recoverable_fen)
        )


def quote_population(
    market: Catalog, population: Population, *, at: dt.datetime, calendar: WorkingDayCalendar
) -> _Quoted:
    """Sort the population into groups that quote alike and quote every market channel once."""
    limits, credit_index = np.unique(population.credit_limit_fen, return_inverse=True)
    groups = credit_index.astype(np.int64) * len(CARRIERS) + population.carrier
    n_groups = len(limits) * len(CARRIERS)
    code = population.priority.astype(np.int64) * n_groups + groups
    code = code.astype(np.int16) if len(PRIORITIES) * n_groups < 2**15 else code
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(PRIORITIES) * n_groups + 1))
    runs: dict[int, list[slice]] = {}  # each group's runs, one per priority it has users of
    for k in range(len(PRIORITIES) * n_groups):
        if bounds[k] < bounds[k + 1]:
            runs.setdefault(k % n_groups, []).append(slice(int(bounds[k]), int(bounds[k + 1])))
    groups = []
    for g, slices in sorted(runs.items()):
        users = slices[0] if len(slices) == 1 else np.concatenate([np.arange(r.start, r.stop) for r in slices])
        groups.append((g % len(CARRIERS), int(limits[g // len(CARRIERS)]) or None, users))
    priority_slices = tuple(
        (p, slice(int(bounds[p * n_groups]), int(bounds[(p + 1) * n_groups]))) for p in range(len(PRIORITIES))
    )
    channels = tuple(sorted((c for c in market.channels if c.id != OWN_OFFER_ID), key=lambda c: c.id))
    n = len(population)
    quoted = _Quoted(
        population,
        at,
        calendar,
        order,
        priority_slices,
        tuple(groups),
        population.balance_fen[order],
        population.carrier[order],
        channels,
        np.zeros((len(channels), n), dtype=bool),
        np.zeros((len(channels), n), dtype=np.int64),
        np.zeros((len(channels), n), dtype=np.int64),
    )
    for row, channel in enumerate(channels):
        _quote_into(channel, row, quoted, quoted.eligible, quoted.net, quoted.eta)
    return quoted


def _choose(
    priority_slices: Sequence[tuple[int, slice]],
    eligible: np.ndarray,
    net: np.ndarray,
    eta_rows: np.ndarray,
    is_cash: np.ndarray,
    noise: np.ndarray | None,
    sensitivity: float | None,
) -> np.ndarray:
    """Each user's channel (row), by the portal's ranking for their priority, or by logit."""
    choice = np.full(eligible.shape[1], -1, dtype=np.int64)
    if eligible.shape[0] == 0:  # no channel at all (the counterfactual of a market of none)
        return choice
    if sensitivity is not None:
        assert noise is not None
        # Gumbel-max: argmax(s × net + Gumbel noise) is a draw with P ∝ exp(s × net yuan), and the
        # same noise makes a worse offer never more likely to win, user by user.
        score = np.where(eligible, sensitivity * (net / FEN_PER_YUAN) + noise, -np.inf)
        return np.where(eligible.any(axis=0), score.argmax(axis=0), -1)
    for p, users in priority_slices:
        keys = rank_key(net[:, users], eta_rows[:, users], is_cash, Priority.order_with_first(PRIORITIES[p]))
        choice[users] = lex_argmin(keys, eligible[:, users])
    return choice


def simulate(
    market: Catalog,
    schedule: PricingSchedule,
    population: Population,
    *,
    at: dt.datetime,
    calendar: WorkingDayCalendar,
    fee_multiplier: float = 1.0,
    logit_sensitivity: float | None = None,
    seed: int = 0,
) -> SimulationResult:
    """Quote every user on the market's channels and on the own offer as it stands at `at` (its
    fee × `fee_multiplier`), let each choose, and add up what the own offer wins.

    By default each user takes the channel the portal's ranking puts first for their priority
    (exactly what `compare` would show them first). With `logit_sensitivity` s, each user instead
    draws among the channels that take their balance with probability ∝ exp(s × net yuan) — money
    only, priorities aside — seeded by `seed`. The same inputs and seed give the same figures."""
    quoted = quote_population(market, population, at=at, calendar=calendar)
    best = _market_best(quoted, logit_sensitivity, seed)
    return _simulate_quoted(quoted, best, _own_base(quoted, schedule), fee_multiplier)


@dataclass(frozen=True, eq=False)
class _MarketBest:
    """Each user's first choice among the market's channels alone, by the same rule as with the
    own offer (the same logit draw too), and that channel's net, ETA and payout form.

    The choice among every channel is the smallest key (or the highest score) among the eligible
    rows, ties to the lowest row: the own offer therefore wins exactly when it beats this one
    channel, ties going to whichever of the two has the lower channel id. So the market is ranked
    once, and every version and fee multiplier of the own offer is one comparison per user; the
    channel found here is also each winner's counterfactual (what they would have chosen had the
    own offer not existed)."""

    row: np.ndarray  # per user (sorted): the row among every channel by id, -1 = no channel
    net: np.ndarray  # of that channel (0 where none)
    eta: np.ndarray
    cash: np.ndarray  # 1 where it pays cash
    score: np.ndarray | None  # logit: its score (-inf where none)
    own_noise: np.ndarray | None  # logit: the own offer's draw
    own_row: int  # the own offer's row among every channel by id
    ids: tuple[str, ...]  # every channel's id, by id (the rows)
    sensitivity: float | None


def _market_best(quoted: _Quoted, sensitivity: float | None, seed: int) -> _MarketBest:
    if sensitivity is not None and not (math.isfinite(sensitivity) and sensitivity >= 0):
        raise SimulationError("logit_sensitivity is a finite number >= 0")
    market_ids = [c.id for c in quoted.market]  # sorted by id
    own_row = int(np.searchsorted(np.array(market_ids, dtype=object), OWN_OFFER_ID)) if market_ids else 0
    ids = (*market_ids[:own_row], OWN_OFFER_ID, *market_ids[own_row:])
    rows, n = len(ids), len(quoted.balance)
    is_cash = np.array([[int(c.payout_form.is_cash)] for c in quoted.market], dtype=np.int64).reshape(-1, 1)
    noise = market_noise = own_noise = None
    if sensitivity is not None:  # one draw for every channel's row, as the choice among all would take it
        noise = -np.log(-np.log(np.random.default_rng(seed).random((rows, n)).clip(1e-300, None)))
        market_noise, own_noise = np.delete(noise, own_row, axis=0), noise[own_row]
    pick = _choose(quoted.priority_slices, quoted.eligible, quoted.net, quoted.eta, is_cash, market_noise, sensitivity)
    found = pick >= 0
    at = np.maximum(pick, 0)
    users = np.arange(n)
    net = np.where(found, quoted.net[at, users], 0) if len(quoted.market) else np.zeros(n, dtype=np.int64)
    eta_best = np.where(found, quoted.eta[at, users], 0) if len(quoted.market) else np.zeros(n, dtype=np.int64)
    cash = np.where(found, is_cash[at, 0], 0) if len(quoted.market) else np.zeros(n, dtype=np.int64)
    score = None
    if sensitivity is not None and market_noise is not None:
        picked_noise = market_noise[at, users] if len(quoted.market) else np.zeros(n)
        score = np.where(found, sensitivity * (net / FEN_PER_YUAN) + picked_noise, -np.inf)
    row = np.where(found, pick + (pick >= own_row), -1)
    return _MarketBest(row, net, eta_best, cash, score, own_noise, own_row, ids, sensitivity)


@dataclass(frozen=True, eq=False)
class _OwnQuote:
    """The own offer (one version, one fee multiplier) quoted for every user, and who chooses it."""

    channel: Channel
    eligible: np.ndarray
    net: np.ndarray
    fee: np.ndarray
    recoverable: np.ndarray
    route: np.ndarray  # what serving each user would cost the portal
    won: np.ndarray  # the users (sorted positions) who choose it


@dataclass(frozen=True, eq=False)
class OwnOfferQuoted:
    """One version's own offer quoted for every user at its own fee. A fee multiplier changes the
    fee and the net alone (`batch_quotes.batch_fee`, `net_of`): who may use it, how much, in how many
    transactions of what size, by when, valued how, and what serving a user costs the portal
    stay as they are here, user by user."""

    schedule: PricingSchedule
    channel: Channel
    eligible: np.ndarray
    eta: np.ndarray
    recoverable: np.ndarray
    fee: np.ndarray
    net: np.ndarray
    size: np.ndarray  # each user's full transaction size (`batch_quotes.batch_fee`)
    value_ppm: np.ndarray  # how the channel values what it pays each user
    route: np.ndarray  # what serving each user would cost the portal (`route_cost`)


def _own_base(quoted: _Quoted, schedule: PricingSchedule) -> OwnOfferQuoted:
    own = own_offer_at(schedule, quoted.at)
    cost = schedule.costs[OWN_OFFER_ID]
    n = len(quoted.balance)
    eligible = np.zeros(n, dtype=bool)
    eta_own, recoverable, fee, net, size, value, route = (np.zeros(n, dtype=np.int64) for _ in range(7))
    for carrier, credit, users in quoted.groups:
        request = QuoteRequest(0, CARRIERS[carrier], quoted.at, credit_limit_fen=credit)
        quote = batch_quote(own, request, quoted.balance[users])
        eligible[users], net[users], fee[users] = quote.eligible, quote.net_fen, quote.fee_fen
        recoverable[users] = quote.recoverable_fen
        eta_own[users] = _eta_offsets(own, quoted.calendar, quoted.at, days_needed(own, credit, quote.recoverable_fen))
        full = transaction_size(own, credit)
        size[users] = one_transaction_sizes(quote.recoverable_fen) if full is None else full
        value[users] = payout_value(own, request)
        route[users] = np.where(quote.eligible, route_cost(cost, own, credit, quote.recoverable_fen), 0)
    return OwnOfferQuoted(schedule, own, eligible, eta_own, recoverable, fee, net, size, value, route)


def _own_quote(quoted: _Quoted, best: _MarketBest, base: OwnOfferQuoted, fee_multiplier: float) -> _OwnQuote:
    """The own offer at `fee_multiplier` × its fee, and who chooses it over their best market channel."""
    own, fee, net_own = base.channel, base.fee, base.net
    if multiplier_ppm(fee_multiplier) != PPM:  # priced again, every user at once
        own = own_offer_at(base.schedule, quoted.at, fee_multiplier)
        fee = batch_fee(own.fee, base.size, base.recoverable)
        net_own = net_of(base.recoverable, fee, base.value_ppm)
    mine, eta_own = base.eligible, base.eta
    n = len(quoted.balance)
    own_first = best.row > best.own_row  # on a tie the lower channel id wins: here the own offer
    if best.sensitivity is not None:
        assert best.score is not None and best.own_noise is not None
        score = best.sensitivity * (net_own / FEN_PER_YUAN) + best.own_noise
        beats = (score > best.score) | ((score == best.score) & own_first)
    else:
        beats = np.zeros(n, dtype=bool)
        cash = np.broadcast_to(np.int64(own.payout_form.is_cash), (n,))  # one value, every user
        for p, users in quoted.priority_slices:
            order = Priority.order_with_first(PRIORITIES[p])
            theirs = rank_key(best.net[users], best.eta[users], best.cash[users], order)
            ours = rank_key(net_own[users], eta_own[users], cash[users], order)
            less, tied = np.zeros(users.stop - users.start, dtype=bool), np.ones(users.stop - users.start, dtype=bool)
            for here, held in zip(ours, theirs, strict=True):
                less |= tied & (here < held)
                tied &= here == held
            beats[users] = less | (tied & own_first[users])
    won = np.flatnonzero(mine & ((best.row < 0) | beats))
    return _OwnQuote(own, mine, net_own, fee, base.recoverable, base.route, won)


def _curve_point(quoted: _Quoted, best: _MarketBest, base: OwnOfferQuoted, fee_multiplier: float) -> CurvePoint:
    """The totals `_simulate_quoted` would give at this multiplier, without what a curve does not
    show (each winner's alternative, the breakdowns): the same choices, the same sums."""
    own = _own_quote(quoted, best, base, fee_multiplier)
    won = own.won
    revenue = int(own.fee[won].sum())
    route = int(own.route[won].sum())
    volume = int(own.recoverable[won].sum())
    n = len(quoted.balance)
    return CurvePoint(fee_multiplier, len(won) / n if n else 0.0, revenue - route, revenue, volume)


def _simulate_quoted(
    quoted: _Quoted, best: _MarketBest, base: OwnOfferQuoted, fee_multiplier: float
) -> SimulationResult:
    own = _own_quote(quoted, best, base, fee_multiplier)
    won, n, ids = own.won, len(quoted.balance), best.ids
    alternative = best.row  # each user's choice had the own offer not existed
    choice = alternative.copy()
    choice[won] = best.own_row

    # Winners: their fee, the route's cost, and what they would have had without the own offer.
    revenue = own.fee[won]
    recoverable = own.recoverable[won]
    route = own.route[won]
    surplus = own.net[won] - best.net[won]  # 0 where nothing else takes the balance

    band = np.searchsorted(np.array(BAND_EDGES_FEN), quoted.balance, side="right")
    figures = (recoverable, revenue, route, surplus)
    total = _breakdown(("all",), np.zeros(n, dtype=np.int64), won, alternative, ids, figures)[0]
    by_band = _breakdown(BAND_LABELS, band, won, alternative, ids, figures)
    by_carrier = _breakdown(tuple(c.value for c in CARRIERS), quoted.carrier, won, alternative, ids, figures)
    counts = np.bincount(choice + 1, minlength=len(ids) + 1)
    picked = {"none": int(counts[0])} | {cid: int(counts[r + 1]) for r, cid in enumerate(ids)}
    in_population_order = np.empty(n, dtype=np.int64)
    in_population_order[quoted.order] = choice
    alternative_order = np.empty(n, dtype=np.int64)
    alternative_order[quoted.order] = alternative
    return SimulationResult(
        quoted.population,
        ids,
        in_population_order,
        alternative_order,
        fee_multiplier,
        total,
        by_band,
        by_carrier,
        picked,
    )


def _sums(labels: np.ndarray, k: int, values: np.ndarray) -> list[int]:
    # float64 sums are exact below 2**53 fen; a million users of 100,000 CNY stay far below.
    return [round(float(x)) for x in np.bincount(labels, weights=values, minlength=k)]


def _breakdown(
    names: Sequence[str],
    label: np.ndarray,
    won: np.ndarray,
    alternative: np.ndarray,
    ids: tuple[str, ...],
    figures: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[Breakdown, ...]:
    """Per label (0 … len(names) − 1 per user, in sorted order): users, winners, and the winners'
    volume, revenue, cost and surplus (`figures`, one value per winner, in that order)."""
    k = len(names)
    rows = len(ids)
    label = label.astype(np.int64)
    users = np.bincount(label, minlength=k)
    won_label = label[won]
    winners = np.bincount(won_label, minlength=k)
    sums = [_sums(won_label, k, v.astype(np.float64)) for v in figures]
    market = np.bincount(label * (rows + 1) + alternative + 1, minlength=k * (rows + 1)).reshape(k, rows + 1)
    taken = np.bincount(won_label * (rows + 1) + alternative[won] + 1, minlength=k * (rows + 1)).reshape(k, rows + 1)
    out = []
    for j in range(k):
        keys = ("none", *ids)
        out.append(
            Breakdown(
                names[j],
                int(users[j]),
                int(winners[j]),
                sums[0][j],
                sums[1][j],
                sums[2][j],
                sums[1][j] - sums[2][j],
                sums[3][j],
                {c: int(market[j, i]) for i, c in enumerate(keys) if market[j, i]},
                {c: int(taken[j, i]) for i, c in enumerate(keys) if taken[j, i]},
            )
        )
    return tuple(out)


def margin_curve(
    market: Catalog,
    schedule: PricingSchedule,
    population: Population,
    multipliers: Sequence[float],
    *,
    at: dt.datetime,
    calendar: WorkingDayCalendar,
    logit_sensitivity: float | None = None,
    seed: int = 0,
) -> list[CurvePoint]:
    """Win rate and margin against a multiplier of the own offer's fee (where the optimum lies).
    The market is quoted once for the whole curve; only the own offer is quoted again."""
    quoted = quote_population(market, population, at=at, calendar=calendar)
    best, base = _market_best(quoted, logit_sensitivity, seed), _own_base(quoted, schedule)
    return [_curve_point(quoted, best, base, m) for m in multipliers]


def compare_versions(
    market: Catalog,
    live: PricingSchedule,
    draft: PricingSchedule,
    population: Population,
    *,
    at: dt.datetime,
    calendar: WorkingDayCalendar,
    fee_multiplier: float = 1.0,
    logit_sensitivity: float | None = None,
    seed: int = 0,
) -> tuple[SimulationResult, SimulationResult]:
    """The live version and the draft on the same population, market and draws, side by side."""
    quoted = quote_population(market, population, at=at, calendar=calendar)
    best = _market_best(quoted, logit_sensitivity, seed)
    return (
        _simulate_quoted(quoted, best, _own_base(quoted, live), fee_multiplier),
        _simulate_quoted(quoted, best, _own_base(quoted, draft), fee_multiplier),
    )


@dataclass(frozen=True, eq=False)
class RankedMarket:
    """A population quoted on every market channel, and each user's best market channel: what
    every run of an own offer on it shares (the live version, a draft, each point of a curve)."""

    quoted: _Quoted
    best: _MarketBest

    @property
    def at(self) -> dt.datetime:
        return self.quoted.at


def rank_market(
    market: Catalog,
    population: Population,
    *,
    at: dt.datetime,
    calendar: WorkingDayCalendar,
    logit_sensitivity: float | None = None,
    seed: int = 0,
) -> RankedMarket:
    """Quote the market once for `population` and rank it, at `at` (with a logit, one draw)."""
    quoted = quote_population(market, population, at=at, calendar=calendar)
    return RankedMarket(quoted, _market_best(quoted, logit_sensitivity, seed))


def own_offer_quoted(ranked: RankedMarket, schedule: PricingSchedule) -> OwnOfferQuoted:
    """One version's own offer quoted for the ranked population, once: its run and its curve
    both price it from here."""
    return _own_base(ranked.quoted, schedule)


def run_version(ranked: RankedMarket, own: OwnOfferQuoted, fee_multiplier: float = 1.0) -> SimulationResult:
    """One version's own offer (`own_offer_quoted`) against the ranked market: `simulate`, with
    the market's half done."""
    return _simulate_quoted(ranked.quoted, ranked.best, own, fee_multiplier)


def curve_of(ranked: RankedMarket, own: OwnOfferQuoted, multipliers: Sequence[float]) -> list[CurvePoint]:
    """`margin_curve` against the ranked market: the own offer priced again at each point."""
    return [_curve_point(ranked.quoted, ranked.best, own, m) for m in multipliers]


def lab_run(
    market: Catalog,
    live: PricingSchedule,
    draft: PricingSchedule | None,
    population: Population,
    multipliers: Sequence[float],
    *,
    at: dt.datetime,
    calendar: WorkingDayCalendar,
    logit_sensitivity: float | None = None,
    seed: int = 0,
) -> tuple[SimulationResult, SimulationResult | None, list[CurvePoint]]:
    """What the lab shows at once, on one quoting of the market: the live version, the draft
    (None: none), and the margin curve of the draft (else of the live version)."""
    ranked = rank_market(market, population, at=at, calendar=calendar, logit_sensitivity=logit_sensitivity, seed=seed)
    live_own = own_offer_quoted(ranked, live)
    draft_own = own_offer_quoted(ranked, draft) if draft is not None else None
    draft_run = run_version(ranked, draft_own) if draft_own is not None else None
    return run_version(ranked, live_own), draft_run, curve_of(ranked, draft_own or live_own, multipliers)


__all__ = [
    "BAND_EDGES_FEN",
    "BAND_LABELS",
    "CARRIERS",
    "PRIORITIES",
    "Breakdown",
    "CurvePoint",
    "OwnOfferQuoted",
    "Population",
    "RankedMarket",
    "SimulationError",
    "SimulationResult",
    "compare_versions",
    "cost_per_transaction",
    "curve_of",
    "days_needed",
    "empirical_population",
    "lab_run",
    "lex_argmin",
    "margin_curve",
    "own_offer_at",
    "own_offer_quoted",
    "quote_population",
    "rank_market",
    "route_cost",
    "run_version",
    "scaled_fee",
    "simulate",
    "synthetic_population",
]
