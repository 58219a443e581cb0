"""A worker keeps many partner calls in flight (issue: partners take tens to hundreds of ms):
batches are claimed in one transaction without overlap, every recovery still settles exactly
once, a step that fails leaves its neighbours' outcomes standing, and SQLite writers of one
process queue for the write lock instead of sleeping in its busy handler."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event
from sqlmodel import select

from core.adapters.sandbox.faults import parse_latency
from core.config import ConfigError, Settings
from core.domain.recovery import RecoveryState
from core.persistence.tables import OutboxMessage, Recovery
from core.persistence.uow import UnitOfWork
from core.reference_data import load_catalog
from core.services.recovery.views import RecoveryRequest
from core.services.recovery_worker import refill_at
from core.simulation.rig import Rig, build_rig
from tests.support.people import mobile

CATALOG = load_catalog(Settings().data_dir / "channels.json")


def submit(rig: Rig, count: int) -> None:
    for i in range(count):
        phone = mobile(i)
        rig.carrier.balances[phone] = 100_000
        rig.recoveries.submit(
            rig.consumer(phone), f"inflight-{i:04d}", RecoveryRequest("alipay", phone, 20_000, f"p{i}@example.com")
        )


def states(rig: Rig) -> list[RecoveryState]:
    with UnitOfWork(rig.engine) as uow:
        return [RecoveryState(r.state) for r in uow.session.exec(select(Recovery)).all()]


class InFlight:
    """Counts the partner calls under way at once, by wrapping the sandboxes' fault hook."""

    def __init__(self, rig: Rig) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()
        faults = rig.carrier.faults  # shared with the payout sandbox
        original = faults.before

        def before(request):  # type: ignore[no-untyped-def]
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                return original(request)
            finally:
                with self._lock:
                    self.now -= 1

        faults.before = before  # type: ignore[method-assign]


def test_a_worker_keeps_many_calls_in_flight_and_pays_every_recovery_once(engine):
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0  # no notices: the worker's own answers settle everything
    rig.carrier.faults.latency_s = 0.05
    counter = InFlight(rig)
    submit(rig, 24)
    steps = rig.worker().run_until_idle(concurrency=8)
    assert states(rig) == [RecoveryState.PAID] * 24
    assert counter.most > 1  # calls overlapped
    assert counter.most <= 8  # and never more than the bound
    assert steps == 48  # one debit and one payout step each, no step twice
    debits = list(rig.carrier.debits.values())
    payouts = [p for book in rig.payouts.records.values() for p in book.values()]
    assert len(debits) == len(payouts) == 24
    assert [d.reference for d in debits if d.replays] == [] and [p.reference for p in payouts if p.replays] == []


def test_a_busy_worker_claims_again_only_once_an_eighth_of_its_slots_is_free(engine):
    """With payouts chained to their debits, a slot frees when a recovery ends: claiming at each
    was a claim transaction per recovery. A worker with steps in flight claims again once
    refill_at(concurrency) slots are free; an idle one claims at once, whatever is due."""
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0
    rig.carrier.faults.latency_s = 0.01
    submit(rig, 40)
    worker = rig.worker()
    asked: list[tuple[int, int]] = []  # (slots asked for, messages claimed)
    claim_steps = worker.claim_steps

    def counting(most, busy=()):  # type: ignore[no-untyped-def]
        steps = claim_steps(most, busy)
        asked.append((most, len(steps)))
        return steps

    worker.claim_steps = counting  # type: ignore[method-assign]
    assert refill_at(16) == 2 and refill_at(7) == 1 and refill_at(64) == 8
    assert worker.run_until_idle(concurrency=16) == 80
    assert states(rig) == [RecoveryState.PAID] * 40
    assert asked[0] == (16, 16)  # idle: every slot at once
    took = [most for most, claimed in asked if claimed]
    # 40 debits (each payout is claimed by its debit's answer): 16 at first, then two or more at
    # a time; a claim for one slot only after a wait in which no step finished (a stalled machine)
    assert sum(most < 2 for most in took) <= 2, asked
    assert len(took) <= 16, asked  # claiming at each finished step took 25 or more


