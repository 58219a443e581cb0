"""The pricing lab's engine: one ranking with Compare, one arithmetic with the quote engine."""

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, NoFee, Serves, ServesRule, Tier, TieredPercentFee
from core.domain.pricing import OWN_OFFER_ID, CostSchedule, PricingSchedule, parse_document
from core.domain.pricing_simulation import (
    CARRIERS,
    PRIORITIES,
    Population,
    compare_versions,
    cost_per_transaction,
    days_needed,
    empirical_population,
    lab_run,
    lex_argmin,
    margin_curve,
    own_offer_at,
    quote_population,
    scaled_fee,
    simulate,
    synthetic_population,
)
from core.domain.quotes import (
    Priority,
    QuoteRequest,
    Split,
    compare,
    days_for,
    quote_channel,
    split,
    transaction_size,
)
from core.money import MAX_BALANCE_FEN, PPM, Rounding
from core.reference_data import DATA_DIR

MOMENTS = (
    dt.datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI),  # an ordinary Wednesday morning
    dt.datetime(2026, 11, 18, 16, 30, tzinfo=SHANGHAI),  # after the banks' 15:00 cut-off
    dt.datetime(2026, 11, 18, 23, 0, tzinfo=SHANGHAI),  # after the own offer's 22:00 cut-off
    dt.datetime(2026, 11, 21, 11, 0, tzinfo=SHANGHAI),  # a Saturday
    dt.datetime(2026, 9, 30, 21, 0, tzinfo=SHANGHAI),  # the eve of the National Day holiday
)
CREDIT_LIMITS = (0, 0, 30_00, 2_000_00, 20_000_00, 500_000_00)  # none, small (below minimums), ordinary, large
AT = MOMENTS[0]


@pytest.fixture(scope="module")
def schedule(catalog) -> PricingSchedule:
    return parse_document((DATA_DIR / "pricing" / "schedule.json").read_bytes(), market=catalog.by_id())


def free_offer(schedule: PricingSchedule) -> PricingSchedule:
    """The own offer at no fee and no cost to anyone."""
    free = CostSchedule(OWN_OFFER_ID, NoFee(), PPM, 0)
    return replace(
        schedule, own_offer=replace(schedule.own_offer, fee=NoFee()), promotion=None, costs={OWN_OFFER_ID: free}
    )


def with_own_offer(market: Catalog, schedule: PricingSchedule, at: dt.datetime, multiplier: float = 1.0) -> Catalog:
    return Catalog((*market.channels, own_offer_at(schedule, at, multiplier)), market.as_of)


balances = st.one_of(
    st.integers(min_value=1, max_value=5_000_00),
    st.integers(min_value=1, max_value=MAX_BALANCE_FEN),
    st.sampled_from([1, 9_99, 10_00, 19_99, 20_00, 100_00, 100_01, 500_00, 1000_00, 1019_99, 3000_00, 3000_01]),
)
users = st.tuples(
    balances,
    st.integers(min_value=0, max_value=len(CARRIERS) - 1),
    st.sampled_from(CREDIT_LIMITS),
    st.integers(min_value=0, max_value=len(PRIORITIES) - 1),
)
populations = st.lists(users, min_size=1, max_size=60).map(lambda rows: Population.of(*zip(*rows, strict=True)))


def request_for(population: Population, i: int, at: dt.datetime) -> QuoteRequest:
    credit = int(population.credit_limit_fen[i])
    return QuoteRequest(
        int(population.balance_fen[i]),
        CARRIERS[population.carrier[i]],
        at,
        credit_limit_fen=credit or None,
        priorities=Priority.order_with_first(PRIORITIES[population.priority[i]]),
    )


def random_population(n: int, seed: int) -> Population:
    rng = np.random.default_rng(seed)
    synthetic = synthetic_population(n, seed, median_yuan=300, sigma=1.6)
    return replace(synthetic, credit_limit_fen=rng.choice(np.array(CREDIT_LIMITS, dtype=np.int64), n))


# --- one ranking -----------------------------------------------------------------------------


