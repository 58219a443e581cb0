"""The fault simulation: `simulate(seed, ...)` runs recoveries with injected errors, timeouts
that did and did not take effect, refused and failed payouts, late, duplicated and lost
notifications, and a crash of the worker at every step boundary; then checks the invariants
(`core.simulation.invariants`). Everything runs on one thread, on a simulated clock, from one
seeded random source: a seed replays exactly."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from core.adapters.sandbox.faults import Faults
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog
from core.persistence.tables import OutboxMessage
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.services.recovery.views import RecoveryRequest
from core.services.recovery_worker import Claim, RecoveryWorker
from core.simulation.invariants import check_invariants
from core.simulation.rig import Rig, SimClock, build_rig, memory_engine, sample_payee


class SimulatedCrash(Exception):
    """The worker process 'dies' here; nothing after this point in the step happens."""


@dataclass
class SeedResult:
    seed: int
    recoveries: int = 0
    transactions: int = 0
    steps: int = 0
    crashes: int = 0
    notices: int = 0
    violations: list[str] = field(default_factory=list)


def _phone(rng: random.Random) -> str:
    return rng.choice(["138", "139", "150", "186", "130", "133", "189", "177"]) + f"{rng.randrange(10**8):08d}"


def simulate(
    seed: int, catalog: Catalog, *, recoveries: int = 10, fault_rate: float = 0.1, max_steps: int = 20_000
) -> SeedResult:
    """One seeded run: submit `recoveries`, work them to the end through faults and crashes,
    check the invariants."""
    rng = random.Random(seed)  # noqa: S311 - a replayable simulation, not a secret
    clock = SimClock()
    rig = _faulty_rig(rng, catalog, clock, fault_rate)
    result = SeedResult(seed)
    opening = _submit(rng, rig, catalog, result, recoveries, fault_rate)
    _work(rng, rig, clock, result, fault_rate, max_steps)
    result.violations.extend(check_invariants(rig, opening))
    return result


def _faulty_rig(rng: random.Random, catalog: Catalog, clock: SimClock, fault_rate: float) -> Rig:
    faults = Faults(
        error_rate=fault_rate, timeout_lost_rate=fault_rate, timeout_done_rate=fault_rate, seed=rng.randrange(2**32)
    )
    rig = build_rig(memory_engine(), catalog, clock=clock, seconds=clock.seconds, faults=faults)
    rig.payouts.settle_s = rng.choice([0.0, 1.0, 30.0])
    rig.payouts.reject_rate = rig.payouts.fail_rate = fault_rate / 2
    rig.payouts.duplicate_rate, rig.payouts.lost_rate = fault_rate * 2, fault_rate
    rig.payouts.notify_delay_s = rng.choice([0.0, 5.0, 120.0])
    return rig


def _submit(
    rng: random.Random, rig: Rig, catalog: Catalog, result: SeedResult, count: int, fault_rate: float
) -> dict[str, int]:
    """Submit `count` recoveries, some clicked more than once; returns each number's opening
    balance."""
    channels = list(catalog.channels)
    opening: dict[str, int] = {}
    for i in range(count):
        phone = _phone(rng)
        number = parse_mobile(phone)
        consumer = rig.consumer(phone)
        opening[phone] = rng.choice([2_000, 30_000, 120_000, 400_000])
        rig.carrier.balances[phone] = opening[phone]
        if rng.random() < fault_rate:  # ported away from the carrier its segment names
            rig.carrier.carriers[phone] = rng.choice([c for c in Carrier if c is not number.allocated_carrier])
        channel = rng.choice(channels)
        amount = rng.choice([5_000, 20_000, 50_000, 150_000, 300_000])
        request = RecoveryRequest(channel.id, phone, amount, sample_payee(channel.payout_form, i))
        for _ in range(rng.choice([1, 1, 2, 3])):  # the same click sent again
            try:
                view = rig.recoveries.submit(consumer, f"sim-key-{i:05d}", request)
            except Exception as exc:  # a refusal (limits, minimum) is a fine outcome of a request
                if not getattr(exc, "key", "").startswith(("error.recovery", "error.amount")):
                    result.violations.append(f"submission {i} raised {type(exc).__name__}: {exc}")
                break
            if view.created:
                result.recoveries += 1
                result.transactions += len(view.parts)
    return opening


def _work(rng: random.Random, rig: Rig, clock: SimClock, result: SeedResult, fault_rate: float, max_steps: int) -> None:
    """Run the worker, crashing it now and then, delivering notices and moving the clock on to
    whatever is due next, until nothing is left to do (or `max_steps`)."""

    def crash_at(boundary: str, claim: Claim) -> None:
        if rng.random() < fault_rate / 3:
            raise SimulatedCrash(boundary)

    def fresh_worker() -> RecoveryWorker:  # a new process: nothing of the last one survives
        return rig.worker(crash_at=crash_at, lease_s=30.0, poll_s=2.0)

    worker = fresh_worker()
    for _ in range(max_steps):
        try:
            busy = worker.run_once()
        except SimulatedCrash:
            result.crashes += 1
            worker = fresh_worker()
            busy = True
        result.notices += rig.payouts.deliver_due()
        if busy:
            result.steps += 1
            continue
        upcoming = _next_due(rig)
        if upcoming is None:
            return
        clock.advance_to(upcoming)
    result.violations.append(f"the run did not settle within {max_steps} steps")


def _next_due(rig: Rig) -> dt.datetime | None:
    with UnitOfWork(rig.engine) as uow:
        message = uow.session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.done_at).is_(None))
            .order_by(col(OutboxMessage.available_at))
            .limit(1)
        ).first()
    candidates = [message.available_at] if message is not None else []
    notice_due = rig.payouts.next_notice_due()
    if notice_due is not None:
        candidates.append(dt.datetime.fromtimestamp(notice_due, dt.UTC))
    return min(candidates) if candidates else None


def summary(results: list[SeedResult], fault_rate: float) -> dict[str, Any]:
    failing = [r for r in results if r.violations]
    return {
        "seeds": len(results),
        "fault_rate": fault_rate,
        "recoveries": sum(r.recoveries for r in results),
        "transactions": sum(r.transactions for r in results),
        "crashes": sum(r.crashes for r in results),
        "notices": sum(r.notices for r in results),
        "failing_seeds": [r.seed for r in failing],
        "violations": [f"seed {r.seed}: {v}" for r in failing for v in r.violations],
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)
