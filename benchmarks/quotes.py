"""Quote engine speed: one full comparison, and the batch form against a hand-written floor.

- single: `compare()` of every channel for one parsed request (the work behind each page
  update), and the same through `QuoteService.compare` from raw text (parsing included).
- batch: `QuoteService.batch` over 1,000,000 balances for every channel, beside its floor:
  the same arithmetic written directly in numpy for the bundled catalog's constants.

Targets: one comparison under 200 µs; the batch within 2x of its floor.
The last line is one JSON object: single_us, batch_s, floor_s, ratio.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.quotes import QuoteRequest, compare
from core.reference_data import load_calendar, load_catalog
from core.services.quoting import QuoteInput, QuoteService

N = 1_000_000
PPM = 1_000_000


def best_of(fn, repeat: int, number: int) -> float:
    """Median seconds per call over `repeat` rounds of `number` calls."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


Outputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # recoverable, tx, fee, hidden, net


def floor_batch(balances: np.ndarray, credit_limit_fen: int) -> dict[str, Outputs]:
    """The bundled catalog's arithmetic for a China Mobile number, written out by hand: the same
    five outputs per eligible channel as the engine (ineligible channels cost the floor nothing)."""

    def tiered(amount: np.ndarray, bounds: list[int], rates: list[int], floor: int) -> np.ndarray:
        rate = np.array(rates, dtype=np.int64)[np.searchsorted(np.array(bounds, dtype=np.int64), amount)]
        return np.minimum(np.maximum((amount * rate + PPM // 2) // PPM, floor), amount)

    def payment_app(bounds: list[int], rates: list[int], floor: int, fee_of_500: int) -> Outputs:
        full, rest = np.divmod(balances, 50_000)
        rest = np.where(rest >= 1_000, rest, 0)
        fee = full * fee_of_500 + np.where(rest > 0, tiered(rest, bounds, rates, floor), 0)
        recoverable = full * 50_000 + rest
        net = recoverable - fee
        return recoverable, full + (rest > 0), fee, np.zeros_like(net), net

    def carrier_app() -> Outputs:
        half = balances * 500_000 // PPM
        recoverable = np.where(half >= 100, half, 0)
        net = recoverable * 900_000 // PPM
        return recoverable, (recoverable > 0).astype(np.int64), np.zeros_like(net), recoverable - net, net

    def points_mall() -> Outputs:
        size = credit_limit_fen * 200_000 // PPM
        full, rest = np.divmod(balances, size)
        rest = np.where(rest >= 100, rest, 0)
        recoverable = full * size + rest
        net = recoverable * 800_000 // PPM
        return recoverable, full + (rest > 0), np.zeros_like(net), recoverable - net, net

    return {
        "alipay": payment_app([10_000, 30_000], [50_000, 40_000, 25_000], 50, 1_250),
        "wechat_pay": payment_app([20_000], [45_000, 30_000], 30, 1_500),
        "china_mobile_app": carrier_app(),
        "icbc_e_mall": points_mall(),
        "cmb_life": points_mall(),
    }


def main() -> None:
    catalog, calendar = load_catalog(), load_calendar()
    at = dt.datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)
    service = QuoteService(catalog, calendar, clock=lambda: at)
    request = QuoteRequest(balance_fen=120_000, carrier=Carrier.CHINA_MOBILE, at=at, credit_limit_fen=1_000_000)
    raw = QuoteInput(balance="1,200", phone="13800138000", credit_limit="10000")

    single = best_of(lambda: compare(catalog, request, calendar), repeat=15, number=2_000)
    from_text = best_of(lambda: service.compare(raw), repeat=15, number=1_000)

    rng = np.random.default_rng(7)
    balances = rng.integers(1, 5_000_00, size=N, dtype=np.int64)
    batch_s = best_of(lambda: service.batch(request, balances), repeat=7, number=1)
    floor_s = best_of(lambda: floor_batch(balances, 1_000_000), repeat=7, number=1)

    # the floor must compute the same numbers, or the comparison means nothing
    ours = {b.channel.id: b for b in service.batch(request, balances)}
    for cid, expected in floor_batch(balances, 1_000_000).items():
        b = ours[cid]
        for got, want in zip(
            (b.recoverable_fen, b.transactions, b.fee_fen, b.hidden_cost_fen, b.net_fen), expected, strict=True
        ):
            assert np.array_equal(got, want), cid

    ratio = batch_s / floor_s
    print(f"one comparison, {len(catalog.channels)} channels:      {single * 1e6:8.1f} µs   (target < 200 µs)")
    print(f"  from raw text (parse phone, amount): {from_text * 1e6:8.1f} µs")
    print(f"batch, {N:,} balances x {len(catalog.channels)} channels: {batch_s:8.3f} s")
    print(f"  floor (same arithmetic in numpy):   {floor_s:8.3f} s    ratio {ratio:.2f}x (target <= 2x)")
    print(
        json.dumps(
            {
                "single_us": round(single * 1e6, 1),
                "batch_s": round(batch_s, 4),
                "floor_s": round(floor_s, 4),
                "ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