@pytest.mark.parametrize("at", MOMENTS, ids=[m.strftime("%a %H:%M") for m in MOMENTS])
@pytest.mark.parametrize("multiplier", [1.0, 0.6])
def test_each_simulated_user_chooses_what_compare_ranks_first(catalog, calendar, schedule, at, multiplier):
    population = random_population(500, seed=int(at.timestamp()) % 10_000)
    result = simulate(catalog, schedule, population, at=at, calendar=calendar, fee_multiplier=multiplier)
    everything = with_own_offer(catalog, schedule, at, multiplier)
    for i in range(len(population)):
        best = compare(everything, request_for(population, i, at), calendar).best
        chosen = result.choice[i]
        assert (result.channel_ids[chosen] if chosen >= 0 else None) == (best.channel.id if best else None), i


@settings(max_examples=60, deadline=None)
@given(populations, st.sampled_from(MOMENTS))
def test_the_choice_is_compares_for_any_population(catalog, calendar, schedule, population, at):
    result = simulate(catalog, schedule, population, at=at, calendar=calendar)
    everything = with_own_offer(catalog, schedule, at)
    for i in range(len(population)):
        best = compare(everything, request_for(population, i, at), calendar).best
        chosen = result.choice[i]
        assert (result.channel_ids[chosen] if chosen >= 0 else None) == (best.channel.id if best else None)


@settings(max_examples=40, deadline=None)
@given(populations, st.sampled_from(MOMENTS))
def test_the_counterfactual_is_what_compare_ranks_first_without_the_own_offer(
    catalog, calendar, schedule, population, at
):
    result = simulate(catalog, schedule, population, at=at, calendar=calendar)
    for i in range(len(population)):
        best = compare(catalog, request_for(population, i, at), calendar).best
        other = result.alternative[i]
        assert (result.channel_ids[other] if other >= 0 else None) == (best.channel.id if best else None)


@pytest.mark.parametrize("sensitivity", [0.0, 0.05, 2.0])
def test_a_logit_choice_is_one_gumbel_draw_over_every_channel_and_the_counterfactual_the_same_draw(
    catalog, calendar, schedule, sensitivity
):
    """With a logit, each user takes the channel of highest s × net yuan + Gumbel noise among
    those that take their balance (noise drawn for every channel in id order and every user in
    the order the simulation sorts them into; ties to the lower id); without the own offer, the
    best of the same draws among the rest."""
    population = random_population(400, seed=11)
    result = simulate(catalog, schedule, population, at=AT, calendar=calendar, logit_sensitivity=sensitivity, seed=5)
    everything = sorted(with_own_offer(catalog, schedule, AT).channels, key=lambda c: c.id)
    assert result.channel_ids == tuple(c.id for c in everything)
    n = len(population)
    noise = -np.log(-np.log(np.random.default_rng(5).random((len(everything), n)).clip(1e-300, None)))
    position = np.empty(n, dtype=np.int64)
    position[quote_population(catalog, population, at=AT, calendar=calendar).order] = np.arange(n)
    for i in range(n):
        quotes = {
            q.channel.id: q
            for q in compare(with_own_offer(catalog, schedule, AT), request_for(population, i, AT), calendar).quotes
        }
        scores = [
            sensitivity * (quotes[c.id].net_fen / 100) + noise[r, position[i]]
            if c.id in quotes and quotes[c.id].eligible
            else -np.inf
            for r, c in enumerate(everything)
        ]
        rest = [score if c.id != OWN_OFFER_ID else -np.inf for score, c in zip(scores, everything, strict=True)]
        expected = int(np.argmax(scores)) if max(scores) > -np.inf else -1
        counterfactual = int(np.argmax(rest)) if max(rest) > -np.inf else -1
        assert (result.choice[i], result.alternative[i]) == (expected, counterfactual), i


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_lex_argmin_is_the_order_lexsort_sorts_by(rows, n, depth, seed):
    rng = np.random.default_rng(seed)
    keys = [rng.integers(-3, 3, (rows, n)) for _ in range(depth)]
    eligible = rng.random((rows, n)) < 0.7
    got = lex_argmin(keys, eligible)
    for j in range(n):
        mine = np.flatnonzero(eligible[:, j])
        if not len(mine):
            assert got[j] == -1
            continue
        # np.lexsort: the last key is the primary one; the row number breaks the remaining ties.
        ranked = np.lexsort((mine, *(k[mine, j] for k in reversed(keys))))
        assert got[j] == mine[ranked[0]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=MAX_BALANCE_FEN), min_size=1, max_size=30))
