"""How fast the pricing lab simulates: 1,000,000 synthetic users against the seven market channels
and the portal's own offer (the shipped schedule), at an ordinary weekday morning.

Measured (median of `BENCH_RUNS`):
    simulate    `pricing_simulation.simulate` as the lab and the command line call it: the population
                grouped, every channel quoted per group by `batch_quote`, the ETAs, each user's
                choice by the portal's ranking (`quotes.rank_key`), the counterfactual choice of
                the own offer's winners, revenue, cost, margin, surplus, and the breakdowns by
                balance band and carrier
Floor: the same arithmetic written directly in numpy over the whole population at once — each
channel's eligibility, split, fees and net per user (credit-limited sizes as arrays), the ETAs,
the choice as an argmin over one packed integer key per user, the winners' alternatives, and
the revenue, cost, volume and surplus sums (no breakdowns). Both must give the same figures.
Targets: simulate <= 1 s and <= 2x the floor.

The lab page's update after a change (beside a Streamlit floor page in headless chromium) is
measured with the page, which does not exist yet: `page_ratio` is null until then.

The last line is one JSON object: users, simulate_s, floor_s, ratio, page_ratio.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.domain.calendar import SHANGHAI, WorkingDayCalendar, shanghai_day
from core.domain.catalog import Catalog, Channel, NoFee, ServesRule, TieredPercentFee
from core.domain.pricing import OWN_OFFER_ID, CostSchedule, PricingSchedule, parse_document
from core.domain.pricing_simulation import (
    CARRIERS,
    PRIORITIES,
    Population,
    own_offer_at,
    simulate,
    synthetic_population,
)
from core.domain.quotes import Priority, eta
from core.money import PPM, Rounding
from core.reference_data import DATA_DIR, load_calendar, load_catalog

USERS = int(os.environ.get("BENCH_USERS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SEED = 20261130
AT = dt.datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)  # an ordinary Wednesday morning
TARGET_S = 1.0
TARGET_RATIO = 2.0


# --- the floor: the same arithmetic, written directly ----------------------------------------


def _rate(amounts: np.ndarray, ppm: int | np.ndarray, rounding: Rounding) -> np.ndarray:
    product = amounts * ppm
    if rounding is Rounding.DOWN:
        return product // PPM
    if rounding is Rounding.UP:
        return -((-product) // PPM)
    return (product + PPM // 2) // PPM


def _fee(rule: TieredPercentFee | NoFee, amounts: np.ndarray) -> np.ndarray:
    if isinstance(rule, NoFee):
        return np.zeros_like(amounts)
    bounds = np.array([t.up_to_fen for t in rule.tiers[:-1]], dtype=np.int64)
    rates = np.array([t.rate_ppm for t in rule.tiers], dtype=np.int64)
    fee = np.maximum(_rate(amounts, rates[np.searchsorted(bounds, amounts)], rule.rounding), rule.floor_fen)
    if rule.cap_fen is not None:
        fee = np.minimum(fee, rule.cap_fen)
    return np.minimum(fee, amounts)


def _channel(c: Channel, p: Population, calendar: WorkingDayCalendar) -> dict[str, np.ndarray]:
    """One channel for every user: eligible, recoverable, fee, net, the split and the ETA offset."""
    balance, carrier, credit = p.balance_fen, p.carrier, p.credit_limit_fen
    lim = c.limits
    if c.serves.rule is ServesRule.BOUND_CARD_CARRIER:
        eligible = np.ones(len(p), dtype=bool)
    else:
        served = np.array([k in c.serves.carriers for k in CARRIERS])
        eligible = served[carrier]
    ceiling = balance if lim.share_of_balance_ppm is None else balance * lim.share_of_balance_ppm // PPM
    if lim.per_month_fen is not None:
        ceiling = np.minimum(ceiling, lim.per_month_fen)
    bounds = [b for b in (lim.per_transaction_fen, lim.per_day_fen) if b is not None]
    size = np.full(len(p), min(bounds) if bounds else 2**62, dtype=np.int64)
    if lim.per_transaction_share_of_credit_limit_ppm is not None:
        eligible &= credit > 0
        size = np.minimum(size, credit * lim.per_transaction_share_of_credit_limit_ppm // PPM)
    eligible &= size >= lim.min_transaction_fen
    size = np.maximum(size, 1)
    full, remainder = np.divmod(ceiling, size)
    remainder = np.where(remainder >= lim.min_transaction_fen, remainder, 0)
    recoverable = np.where(eligible, full * size + remainder, 0)
    eligible &= recoverable > 0
    fee = np.where(full > 0, full * _fee(c.fee, size), 0) + _fee(c.fee, remainder)
    face = recoverable - np.where(eligible, fee, 0)
    net = face * c.payout_value_ppm // PPM
    today = shanghai_day(AT).toordinal()
    if lim.per_day_fen is None:
        eta_offset = np.full(len(p), eta(c, calendar, AT, 1)[1].date.toordinal() - today, dtype=np.int64)
    else:
        per_day = np.maximum(lim.per_day_fen // size, 1)
        days = np.maximum(-(-full // per_day), 1)
        days = days + (remainder > lim.per_day_fen - (full - (days - 1) * per_day) * size)
        days = np.where(full == 0, 1, days)
        table = np.array([eta(c, calendar, AT, d)[1].date.toordinal() - today for d in range(int(days.max()) + 1)])
        eta_offset = table[days]
    return {"eligible": eligible, "recoverable": recoverable, "fee": np.where(eligible, fee, 0), "net": net,
            "full": full, "size": size, "remainder": remainder, "eta": eta_offset}  # fmt: skip


def _packed_argmin(
    q: list[dict[str, np.ndarray]], cash: list[int], priority: np.ndarray, rows: list[int]
) -> np.ndarray:
    """Each user's best row of `rows`: one int64 key per channel, its parts packed by priority."""
    width = {Priority.COST: 2**24, Priority.SPEED: 2**7, Priority.CASH: 2}
    best = np.full(len(priority), -1, dtype=np.int64)
    for p_index, first in enumerate(PRIORITIES):
        users = np.flatnonzero(priority == p_index)
        keys = np.empty((len(rows), len(users)), dtype=np.int64)
        for j, row in enumerate(rows):
            part = {Priority.COST: 2**24 - 1 - q[row]["net"][users], Priority.SPEED: q[row]["eta"][users],
                    Priority.CASH: np.int64(1 - cash[row])}  # fmt: skip
            key = np.zeros(len(users), dtype=np.int64)
            for p in Priority.order_with_first(first):
                key = key * width[p] + part[p]
            keys[j] = np.where(q[row]["eligible"][users], key * 16 + row, np.iinfo(np.int64).max)
        smallest = keys.min(axis=0)
        best[users] = np.where(smallest < np.iinfo(np.int64).max, smallest % 16, -1)
    return best