def test_a_due_message_does_not_wait_for_slow_calls_holding_most_slots(engine):
    """15 of 16 slots hold calls that do not answer: a recovery submitted meanwhile is claimed
    and called after the worker's idle wait, not after the slow calls (one free slot is fewer
    than refill_at(16))."""
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0
    submit(rig, 15)
    held, late_called = threading.Event(), threading.Event()
    calls = {"n": 0}
    lock = threading.Lock()
    faults = rig.carrier.faults
    original = faults.before

    def before(request):  # type: ignore[no-untyped-def]
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n <= 15:
            held.wait(10)  # the first 15 lookups answer only once the late one is called
        else:
            late_called.set()
            held.set()
        return original(request)

    faults.before = before  # type: ignore[method-assign]
    worker = rig.worker(concurrency=16)
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle_s": 0.05}, daemon=True)
    running.start()
    try:
        deadline = time.monotonic() + 10
        while calls["n"] < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls["n"] == 15  # every slow lookup under way
        phone = mobile(99)
        rig.carrier.balances[phone] = 100_000
        late = RecoveryRequest("alipay", phone, 20_000, "l@example.com")
        rig.recoveries.submit(rig.consumer(phone), "late-0001", late)
        assert late_called.wait(5), "the late recovery waited for the slow calls"
        deadline = time.monotonic() + 10
        while states(rig).count(RecoveryState.PAID) < 16 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        held.set()
        stop.set()
        running.join(timeout=15)
    assert states(rig) == [RecoveryState.PAID] * 16


def test_two_workers_claiming_batches_never_take_the_same_message(engine):
    rig = build_rig(engine, CATALOG)
    submit(rig, 10)
    first, second = rig.worker(name="first"), rig.worker(name="second")
    taken_first = first.claim_steps(6)
    taken_second = second.claim_steps(6)
    seqs_first = {step.claim.seq for step in taken_first}
    seqs_second = {step.claim.seq for step in taken_second}
    assert len(seqs_first) == 6 and len(seqs_second) == 4
    assert not seqs_first & seqs_second
    assert second.claim_steps(6) == []  # everything is claimed for the lease
    # each claim counted its attempt, named its worker and came with its recovery's row
    assert {step.claim.attempt for step in taken_first + taken_second} == {1}
    assert all(step.recovery is not None and step.recovery.id == step.claim.recovery_id for step in taken_first)
    with UnitOfWork(rig.engine) as uow:
        owners = {m.seq: m.claimed_by for m in uow.session.exec(select(OutboxMessage)).all()}
    assert {owners[s] for s in seqs_first} == {"first"} and {owners[s] for s in seqs_second} == {"second"}


