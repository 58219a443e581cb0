"""The recovery engine against its sandbox partners, in one process, with faults: the rig the
fault simulation, the tests and the benchmark share, and the simulation itself.

`simulate(seed, ...)` runs recoveries with injected errors, timeouts that did and did not take
effect, refused and failed payouts, late, duplicated and lost notifications, and a crash of
the worker at every step boundary; then checks the invariants against the database and
against what the partner sandboxes themselves recorded. Everything runs on one thread, on a
simulated clock, from one seeded random source: a seed replays exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, col, select

from core.adapters.carrier import CarrierApi
from core.adapters.payouts import PayoutApi, notify_url
from core.adapters.sandbox.carrier import SandboxCarrier
from core.adapters.sandbox.faults import Faults
from core.adapters.sandbox.payouts import SandboxPayouts
from core.bootstrap import notice_transport
from core.domain.access import Principal, Role
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, PayoutForm
from core.domain.ledger import Account
from core.domain.limits import PortalLimits
from core.domain.payee import luhn_ok
from core.domain.recovery import TERMINAL, RecoveryState
from core.persistence.db import engine_for
from core.persistence.tables import LedgerPosting, OutboxMessage, Recovery, RecoveryTransition, User, VerifiedNumber
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.services.audit import AuditLog, verify_audit_chain
from core.services.payout_notices import PayoutNotices
from core.services.recovery import RecoveryService
from core.services.recovery.standins import ApproveEverything, CarrierNotAsked, NoAgreementNeeded
from core.services.recovery.views import RecoveryRequest
from core.services.recovery_worker import Claim, RecoveryWorker, reference

EPOCH = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)


class SimulatedCrash(Exception):
    """The worker process 'dies' here; nothing after this point in the step happens."""


class SimClock:
    """One clock for the database (datetimes) and the sandboxes (seconds)."""

    def __init__(self, start: dt.datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance_to(self, moment: dt.datetime) -> None:
        self.now = max(self.now, moment)


@dataclass
class Rig:
    engine: Engine
    recoveries: RecoveryService
    notices: PayoutNotices
    carrier: SandboxCarrier
    payouts: SandboxPayouts
    carrier_api: CarrierApi
    payout_apis: dict[str, PayoutApi]
    catalog: Catalog
    cipher: FieldCipher
    index: BlindIndex
    clock: Any

    def worker(self, **options: Any) -> RecoveryWorker:
        options.setdefault("clock", self.clock)
        return RecoveryWorker(
            self.engine,
            self.recoveries,
            self.carrier_api,
            self.payout_apis,
            lambda: self.catalog,
            lambda channel_id: notify_url("http://portal.test", channel_id),
            **options,
        )

    def consumer(self, phone: str) -> Principal:
        return add_verified_consumer(self.engine, self.cipher, self.index, phone, self.clock())


def add_verified_consumer(
    engine: Engine, cipher: FieldCipher, index: BlindIndex, phone: str, now: dt.datetime
) -> Principal:
    """A consumer who has verified `phone`, as the SMS sign-up leaves them (for simulations,
    benchmarks and tests that start past sign-up)."""
    number = parse_mobile(phone)
    with UnitOfWork(engine) as uow:
        user = User(role="consumer", created_at=now)
        uow.session.add(user)
        uow.session.flush()
        row = VerifiedNumber(
            user_id=user.id, number_cipher=b"", number_index=index(number.national), masked=number.masked
        )
        row.number_cipher = cipher.encrypt(number.national, table="verified_numbers", column="number", row_id=row.id)
        uow.session.add(row)
        uow.commit()
        return Principal(user.id, Role.CONSUMER)


def build_rig(
    engine: Engine,
    catalog: Catalog,
    *,
    clock: Any = None,
    seconds: Any = None,
    faults: Faults | None = None,
    limits: PortalLimits | None = None,
    settle_s: float = 0.0,
    timeout_s: float = 5.0,
    keys: tuple[bytes, bytes] | None = None,
) -> Rig:
    """Everything a recovery needs, wired in-process: sandbox partners over httpx transports and
    notifications posted straight to the portal's notification handler."""
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    seconds = seconds or time.time
    data_key, index_key = keys or (secrets.token_bytes(32), secrets.token_bytes(32))
    cipher, index = FieldCipher(data_key), BlindIndex(index_key, MOBILE_NUMBER)
    limits = limits or PortalLimits(10**9, 10**9, 10**10)
    recoveries = RecoveryService(
        engine,
        cipher,
        index,
        lambda: catalog,
        limits,
        risk=ApproveEverything(),
        agreements=NoAgreementNeeded(),
        carrier=CarrierNotAsked(),
        audit=AuditLog(clock),
        clock=clock,
    )
    channel_ids = [c.id for c in catalog.channels]

    def secret_for(channel_id: str) -> bytes:
        return b"sim-secret:" + channel_id.encode()

    notices = PayoutNotices(engine, recoveries, lambda c: secret_for(c) if c in channel_ids else None, clock=seconds)
    faults = faults or Faults()
    carrier = SandboxCarrier(faults=faults)
    payouts = SandboxPayouts(
        secret_for=secret_for,
        notifier=httpx.Client(transport=notice_transport(lambda: notices)),
        faults=faults,
        clock=seconds,
        settle_s=settle_s,
    )
    carrier_api = CarrierApi(
        httpx.Client(transport=httpx.MockTransport(carrier), base_url="http://carrier.sandbox/"), timeout_s=timeout_s
    )
    transport = httpx.MockTransport(payouts)
    payout_apis = {
        c: PayoutApi(httpx.Client(transport=transport, base_url=f"http://payouts.sandbox/{c}/"), c, timeout_s=timeout_s)
        for c in channel_ids
    }
    return Rig(engine, recoveries, notices, carrier, payouts, carrier_api, payout_apis, catalog, cipher, index, clock)