def floor(market: Catalog, schedule: PricingSchedule, p: Population, calendar: WorkingDayCalendar) -> dict[str, Any]:
    channels = sorted([*market.channels, own_offer_at(schedule, AT)], key=lambda c: c.id)
    q = [_channel(c, p, calendar) for c in channels]
    cash = [int(c.payout_form.is_cash) for c in channels]
    own = [c.id for c in channels].index(OWN_OFFER_ID)
    choice = _packed_argmin(q, cash, p.priority, list(range(len(channels))))
    won = np.flatnonzero(choice == own)
    sub = Population(p.balance_fen[won], p.carrier[won], p.credit_limit_fen[won], p.priority[won])
    others = [r for r in range(len(channels)) if r != own]
    q_won = [{k: v[won] for k, v in x.items()} for x in q]
    alternative = _packed_argmin(q_won, cash, sub.priority, others)
    nets = np.stack([x["net"] for x in q_won])
    alt_net = np.where(alternative >= 0, nets[np.maximum(alternative, 0), np.arange(len(won))], 0)
    cost: CostSchedule = schedule.costs[OWN_OFFER_ID]
    mine = q_won[own]

    def cost_of(amounts: np.ndarray) -> np.ndarray:
        shortfall = amounts - amounts * cost.resale_value_ppm // PPM
        return _fee(cost.partner_fee, amounts) + shortfall + (amounts * cost.loss_rate_ppm + PPM // 2) // PPM

    route = mine["full"] * cost_of(mine["size"]) + np.where(mine["remainder"] > 0, cost_of(mine["remainder"]), 0)
    revenue, cost_sum = int(mine["fee"].sum()), int(route.sum())
    return {"winners": len(won), "volume_fen": int(mine["recoverable"].sum()), "revenue_fen": revenue,
            "cost_fen": cost_sum, "margin_fen": revenue - cost_sum,
            "user_surplus_fen": int((mine["net"] - alt_net).sum()),
            "chosen": np.bincount(choice + 1, minlength=len(channels) + 1).tolist()}  # fmt: skip


def figures(result: Any) -> dict[str, Any]:
    sums = {k: v for k, v in result.summary().items() if k.endswith("_fen")}
    chosen = [result.chosen["none"], *(result.chosen[c] for c in result.channel_ids)]
    return {"winners": result.total.winners, **sums, "chosen": chosen}


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def main() -> None:
    market, calendar = load_catalog(), load_calendar()
    schedule = parse_document((DATA_DIR / "pricing" / "schedule.json").read_bytes(), market=market.by_id())
    make_s, population = timed(lambda: synthetic_population(USERS, SEED))
    print(f"{USERS:,} synthetic users (log-normal balances, median 150 CNY) made in {make_s:.2f} s; "
          f"{len(market.channels)} market channels and the own offer")  # fmt: skip
    sim_runs, floor_runs = [], []
    for _ in range(RUNS):
        seconds, result = timed(lambda: simulate(market, schedule, population, at=AT, calendar=calendar))
        sim_runs.append(seconds)
        seconds, floor_result = timed(lambda: floor(market, schedule, population, calendar))
        floor_runs.append(seconds)
    ours = figures(result)
    assert ours == floor_result, (ours, floor_result)  # the same figures, both ways
    simulate_s, floor_s = statistics.median(sim_runs), statistics.median(floor_runs)
    ratio = simulate_s / floor_s
    ok_s = "ok" if simulate_s <= TARGET_S else "MISSED"
    ok_ratio = "ok" if ratio <= TARGET_RATIO else "MISSED"
    shown = f"win rate {result.win_rate:.1%}, margin {result.margin_fen / 100:,.2f} CNY"
    print(f"  simulate       {simulate_s:6.3f} s   {shown}   [target <= {TARGET_S} s: {ok_s}]")
    print(f"  floor (numpy)  {floor_s:6.3f} s   packed-key argmin over all users: the same figures")
    print(f"  ratio          {ratio:6.2f}     [target <= {TARGET_RATIO}x: {ok_ratio}]")
    print("  page update    (measured with the lab page, which comes with the page: page_ratio null)")
    print(json.dumps({"users": USERS, "simulate_s": round(simulate_s, 3), "floor_s": round(floor_s, 3),
                      "ratio": round(ratio, 2), "page_ratio": None}))  # fmt: skip


if __name__ == "__main__":
    main()