def test_days_needed_is_days_for_over_an_array(schedule, amounts):
    own = schedule.own_offer
    size = transaction_size(own, None)
    array = np.array(amounts, dtype=np.int64)
    got = days_needed(own, None, array)
    assert got is not None
    for amount, days in zip(amounts, got.tolist(), strict=True):
        full, remainder = divmod(amount, size)
        assert days == days_for(Split(full, size, remainder), own.limits.per_day_fen)


# --- one arithmetic --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(users, st.sampled_from(MOMENTS), st.sampled_from([1.0, 0.5, 1.3]), st.booleans())
def test_revenue_and_cost_of_one_user_are_the_quote_engines(catalog, calendar, schedule, user, at, multiplier, alone):
    """A population of one: revenue is the fee `compare` quotes, cost is CostSchedule.cost_fen per
    transaction of the split `compare` makes; alone (no market), the own offer wins whenever it can."""
    market = Catalog((), catalog.as_of) if alone else catalog
    population = Population.of(*([v] for v in user))
    result = simulate(market, schedule, population, at=at, calendar=calendar, fee_multiplier=multiplier)
    comparison = compare(with_own_offer(market, schedule, at, multiplier), request_for(population, 0, at), calendar)
    best = comparison.best
    if best is None or best.channel.id != OWN_OFFER_ID:
        assert (result.win_rate, result.revenue_fen, result.cost_fen, result.volume_fen) == (0, 0, 0, 0)
        return
    own = best.channel
    size = transaction_size(own, population.credit_limit_fen[0] or None)
    parts = split(best.recoverable_fen, size, own.limits.min_transaction_fen)
    cost = schedule.costs[OWN_OFFER_ID]
    expected_cost = parts.full * cost.cost_fen(parts.size) + (cost.cost_fen(parts.remainder) if parts.remainder else 0)
    assert result.win_rate == 1
    assert result.revenue_fen == best.fee_fen
    assert result.volume_fen == best.recoverable_fen
    assert result.cost_fen == expected_cost
    assert result.margin_fen == best.fee_fen - expected_cost


fee_rules = st.one_of(
    st.just(NoFee()),
    st.builds(
        lambda rate, floor, cap, rounding: TieredPercentFee((Tier(None, rate),), floor, cap, rounding),
        st.integers(min_value=0, max_value=PPM),
        st.integers(min_value=0, max_value=1_000),
        st.one_of(st.none(), st.integers(min_value=1_000, max_value=100_000)),
        st.sampled_from(list(Rounding)),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    fee_rules,
    st.integers(min_value=0, max_value=PPM),
    st.integers(min_value=0, max_value=PPM),
    st.lists(st.integers(min_value=0, max_value=MAX_BALANCE_FEN), min_size=1, max_size=20),
)
def test_vectorised_cost_is_cost_schedule_cost_fen(partner_fee, resale, loss, amounts):
    cost = CostSchedule("direct", partner_fee, resale, loss)
    got = cost_per_transaction(cost, np.array(amounts, dtype=np.int64)).tolist()
    assert got == [cost.cost_fen(a) for a in amounts]


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=20, allow_nan=False), st.integers(min_value=1, max_value=MAX_BALANCE_FEN))
def test_scaled_fee_is_the_fee_at_one_and_never_falls_as_the_multiplier_rises(schedule, multiplier, amount):
    fee = schedule.own_offer.fee
    assert scaled_fee(fee, 1.0) is fee
    assert scaled_fee(fee, multiplier).fee(amount) <= scaled_fee(fee, multiplier + 0.25).fee(amount)


# --- the economics ---------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(populations, st.sampled_from(MOMENTS))
def test_a_free_own_offer_never_leaves_users_worse_off(catalog, calendar, schedule, population, at):
    result = simulate(catalog, free_offer(schedule), population, at=at, calendar=calendar)
    assert result.user_surplus_fen >= 0
    assert all(b.user_surplus_fen >= 0 for b in (*result.by_band, *result.by_carrier))
    assert (result.revenue_fen, result.cost_fen, result.margin_fen) == (0, 0, 0)