def memory_engine() -> Engine:
    """A private in-memory SQLite database with the current tables (fast, for simulation runs)."""
    engine = engine_for("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    return engine


# --- the simulation --------------------------------------------------------------------------------


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
    rng = random.Random(seed)  # noqa: S311 - a replayable simulation, not a secret
    clock = SimClock()
    faults = Faults(
        error_rate=fault_rate, timeout_lost_rate=fault_rate, timeout_done_rate=fault_rate, seed=rng.randrange(2**32)
    )
    rig = build_rig(memory_engine(), catalog, clock=clock, seconds=clock.seconds, faults=faults)
    rig.payouts.settle_s = rng.choice([0.0, 1.0, 30.0])
    rig.payouts.reject_rate = rig.payouts.fail_rate = fault_rate / 2
    rig.payouts.duplicate_rate, rig.payouts.lost_rate = fault_rate * 2, fault_rate
    rig.payouts.notify_delay_s = rng.choice([0.0, 5.0, 120.0])
    result = SeedResult(seed)
    channels = list(catalog.channels)
    opening: dict[str, int] = {}
    for i in range(recoveries):
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
            break
        clock.advance_to(upcoming)
    else:
        result.violations.append(f"the run did not settle within {max_steps} steps")
    result.violations.extend(check_invariants(rig, opening))
    return result


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


def check_invariants(rig: Rig, opening: dict[str, int] | None = None) -> list[str]:
    """The promises of the engine, checked against the database and the partners' own records."""
    problems: list[str] = []
    with UnitOfWork(rig.engine) as uow:
        rows = {r.id: r for r in uow.session.exec(select(Recovery)).all()}
        postings = uow.session.exec(select(LedgerPosting)).all()
        debited_ids = {
            t.recovery_id
            for t in uow.session.exec(select(RecoveryTransition).where(RecoveryTransition.event == "debit_confirmed"))
        }
        open_messages = uow.session.exec(select(OutboxMessage).where(col(OutboxMessage.done_at).is_(None))).all()
    entries: dict[str, int] = defaultdict(int)
    accounts: dict[str, int] = defaultdict(int)
    for posting in postings:
        entries[posting.entry_id] += posting.amount_fen
        accounts[posting.account] += posting.amount_fen
    problems += [f"ledger entry {e} sums to {total} fen" for e, total in entries.items() if total]

    by_ref = {reference(r.id, kind): r for r in rows.values() for kind in ("carrier_debit", "payout", "carrier_refund")}
    debits = [d for d in rig.carrier.debits.values() if d.status == "done"]
    refunds = [r for r in rig.carrier.refunds.values() if r.status == "done"]
    paid = [p for book in rig.payouts.records.values() for p in book.values() if p.status(float("inf")) == "paid"]
    for label, records in (("debited", debits), ("refunded", refunds), ("paid", paid)):
        seen: dict[str, int] = defaultdict(int)
        for record in records:
            owner = by_ref.get(record.reference)
            if owner is None:
                problems.append(f"a partner {label} {record.reference}, which is no recovery's")
                continue
            seen[owner.id] += 1
        problems += [f"recovery {rid} {label} {n} times" for rid, n in seen.items() if n > 1]

    quiet = not open_messages and not rig.payouts.pending_notifications()
    if quiet:
        for rid, row in rows.items():
            state = RecoveryState(row.state)
            if rid in debited_ids and state not in (RecoveryState.PAID, RecoveryState.REFUNDED):
                problems.append(f"recovery {rid} was debited but is {state.value}, not paid or refunded")
            if state not in TERMINAL:
                problems.append(f"recovery {rid} is still {state.value} with nothing left to do")
        for account in (Account.CUSTOMER_PAYABLE, Account.PAYOUTS_IN_FLIGHT):
            if accounts.get(account.value, 0):
                problems.append(f"{account.value} holds {accounts[account.value]} fen with every recovery ended")
    fees = sum(rows[by_ref[p.reference].id].fee_fen for p in paid if p.reference in by_ref)
    debited, refunded, paid_out = (sum(x.amount_fen for x in xs) for xs in (debits, refunds, paid))
    if quiet and debited != paid_out + refunded + fees:
        problems.append(f"carrier debits {debited} != payouts {paid_out} + refunds {refunded} + fees {fees}")
    if -accounts.get(Account.PAYOUTS_SETTLED.value, 0) != paid_out:
        problems.append(f"the ledger settled {-accounts.get('payouts_settled', 0)} fen; partners paid {paid_out}")
    for row in rows.values():
        state = RecoveryState(row.state)
        partner_paid = any(p.reference == reference(row.id, "payout") for p in paid)
        if (state is RecoveryState.PAID) != partner_paid:
            problems.append(
                f"recovery {row.id} is {state.value} but the partner {'paid' if partner_paid else 'did not pay'}"
            )
    if opening is not None:
        for phone, start in opening.items():
            moved = sum(d.amount_fen for d in debits if d.msisdn == phone) - sum(
                r.amount_fen for r in refunds if r.msisdn == phone
            )
            if rig.carrier.balances.get(phone, start) != start - moved:
                problems.append("a number's balance moved by more than its debits and refunds")
    checked, broken = verify_audit_chain(rig.engine)
    if broken is not None:
        problems.append(f"audit chain broken at record {broken} of {checked}")
    return problems


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


def sample_payee(form: PayoutForm, i: int) -> str:
    """A payout account of the kind `form` takes: a wallet e-mail, or a card number with a valid
    check digit (vouchers need none)."""
    if form is PayoutForm.CASH_WALLET:
        return f"payee-{i}@example.com"
    body = f"62{i:013d}"
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("one check digit always fits")