def test_a_step_that_fails_leaves_the_outcomes_of_its_batch_standing(engine):
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0
    submit(rig, 6)
    broken = rig.partners.payouts["alipay"]
    original = broken.pay
    calls = {"n": 0}

    def pay_but_fail_the_third(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("a bug in one step")
        return original(*args, **kwargs)

    broken.pay = pay_but_fail_the_third  # type: ignore[method-assign]
    rig.worker().run_until_idle(concurrency=6)
    final = states(rig)
    assert final.count(RecoveryState.PAID) == 5
    assert final.count(RecoveryState.PAYING) == 1  # its step is rescheduled, not lost
    with UnitOfWork(rig.engine) as uow:
        waiting = [m for m in uow.session.exec(select(OutboxMessage)).all() if m.done_at is None]
    assert len(waiting) == 1 and waiting[0].kind == "payout" and waiting[0].last_error == "RuntimeError"


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_sqlite_writers_of_one_process_take_turns_and_a_failed_one_gives_its_turn_back(engine):
    rig = build_rig(engine, CATALOG)
    with pytest.raises(RuntimeError), UnitOfWork(engine) as uow:
        uow.session.connection()  # BEGIN IMMEDIATE: this writer holds the turn ...
        raise RuntimeError("... and fails before it commits")
    done: list[float] = []

    def write(n: int) -> None:
        for i in range(10):
            rig.consumer(mobile(1000 + n * 10 + i))
        done.append(time.monotonic())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(done) == 6  # nobody waited out a busy timeout or hung on a turn never given back
    assert max(done) - started < 30


def test_partner_latency_is_read_as_one_figure_or_a_range_in_milliseconds():
    assert parse_latency("100") == (0.1, 0.1)
    assert parse_latency(" 50-300 ") == (0.05, 0.3)
    for bad in ("", "fast", "300-50", "-5", "1-2-3", "70000"):
        with pytest.raises(ValueError):
            parse_latency(bad)
    assert Settings.from_env({"SANDBOX_LATENCY_MS": "20-40"}).sandbox_latency == (0.02, 0.04)
    with pytest.raises(ConfigError, match="SANDBOX_LATENCY_MS"):
        Settings.from_env({"SANDBOX_LATENCY_MS": "soon"})
    with pytest.raises(ConfigError, match="WORKER_CONCURRENCY"):
        Settings.from_env({"WORKER_CONCURRENCY": "0"})


def test_the_claim_query_is_served_by_the_open_messages_index(engine):
    """The due messages are found through ix_outbox_due (partial: open messages only) on both
    databases; PostgreSQL is told to avoid a sequential scan, which it would prefer on a table
    this small."""
    due = (
        "SELECT seq FROM outbox WHERE done_at IS NULL AND available_at <= CURRENT_TIMESTAMP "
        "ORDER BY available_at, seq LIMIT 16"
    )
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {due}"))
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {due}"))
    assert "ix_outbox_due" in plan


def test_a_step_past_its_lease_is_not_claimed_again_by_the_worker_still_on_it(engine):
    rig = build_rig(engine, CATALOG)
    submit(rig, 3)
    worker = rig.worker(name="slow", lease_s=0.0)  # every claim's lease has run out at once
    first = worker.claim_steps(3)
    assert len(first) == 3
    busy = [step.claim.seq for step in first]
    assert worker.claim_steps(3, busy) == []  # its own steps in flight are left alone ...
    assert len(rig.worker(name="other", lease_s=0.0).claim_steps(3)) == 3  # ... another worker may take them


def test_a_lease_shorter_than_three_partner_timeouts_is_refused():
    with pytest.raises(ConfigError, match="WORKER_LEASE_S"):
        Settings.from_env({"WORKER_LEASE_S": "10", "PARTNER_TIMEOUT_S": "5"})
    assert Settings.from_env({"WORKER_LEASE_S": "15", "PARTNER_TIMEOUT_S": "5"}).worker_lease_s == 15


def _payout_messages(rig: Rig) -> list[OutboxMessage]:
    with UnitOfWork(rig.engine) as uow:
        return [m for m in uow.session.exec(select(OutboxMessage)).all() if m.kind == "payout"]


def test_a_debit_answer_claims_its_payout_and_the_same_step_goes_on_to_pay_it(engine):
    """Claim on create: the transaction that records a debit writes the payout's message
    already claimed by the worker (attempt 1, under its lease), which makes the call at once:
    no claim transaction of its own for the payout."""
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0
    submit(rig, 6)
    worker = rig.worker(name="chaining")
    claimed: list[str] = []
    claim_steps = worker.claim_steps

    def counted(most, busy=()):  # type: ignore[no-untyped-def]
        steps = claim_steps(most, busy)
        claimed.extend(step.claim.kind for step in steps)
        return steps

    worker.claim_steps = counted  # type: ignore[method-assign]
    assert worker.run_until_idle(concurrency=4) == 12
    assert states(rig) == [RecoveryState.PAID] * 6
    assert claimed == ["carrier_debit"] * 6  # no payout was claimed on its own
    payouts = _payout_messages(rig)
    assert [(m.attempts, m.claimed_by, m.done_at is not None) for m in payouts] == [(1, "chaining", True)] * 6
    paid = [p for book in rig.payouts.records.values() for p in book.values()]
    assert len(paid) == 6 and [p.reference for p in paid if p.replays] == []


class _Stopped(Exception):
    """The worker stops here (a crash, as far as the recovery can tell)."""


@pytest.mark.parametrize("boundary", ["claimed", "called"])
def test_a_worker_that_stops_on_a_payout_it_claimed_leaves_it_to_its_lease_and_it_is_paid_once(engine, clock, boundary):
    """The payout claimed with the debit's answer is a claim like any other: a worker that
    stops before recording it holds it until the lease runs out (nobody calls meanwhile); then
    another worker claims it (attempt 2), asks the partner for the status of our reference
    first, and the payout is made once, whether the first worker had called or not."""
    rig = build_rig(engine, CATALOG, settle_s=0.0, clock=clock)
    rig.payouts.lost_rate = 1.0  # no notice: the workers learn the outcome by asking
    submit(rig, 4)

    def stop_at_the_payout(at: str, claim) -> None:  # type: ignore[no-untyped-def]
        if at == boundary and claim.kind == "payout":
            raise _Stopped(at)

    first = rig.worker(name="first", crash_at=stop_at_the_payout, lease_s=30.0)
    first.run_until_idle(concurrency=4)
    assert states(rig) == [RecoveryState.PAYING] * 4
    made = [p for book in rig.payouts.records.values() for p in book.values()]
    assert len(made) == (4 if boundary == "called" else 0)
    second = rig.worker(name="second", lease_s=30.0)
    assert second.run_until_idle(concurrency=4) == 0  # still leased to the first
    clock.advance(seconds=31)
    assert second.run_until_idle(concurrency=4) == 4
    assert states(rig) == [RecoveryState.PAID] * 4
    paid = [p for book in rig.payouts.records.values() for p in book.values()]
    assert len(paid) == 4 and [p.reference for p in paid if p.replays] == []
    assert [(m.attempts, m.claimed_by) for m in _payout_messages(rig)] == [(2, "second")] * 4


def test_a_run_that_has_done_its_steps_goes_on_to_no_further_call(engine):
    """A step asks its run whether to go on as it records an answer (`run_until_idle(max_steps)`
    and `run` once stopped say no): then the payout its debit made due is written unclaimed,
    due now, for any worker, and this step makes no further call."""
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0
    submit(rig, 1)
    worker = rig.worker(name="stopping")
    (step,) = worker.claim_steps(1)
    worker._work(step, go_on=lambda: False)
    (payout,) = _payout_messages(rig)
    assert (payout.attempts, payout.claimed_by, payout.done_at) == (0, "", None)
    assert not any(rig.payouts.records.values())
    assert states(rig) == [RecoveryState.PAYING]
    assert worker.run_until_idle(concurrency=4) == 1  # any run takes it up at once
    assert states(rig) == [RecoveryState.PAID]


def test_recordings_through_the_pool_wait_a_few_at_a_time_holding_a_few_connections(engine):
    """A listener on the engine (a profiler, a capture) sends a SQLite file's writes through the
    pool, as PostgreSQL's always go: a recording takes its pooled connection before it waits for
    the write, so only a few wait at once. (On the kept writer they wait for the write turn
    alone, holding nothing.)"""
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    rig.payouts.lost_rate = 1.0
    submit(rig, 32)
    out = {"now": 0, "most": 0}
    lock = threading.Lock()

    def checkout(*_):  # type: ignore[no-untyped-def]
        with lock:
            out["now"] += 1
            out["most"] = max(out["most"], out["now"])

    def checkin(*_):  # type: ignore[no-untyped-def]
        with lock:
            out["now"] -= 1

    def statement(*_):  # type: ignore[no-untyped-def]
        pass

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine.pool, "checkin", checkin)
    try:
        steps = rig.worker().run_until_idle(concurrency=32)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine.pool, "checkout", checkout)
        event.remove(engine.pool, "checkin", checkin)
    assert steps == 64 and states(rig) == [RecoveryState.PAID] * 32
    waiting = 2 if engine.dialect.name == "sqlite" else 8  # the recordings that wait at once
    assert out["most"] <= waiting + 2  # and the claim, and a read beside them