@settings(max_examples=60, deadline=None)
@given(
    populations,
    st.sampled_from(MOMENTS),
    st.lists(st.floats(min_value=0, max_value=4, allow_nan=False), min_size=2, max_size=5),
    st.one_of(st.none(), st.floats(min_value=0, max_value=2)),
)
def test_raising_every_fee_never_raises_the_win_rate(catalog, calendar, schedule, population, at, multipliers, logit):
    curve = margin_curve(
        catalog, schedule, population, sorted(multipliers), at=at, calendar=calendar, logit_sensitivity=logit, seed=7
    )
    rates = [point.win_rate for point in curve]
    assert rates == sorted(rates, reverse=True)


@settings(max_examples=40, deadline=None)
@given(populations, st.sampled_from(MOMENTS), st.booleans())
def test_nobody_chooses_an_own_offer_nobody_may_use(catalog, calendar, schedule, population, at, by_carrier):
    own = schedule.own_offer
    if by_carrier:  # it serves only China Broadnet, and nobody here is with it
        population = replace(population, carrier=np.minimum(population.carrier, 2).astype(np.int8))
        own = replace(own, serves=Serves(ServesRule.LISTED, frozenset({Carrier.CHINA_BROADNET})))
    else:  # its minimum is above every balance
        own = replace(
            own, limits=replace(own.limits, min_transaction_fen=MAX_BALANCE_FEN + 1, per_transaction_fen=None)
        )
    result = simulate(catalog, replace(schedule, own_offer=own), population, at=at, calendar=calendar)
    assert result.win_rate == 0
    assert result.chosen[OWN_OFFER_ID] == 0
    assert (result.volume_fen, result.revenue_fen, result.cost_fen, result.user_surplus_fen) == (0, 0, 0, 0)


def test_totals_are_the_sum_of_their_breakdowns(catalog, calendar, schedule):
    result = simulate(catalog, schedule, synthetic_population(20_000, 3), at=AT, calendar=calendar)
    for parts in (result.by_band, result.by_carrier):
        for name in ("users", "winners", "volume_fen", "revenue_fen", "cost_fen", "margin_fen", "user_surplus_fen"):
            assert sum(getattr(b, name) for b in parts) == getattr(result.total, name), name
    assert sum(result.chosen.values()) == result.users
    assert result.chosen[OWN_OFFER_ID] == result.total.winners
    assert sum(result.total.won_from.values()) == result.total.winners
    assert result.margin_fen == result.revenue_fen - result.cost_fen
    assert 0 < result.win_rate < 1


def test_a_competitor_cutting_its_fee_wins_users_back(catalog, calendar, schedule):
    population = synthetic_population(20_000, 5)
    before = simulate(catalog, schedule, population, at=AT, calendar=calendar)
    cheaper = tuple(replace(c, fee=scaled_fee(c.fee, 0.5)) if c.id == "alipay" else c for c in catalog.channels)
    after = simulate(Catalog(cheaper, catalog.as_of), schedule, population, at=AT, calendar=calendar)
    assert after.win_rate < before.win_rate
    assert after.chosen["alipay"] > before.chosen["alipay"]


# --- the same seed, the same figures ---------------------------------------------------------


def test_the_same_seed_gives_the_same_population_and_figures(catalog, calendar, schedule):
    a, b = synthetic_population(5_000, 11), synthetic_population(5_000, 11)
    for name in ("balance_fen", "carrier", "credit_limit_fen", "priority"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.balance_fen, synthetic_population(5_000, 12).balance_fen)
    for logit in (None, 0.3):
        first = simulate(catalog, schedule, a, at=AT, calendar=calendar, logit_sensitivity=logit, seed=4)
        again = simulate(catalog, schedule, b, at=AT, calendar=calendar, logit_sensitivity=logit, seed=4)
        assert first.summary() == again.summary()
        assert first.by_band == again.by_band
        assert np.array_equal(first.choice, again.choice)


