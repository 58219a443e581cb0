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

The lab page's update after a change, beside a Streamlit floor page, in headless Chromium (Debian's
/usr/bin/chromium through Playwright, the browser tests' flags), both served and sampled in the same
run, in turn (lab, floor, lab, floor, ...) so that the noise of a shared machine falls on both:
    lab page    the real portal (`streamlit run app.py` on a free 127.0.0.1 port, a fresh SQLite
                database and secrets file in a temporary directory), an analyst (`ana.one`, made
                with `python -m core users create`) signed in through the built-in sign-in, at
                /pricing-lab with its defaults (a new draft from the live version, 20,000 synthetic
                users). One change: the own offer's fee cap (`pricing.term.cap_yuan`) filled and
                Enter pressed, alternating 5.00 and 8.00 CNY (both bind, so every change is real).
    floor       `benchmarks/floor_app.py`, the floor of `benchmarks/page.py`: one number input,
                a 7-row `st.dataframe` and one plotly chart, all depending on the input, nothing
                cached, no database, no sign-in; a balance entered, alternating 150 and 320.
    update      from the Enter keydown to the page settled, as `benchmarks/page.py` defines and
                times it in the page's own clock (the app reports `notRunning`, nothing stale,
                every chart drawn, a quiet spell in the main area; the time of the last change),
                and a figure that depends on the input must have changed: the data of the page's
                plotly chart (the lab's margin curve is the draft's, so it moves with the cap).
Why that floor: it is the least a "type a number, see the figures" update can cost in Streamlit —
the keystroke's round trip, a script rerun, and the browser redrawing a table and a chart, the
elements the lab shows its results with — so what the lab costs above it is the lab's own. A
change in the draft reruns the draft's part of the page alone (a fragment: the editors, the rest
of its widgets, the draft's simulation and its margin curve's points); the market's ranking and
the live version's run are kept for the minute, so the first update of each minute also ranks
the market again (one in fifteen or so here). It is the same floor as the Compare page's, so the
two pages' ratios can be read together.
One update of each is made first and dropped (the first run of a script imports and compiles).
Median of `BENCH_UPDATES` (15) updates each. Target: the lab's update <= 1.5x the floor's.
The page part is skipped, with the reason printed and `page_ratio` null, when Chromium or
Playwright is missing or `BENCH_PAGE=0`; every process it starts is stopped before it returns.

The last line is one JSON object: users, simulate_s, floor_s, ratio, page_ratio (and page_ms,
page_floor_ms). Exit status 0 when a target is missed (this is a measurement), 1 on an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
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
ROOT = Path(__file__).resolve().parent.parent

# The page part: the lab's update after a change beside the floor page's, in the same browser.
PAGE_TARGET = 1.5
UPDATES = int(os.environ.get("BENCH_UPDATES", "15"))
ANALYST, PASSWORD = "ana.one", "correct horse battery staple"
LAB_CAPS, LAB_WARM_UP = ("5.00", "8.00"), "6.00"  # CNY; the live cap is 60.00, these bind
FLOOR_BALANCES, FLOOR_WARM_UP = ("150", "320"), "250"
VIEWPORT = {"width": 1366, "height": 2400}  # the lab is long: the browser test's window
WAIT_MS = 60_000
# The lab's first result on screen: a drawn plotly chart in the main area (its margin curve).
CHART_SHOWN_JS = """[...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')]
    .find((el) => el.querySelector(".main-svg"))"""
# The data of the main area's plotly charts: a figure that depends on the input, which must change.
FIGURES_JS = """() => JSON.stringify([...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .map((gd) => gd.data ?? null))"""


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


# --- the page: the lab's update after a change beside a Streamlit floor page -------------------


@dataclass
class PageSamples:
    """Milliseconds per update (keydown to settled; keydown to the last server message)."""

    settled: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)


def page_unavailable() -> str | None:
    """Why the page part cannot run here, or None."""
    if os.environ.get("BENCH_PAGE", "1") == "0":
        return "BENCH_PAGE=0"
    try:
        import playwright.sync_api  # noqa: F401

        from tests.support.browser import CHROMIUM
    except ImportError as error:
        return f"Playwright is not importable ({error})"
    if not os.path.exists(CHROMIUM):
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def create_analyst(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "core", "users", "create", "--role", "analyst", "--username", ANALYST],
        cwd=ROOT, env={**os.environ, **env}, input=PASSWORD + "\n", capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip


def signed_in_lab(browser: Any, url: str, instrument: str, t: Any) -> Any:
    """A fresh instrumented context, the analyst signed in through the built-in provider's staff
    form (as tests/e2e/test_pricing_browser.py does), then the lab opened (the caller waits for it)."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    context.add_init_script(instrument)
    from tests.support.browser import staff_sign_in  # deferred like the rest of the page part

    page = staff_sign_in(context, url, ANALYST, PASSWORD, timeout_ms=WAIT_MS)
    page.goto(f"{url}/pricing-lab")
    return page


def timed_update(bench: Any, page: Any, app: Any, value: str, samples: PageSamples | None) -> None:
    """Enter `value` in the app's field; wait until the page settles with its chart's data changed."""
    box = page.locator(app.input_container).filter(has_text=app.input_label).locator("input")
    before = page.evaluate(FIGURES_JS)
    box.fill(value)
    box.press("Enter")
    state = bench.wait_settled(page, app)
    if page.evaluate(FIGURES_JS) == before:
        raise RuntimeError(f"{app.name}: entering {value} did not change the chart's data")
    if samples is not None:
        samples.settled.append(state["lastChange"] - state["t0"])
        samples.server.append(state["lastMessage"] - state["t0"])


def measure_page() -> dict[str, Any]:
    """Serve the portal and the floor, sign the analyst in, and time the updates of both in turn."""
    from playwright.sync_api import sync_playwright

    import benchmarks.page as bench  # the Compare page's benchmark: its floor, server and "settled"
    from core.i18n import Translator
    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, warmed_portal

    t = Translator("zh-CN")
    cap_field = '[data-testid="stNumberInput"]', t("pricing.term.cap_yuan")
    lab = bench.App("pricing lab", "app.py", CHART_SHOWN_JS, *cap_field)
    floor_app = bench.FLOOR
    caption = re.escape(t("pricing.run_seconds", users="USERS", seconds="SECONDS"))
    caption = caption.replace("USERS", r"([\d,]+)").replace("SECONDS", r"([\d.]+)")
    lab_samples, floor_samples, lab_sim_s, lab_users = PageSamples(), PageSamples(), [], ""
    with contextlib.ExitStack() as stack:  # unwound in reverse: pages, portal, browser, floor, files
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pricing-")))
        env = {"DATABASE_URL": f"sqlite:///{home / 'portal.sqlite3'}"}
        env["PORTAL_SECRETS_FILE"] = str(home / "secrets.json")
        create_analyst(env)
        floor_url = stack.enter_context(bench.streamlit_server(floor_app.script))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        url = stack.enter_context(warmed_portal(browser, "app.py", **env))
        instrument = bench.INSTRUMENT_JS
        lab_page = signed_in_lab(browser, url, instrument.replace("__FIRST_SHOWN__", lab.first_shown_js), t)
        stack.callback(lab_page.context.close)
        floor_context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        stack.callback(floor_context.close)
        floor_context.add_init_script(instrument.replace("__FIRST_SHOWN__", floor_app.first_shown_js))
        floor_page = floor_context.new_page()
        floor_page.goto(floor_url)
        pages = ((lab, lab_page, LAB_CAPS, lab_samples), (floor_app, floor_page, FLOOR_BALANCES, floor_samples))
        for app, page, _, _ in pages:
            bench.wait_settled(page, app)
        timed_update(bench, lab_page, lab, LAB_WARM_UP, None)  # dropped: the first run compiles
        timed_update(bench, floor_page, floor_app, FLOOR_WARM_UP, None)
        for i in range(UPDATES):
            for app, page, values, samples in pages:
                timed_update(bench, page, app, values[i % len(values)], samples)
            shown = re.search(caption, lab_page.locator('[data-testid="stMain"]').inner_text())
            if shown:  # the lab's own caption: how many users, and how long its simulations took
                lab_users, seconds = shown.groups()
                lab_sim_s.append(float(seconds))
    return {"lab": lab_samples, "floor": floor_samples, "lab_sim_s": lab_sim_s, "lab_users": lab_users}


def report_page(measured: dict[str, Any]) -> dict[str, Any]:
    lab, base = measured["lab"], measured["floor"]
    lab_ms, floor_ms = statistics.median(lab.settled), statistics.median(base.settled)
    page_ratio = lab_ms / floor_ms
    ok = "ok" if page_ratio <= PAGE_TARGET else "MISSED"
    print(f"  page update    {UPDATES} updates each in headless chromium, median ms (min): keydown -> settled")
    users = f"{measured['lab_users']} users" if measured["lab_users"] else "its population"
    print(f"    lab          {lab_ms:6.0f} ({min(lab.settled):.0f})   fee cap entered, {users} re-simulated")
    print(f"    floor page   {floor_ms:6.0f} ({min(base.settled):.0f})   benchmarks/floor_app.py: balance entered")
    print(f"    page ratio   {page_ratio:6.2f}x    [target <= {PAGE_TARGET}x: {ok}]")
    lab_server, floor_server = statistics.median(lab.server), statistics.median(base.server)
    print(f"    keydown -> last server message: lab {lab_server:.0f} ms, floor {floor_server:.0f} ms")
    if measured["lab_sim_s"]:
        sim_ms = statistics.median(measured["lab_sim_s"]) * 1000
        print(f"    of the lab's rerun, its simulations (live, draft, margin curve) take {sim_ms:.0f} ms (its caption)")
    return {"page_ms": round(lab_ms, 1), "page_floor_ms": round(floor_ms, 1), "page_ratio": round(page_ratio, 2)}


def page_part() -> tuple[dict[str, Any], int]:
    """The page figures for the JSON line (nulls when not measured) and the exit status."""
    nothing: dict[str, Any] = {"page_ms": None, "page_floor_ms": None, "page_ratio": None}
    reason = page_unavailable()
    if reason is not None:
        print(f"  page update    skipped: {reason}; page_ratio null")
        return nothing, 0
    try:
        measured = measure_page()
    except Exception as error:  # a measurement that failed says why, and the JSON line still comes last
        traceback.print_exc()
        print(f"  page update    not measured: {type(error).__name__}: {str(error)[:300]}; page_ratio null")
        return nothing, 1
    return report_page(measured), 0


def main() -> int:
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
    page, status = page_part()
    print(json.dumps({"users": USERS, "simulate_s": round(simulate_s, 3), "floor_s": round(floor_s, 3),
                      "ratio": round(ratio, 2), **page}))  # fmt: skip
    return status


if __name__ == "__main__":
    sys.exit(main())