def test_the_population_is_shaped_as_asked():
    population = synthetic_population(
        50_000,
        1,
        median_yuan=200,
        sigma=0.8,
        carrier_mix={Carrier.CHINA_UNICOM: 1},
        card_share=0.25,
        card_limit_yuan=10_000,
        priority_mix={Priority.SPEED: 3, Priority.CASH: 1},
    )
    assert abs(np.median(population.balance_fen) - 200_00) < 5_00
    assert set(population.carrier.tolist()) == {CARRIERS.index(Carrier.CHINA_UNICOM)}
    assert set(population.credit_limit_fen.tolist()) == {0, 10_000_00}
    assert abs((population.credit_limit_fen > 0).mean() - 0.25) < 0.01
    assert abs((population.priority == PRIORITIES.index(Priority.SPEED)).mean() - 0.75) < 0.01
    assert population.balance_fen.min() >= 1 and population.balance_fen.max() <= MAX_BALANCE_FEN


def test_an_empirical_population_resamples_the_logged_requests():
    logged = ([100_00, 250_00, 4_000_00], ["china_mobile", "china_unicom", "china_telecom"], ["cost", "speed", "cash"])
    population = empirical_population(*logged, 3_000, 9, credit_limits_fen=[0, 5_000_00, 0])
    assert set(population.balance_fen.tolist()) == {100_00, 250_00, 4_000_00}
    pairs = set(
        zip(population.balance_fen.tolist(), population.carrier.tolist(), population.priority.tolist(), strict=True)
    )
    assert pairs == {(100_00, 0, 0), (250_00, 1, 1), (4_000_00, 2, 2)}
    again = empirical_population(*logged, 3_000, 9, credit_limits_fen=[0, 5_000_00, 0])
    assert np.array_equal(population.balance_fen, again.balance_fen)


def test_compare_versions_runs_live_and_draft_on_the_same_draws(catalog, calendar, schedule):
    population = synthetic_population(10_000, 2)
    dearer = replace(schedule, own_offer=replace(schedule.own_offer, fee=scaled_fee(schedule.own_offer.fee, 1.5)))
    live, draft = compare_versions(catalog, schedule, dearer, population, at=AT, calendar=calendar)
    assert live.summary() == simulate(catalog, schedule, population, at=AT, calendar=calendar).summary()
    assert draft.summary() == simulate(catalog, dearer, population, at=AT, calendar=calendar).summary()
    assert draft.win_rate <= live.win_rate


def test_one_quote_per_channel_matches_the_engine_for_the_own_offer(calendar, schedule):
    """The own offer as simulated at a moment is the one quote_channel quotes (the promotion too)."""
    own = own_offer_at(schedule, AT)
    quote = quote_channel(own, QuoteRequest(250_00, Carrier.CHINA_MOBILE, AT), calendar)
    assert quote.eligible and quote.fee_fen == schedule.own_offer.fee.fee(250_00)


@settings(max_examples=40, deadline=None)
@given(
    populations,
    st.sampled_from(MOMENTS),
    st.lists(st.floats(min_value=0, max_value=4, allow_nan=False), min_size=1, max_size=4),
    st.one_of(st.none(), st.floats(min_value=0, max_value=2)),
)
def test_a_curve_point_is_the_simulation_at_that_multiplier(
    catalog, calendar, schedule, population, at, multipliers, logit
):
    """The curve takes a shorter way to its totals (no alternatives, no breakdowns): the same figures."""
    curve = margin_curve(
        catalog, schedule, population, multipliers, at=at, calendar=calendar, logit_sensitivity=logit, seed=3
    )
    for point in curve:
        full = simulate(
            catalog, schedule, population, at=at, calendar=calendar,
            fee_multiplier=point.multiplier, logit_sensitivity=logit, seed=3,
        )  # fmt: skip
        assert (point.win_rate, point.margin_fen, point.revenue_fen, point.volume_fen) == (
            full.win_rate, full.margin_fen, full.revenue_fen, full.volume_fen,
        )  # fmt: skip


def test_the_labs_one_run_equals_its_parts(catalog, calendar, schedule):
    population = synthetic_population(5_000, 11)
    draft = replace(schedule, own_offer=own_offer_at(schedule, AT, 0.5))
    live_run, draft_run, curve = lab_run(catalog, schedule, draft, population, [0.5, 1.0], at=AT, calendar=calendar)
    live_alone, draft_alone = compare_versions(catalog, schedule, draft, population, at=AT, calendar=calendar)
    assert live_run.summary() == live_alone.summary() and draft_run is not None
    assert draft_run.summary() == draft_alone.summary()
    assert curve == margin_curve(catalog, draft, population, [0.5, 1.0], at=AT, calendar=calendar)
