"""The worker: makes the partner calls the outbox asks for, and records their answers.

One step, for one outbox message:
    claim     push the message's `available_at` out by a lease and count the attempt (one
              short transaction; on PostgreSQL `FOR UPDATE SKIP LOCKED`, so workers never
              take the same message; on SQLite the write lock does the same)
    call      the partner, with our reference as its idempotency key. From the second attempt
              on, first ask the partner for the status of that reference: a timeout or a crash
              may have left it done, and only "never seen" allows calling again
    record    apply the answer if the claim still holds (the attempt number fences it) and the
              recovery is still in the state that asked; close the message. An unknown outcome
              reschedules the message with a backoff instead.

Partners answer slowly (tens to hundreds of milliseconds), so `run` keeps up to `concurrency`
steps in flight on a bounded pool of threads: one transaction claims as many due messages as
there are free slots (one `UPDATE … RETURNING`, on PostgreSQL over `FOR UPDATE SKIP LOCKED`) and
reads, in the same transaction, the recovery rows their calls need; each call then runs on its
own and records its outcome in its own short transaction, so a step that fails never undoes
its neighbours'. An answer that makes the recovery's next call due (a debit done: the payout)
writes that call's message already claimed by this worker, in the same transaction
(`Transitions.settle_and_claim`), and the step goes on to it at once: a recovery's payout needs
no claim of its own. `run_once` works one message inline and stops there (the fault
simulation's crash hooks, step by step).

A crash at any point leaves the message claimed until its lease runs out; then any worker
takes it up again, asks for status, and goes on. Payouts that are still processing are asked
again later, and the partner's notification may settle them first: whoever is first wins,
the other changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import queue
import re
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy import Integer, bindparam, update
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.adapters.carrier import CarrierApi, Operation, Outcome
from core.adapters.payouts import Payout, PayoutApi, PayoutStatus
from core.domain.catalog import Catalog
from core.domain.limits import serves
from core.domain.recovery import RecoveryEvent, RecoveryState
from core.errors import OutcomeUnknown, PartnerRefused
from core.persistence.fast_reads import Read, Snapshot
from core.persistence.kept_writes import kept, write_transaction
from core.persistence.uow import Prepared, run
from core.services.recovery import RecoveryService
from core.services.recovery.transitions import (
    CALL_STATE,
    CLAIM_HOLDS,
    CLOSE_HELD,
    ENGINE,
    OUTBOX,
    RECOVERIES,
    ClaimFor,
)

log = logging.getLogger(__name__)

#: Boundaries a simulated crash can hit (the simulation's `crash_at` hook sees these names).
BOUNDARIES = ("claimed", "called", "recorded")


CALL_SUFFIX = {"carrier_debit": "d", "payout": "p", "carrier_refund": "r"}
REFERENCE = re.compile(r"rcv-([0-9a-f]{32})-([dpr])")


def reference(recovery_id: str, kind: str) -> str:
    """Our reference for one partner call: the partner's idempotency key."""
    return f"rcv-{recovery_id.replace('-', '')}-{CALL_SUFFIX[kind]}"


def recovery_of(ref: str, kind: str) -> str | None:
    """The recovery a reference of ours names for that kind of call, or None if it is not one."""
    match = REFERENCE.fullmatch(ref)
    if match is None or match.group(2) != CALL_SUFFIX[kind]:
        return None
    return str(uuid.UUID(match.group(1)))


@dataclass(frozen=True, order=True)
class Claim:
    seq: int
    attempt: int
    kind: str
    recovery_id: str


@dataclass(frozen=True)
class CallFor:
    """What a partner call needs of its recovery, read with the claim."""

    id: str
    state: str
    channel_id: str
    debit_fen: int
    fee_fen: int
    number_cipher: bytes
    payee_cipher: bytes

    @property
    def payout_fen(self) -> int:
        return self.debit_fen - self.fee_fen


@dataclass(frozen=True)
class Step:
    """A claimed message and the recovery its call is for, read in the claiming transaction
    (None: the recovery is gone)."""

    claim: Claim
    recovery: CallFor | None


_NO_WAIT = contextlib.nullcontext()

# The worker's statements, each compiled once (`Read`, `Prepared`) and run on the DBAPI cursor.
#: what the claimed steps' calls need of their recoveries, read with the claim
_CALLS_FOR: Read[tuple[str, str, str, int, int, bytes, bytes]] = Read(
    lambda ids: select(*(RECOVERIES.c[name] for name in CallFor.__dataclass_fields__)).where(RECOVERIES.c.id.in_(ids)),
    lists=["ids"],
)
# an outcome is recorded only while the claim holds (`CLOSE_HELD` too)
_RESCHEDULE = Prepared(
    update(OUTBOX).where(*CLAIM_HOLDS).values(available_at=bindparam("due_at"), last_error=bindparam("why"))
)


@dataclass(frozen=True)
class Answer:
    """What a partner said: events to apply, or when to ask again (an unknown outcome)."""

    events: tuple[RecoveryEvent, ...] = ()
    reason: str = ""
    retry_in_s: float | None = None


def _claim_statement(dialect: str) -> Prepared:
    """Claim up to :most due messages for :worker until :lease_until, returning them (built and
    compiled once; `mine` is a list)."""
    due = (
        select(OUTBOX.c.seq)
        .where(
            OUTBOX.c.done_at.is_(None),
            OUTBOX.c.available_at <= bindparam("now"),
            OUTBOX.c.seq.not_in(bindparam("mine", expanding=True)),  # never one this worker is still on
        )
        .order_by(OUTBOX.c.available_at, OUTBOX.c.seq)
        .limit(bindparam("most", type_=Integer))
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claim = (
        update(OUTBOX)
        .where(OUTBOX.c.seq.in_(due.scalar_subquery()))
        .values(attempts=OUTBOX.c.attempts + 1, available_at=bindparam("lease_until"), claimed_by=bindparam("worker"))
        .returning(OUTBOX.c.seq, OUTBOX.c.attempts, OUTBOX.c.kind, OUTBOX.c.recovery_id)
    )
    if dialect == "postgresql":
        # the claim and what its calls need of their recoveries in one statement, one round trip
        # (SQLite has no UPDATE in a WITH: there `claim_steps` reads the recoveries after it)
        claimed = claim.cte("claimed")
        calls_for = [RECOVERIES.c[name] for name in CallFor.__dataclass_fields__]
        joined = claimed.outerjoin(RECOVERIES, RECOVERIES.c.id == claimed.c.recovery_id)
        return Prepared(select(*claimed.c, *calls_for).select_from(joined), lists=["mine"])
    return Prepared(claim, lists=["mine"])


def refill_at(concurrency: int) -> int:
    """How many of a worker's `concurrency` slots must be free before it claims again: an eighth.
    With steps chained (a debit's answer claims its payout), a slot frees when a recovery ends;
    claiming at each would be a claim transaction per recovery. Waiting for an eighth costs a
    due message at most the time an eighth of the steps in flight take to finish."""
    return max(1, concurrency // 8)


class RecoveryWorker:
    def __init__(
        self,
        engine: Engine,
        recoveries: RecoveryService,
        carrier: CarrierApi,
        payouts: Mapping[str, PayoutApi],
        catalog: Callable[[], Catalog],
        notify_url: Callable[[str], str],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        lease_s: float = 30.0,
        poll_s: float = 2.0,
        name: str | None = None,
        crash_at: Callable[[str, Claim], None] | None = None,
        concurrency: int = 1,
    ) -> None:
        self._engine = engine
        self._recoveries = recoveries
        self._carrier = carrier
        self._payouts = payouts
        self._catalog = catalog
        self._notify_url = notify_url
        self._clock = clock
        self.lease = dt.timedelta(seconds=lease_s)
        self.poll_s = poll_s
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._crash_at = crash_at or (lambda boundary, claim: None)
        self.concurrency = max(1, concurrency)
        self._claiming = _claim_statement(engine.dialect.name)
        # SQLite takes one writer at a time: more waiting would only hold pooled connections
        self._recording = threading.BoundedSemaphore(2 if engine.dialect.name == "sqlite" else 8)
        self.steps = 0
        self._count = threading.Lock()
        self._working: set[int] = set()  # the messages this worker's steps are on now (`_count`)

    # --- the loop ---------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Claim and work one due message. False: nothing was due."""
        steps = self.claim_steps(1)
        if not steps:
            return False
        self._work(steps[0])
        return True

    def _work(self, step: Step, *, go_on: Callable[[], bool] | None = None) -> None:
        """Call and record one step. With `go_on` (asked as each answer is recorded), an answer
        that makes the recovery's next call due claims that call's message in the recording
        transaction (`settle_and_claim`), and the step goes on to it here: no claim of its own,
        and no wait for one. A failure is raised, or with `go_on` logged (a pool thread's)."""
        while True:
            claim = step.claim
            with self._count:
                self._working.add(claim.seq)
            try:
                following = self._step(step, go_on=go_on)
            except Exception:
                if go_on is None:
                    raise
                # the message stays claimed until its lease runs out; then any worker asks for status
                log.exception("recovery worker: recording %s of %s failed", claim.kind, claim.recovery_id)
                return
            finally:
                with self._count:
                    self._working.discard(claim.seq)
            if following is None or step.recovery is None:
                return
            seq, kind = following
            step = Step(
                Claim(seq, 1, kind, claim.recovery_id),
                dataclasses.replace(step.recovery, state=CALL_STATE[kind].value),
            )

    def _step(self, step: Step, *, go_on: Callable[[], bool] | None) -> tuple[int, str] | None:
        claim = step.claim
        self._crash_at("claimed", claim)
        try:
            answer = self._call(claim, step.recovery)
        except Exception as exc:  # a bug or an unreadable record must not stop the other recoveries
            log.exception("recovery worker: step %s of %s failed", claim.kind, claim.recovery_id)
            answer = Answer(retry_in_s=60.0, reason=type(exc).__name__)
        self._crash_at("called", claim)
        going_on = go_on is not None and step.recovery is not None and go_on()  # not once the run is done
        with self._waiting_room():
            following = self._record(claim, answer, go_on=going_on)
        if following is not None:
            with self._count:  # this worker's, from the moment it is claimed
                self._working.add(following[0])
        self._crash_at("recorded", claim)
        with self._count:
            self.steps += 1
        return following

    def _waiting_room(self) -> contextlib.AbstractContextManager[object]:
        """Where a recording waits for the database. A recording through a pooled connection
        takes it before it waits for the write: a few wait at once (`_recording`), not every
        step in flight, or they would hold the pool. On a SQLite file's kept writer
        (`kept_writes.kept`) a recording holds nothing while it waits for the write turn, a
        queue of its own: waiting twice cost a second wake-up per recording, which the releasing
        thread pays holding the interpreter (0.2 ms of about 3 per recovery, in alternating runs). Asked
        at each recording: a listener added to the engine sends writes through the pool."""
        return _NO_WAIT if kept(self._engine) else self._recording

    def run_until_idle(self, max_steps: int = 1_000_000, *, concurrency: int = 1) -> int:
        """Work every due message until none is due and none is in flight; the steps worked."""
        if concurrency <= 1:
            done = 0
            while done < max_steps and self.run_once():
                done += 1
            return done
        before = self.steps
        self._pipeline(concurrency, lambda: self.steps - before >= max_steps, until_idle=True)
        return self.steps - before

    def run_until_settled(
        self,
        is_settled: Callable[[], bool],
        *,
        deliver: Callable[[], object] | None = None,
        advance: Callable[[], None] | None = None,
        rounds: int = 500,
    ) -> int:
        """Work the outbox round by round until `is_settled()` holds; return the steps worked.

        A round works every message that is due (`run_until_idle`), then calls `deliver` (what
        reaches the portal besides the worker's own calls, e.g. a sandbox's due payout notices),
        then asks `is_settled`. If it does not hold yet, `advance` moves time on before the next
        round: a simulated clock to whatever is due next, or a short sleep on the real one.
        Raises TimeoutError when `rounds` rounds did not settle it.
        """
        steps = 0
        for _ in range(rounds):
            steps += self.run_until_idle()
            if deliver is not None:
                deliver()
            if is_settled():
                return steps
            if advance is not None:
                advance()
        raise TimeoutError(f"not settled after {rounds} rounds ({steps} steps)")

    def run(self, stop: threading.Event, *, idle_s: float = 0.2) -> None:
        """Work until `stop` is set, with up to `self.concurrency` steps in flight, waiting up to
        `idle_s` for new work when nothing is due."""
        log.info("recovery worker %s started", self.name)
        self._pipeline(self.concurrency, stop.is_set, idle_s=idle_s, wait_idle=stop.wait)
        log.info("recovery worker %s stopped after %d steps", self.name, self.steps)

    def _pipeline(
        self,
        concurrency: int,
        done: Callable[[], bool],
        *,
        until_idle: bool = False,
        idle_s: float = 0.2,
        wait_idle: Callable[[float], object] | None = None,
    ) -> None:
        """Keep up to `concurrency` steps in flight: claim as many due messages as slots are free,
        in one transaction, hand each to the pool, and claim again as steps finish: once
        `refill_at(concurrency)` slots are free, or every one is (a claim is a transaction of its
        own; one per finished step was one per recovery), or when no step has finished for
        `idle_s` (slow calls holding most slots must not keep a due message waiting for them)."""
        in_flight: dict[Future[None], int] = {}  # each step and its message
        finished: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()  # steps done, as they finish
        refill = refill_at(concurrency)
        waited_out = False  # no step finished in the last `idle_s`
        with ThreadPoolExecutor(concurrency, thread_name_prefix="recovery-step") as pool:
            while not done():
                claimed: list[Step] = []
                free = concurrency - len(in_flight)
                if free >= refill or not in_flight or (free > 0 and waited_out):
                    with self._count:  # queued, or on a pool thread (gone on to a next call)
                        busy = self._working.union(in_flight.values())
                    try:
                        claimed = self.claim_steps(free, busy)
                    except Exception:  # the database went away for a moment: wait, then go on
                        if until_idle and not in_flight:
                            raise  # "idle" would be a lie: work may still be due
                        log.exception("recovery worker: claiming failed")
                    for step in claimed:
                        # on a pool thread, going on to each next call it makes due until `done`
                        future = pool.submit(self._work, step, go_on=lambda: not done())
                        in_flight[future] = step.claim.seq
                        future.add_done_callback(finished.put)
                if not in_flight:
                    if until_idle:
                        return
                    (wait_idle or threading.Event().wait)(idle_s)
                    continue
                # every slot is busy, or nothing more is due: wait for a step to finish (its
                # next call is then due) or for `idle_s`, whichever comes first; then take
                # every other step that has finished meanwhile
                try:
                    del in_flight[finished.get(timeout=idle_s)]
                except queue.Empty:
                    waited_out = True
                    continue
                waited_out = False
                with contextlib.suppress(queue.Empty):
                    while True:
                        del in_flight[finished.get_nowait()]
            wait(in_flight)

    def claim(self) -> Claim | None:
        """Claim one due message (a test's or a script's single step)."""
        steps = self.claim_steps(1)
        return steps[0].claim if steps else None

    def claim_steps(self, most: int, busy: Collection[int] = ()) -> list[Step]:
        """Claim up to `most` due messages, oldest first, in one transaction: one UPDATE pushes
        their `available_at` out by the lease, counts the attempt and names this worker, and
        returns them (PostgreSQL skips rows another worker's claim has locked; on SQLite the
        write lock does the same); the recoveries their calls need are read in the same
        transaction. No other transaction is opened for the step's reads."""
        now = self._clock()
        params = {
            "now": now,
            "most": most,
            "lease_until": now + self.lease,
            "worker": self.name[:64],
            "mine": sorted(busy),  # a step past its lease is still this worker's: not claimed twice
        }
        with write_transaction(self._engine) as connection:
            claimed = run(connection, self._claiming, params)
            if not claimed:
                return []
            claims = sorted(Claim(*row[:4]) for row in claimed)
            if len(claimed[0]) > 4:  # read with the claim (PostgreSQL); None: the recovery is gone
                found = [row[4:] for row in claimed if row[4] is not None]
            else:
                found = Snapshot(connection).rows(_CALLS_FOR, ids=sorted({claim.recovery_id for claim in claims}))
        rows = {row[0]: CallFor(*row) for row in found}
        return [Step(claim, rows.get(claim.recovery_id)) for claim in claims]

    # --- one call -----------------------------------------------------------------------------

    def _call(self, claim: Claim, recovery: CallFor | None) -> Answer:
        if recovery is None or RecoveryState(recovery.state) is not CALL_STATE[claim.kind]:
            return Answer()  # already settled (a notification, another worker): nothing to do
        msisdn, payee = self._recoveries.secrets_of(recovery)
        ref = reference(recovery.id, claim.kind)
        try:
            if claim.kind == "carrier_debit":
                return self._debit(claim, recovery, msisdn, ref)
            if claim.kind == "payout":
                return self._payout(claim, recovery, payee, ref)
            return self._refund(claim, recovery, msisdn, ref)
        except OutcomeUnknown as exc:
            return Answer(retry_in_s=self._backoff(claim.attempt), reason=str(exc)[:200])

    def _debit(self, claim: Claim, recovery: CallFor, msisdn: str, ref: str) -> Answer:
        if claim.attempt > 1:
            earlier = self._carrier.debit_status(ref)
            if earlier is not None:
                return self._debit_answer(earlier)
        channel = self._catalog().by_id().get(recovery.channel_id)
        try:
            number = self._carrier.lookup(msisdn)
        except PartnerRefused as exc:
            return Answer((RecoveryEvent.DEBIT_FAILED,), f"lookup:{exc.params.get('reason', '')}")
        if not number.active:
            return Answer((RecoveryEvent.DEBIT_FAILED,), "inactive_number")
        if channel is None or not serves(channel, number.current_carrier):
            return Answer((RecoveryEvent.DEBIT_FAILED,), f"carrier_not_served:{number.current_carrier.value}")
        try:
            return self._debit_answer(self._carrier.debit(ref, msisdn, recovery.debit_fen))
        except PartnerRefused as exc:
            return Answer((RecoveryEvent.DEBIT_FAILED,), str(exc.params.get("reason", "refused")))

    @staticmethod
    def _debit_answer(operation: Operation) -> Answer:
        if operation.outcome is Outcome.DONE:
            return Answer((RecoveryEvent.DEBIT_CONFIRMED, RecoveryEvent.START_PAYOUT), "debited")
        return Answer((RecoveryEvent.DEBIT_FAILED,), operation.reason or "refused")

    def _payout(self, claim: Claim, recovery: CallFor, payee: str, ref: str) -> Answer:
        api = self._payouts[recovery.channel_id]
        if claim.attempt > 1:
            earlier = api.status(ref)
            if earlier is not None:
                return self._payout_answer(earlier, claim)
        try:
            payout = api.pay(ref, recovery.payout_fen, payee, self._notify_url(recovery.channel_id))
        except PartnerRefused as exc:
            return Answer((RecoveryEvent.PAYOUT_FAILED,), str(exc.params.get("reason", "refused")))
        return self._payout_answer(payout, claim)

    def _payout_answer(self, payout: Payout, claim: Claim) -> Answer:
        if payout.status is PayoutStatus.PAID:
            return Answer((RecoveryEvent.PAYOUT_CONFIRMED,), "paid")
        if payout.status is PayoutStatus.FAILED:
            return Answer((RecoveryEvent.PAYOUT_FAILED,), payout.reason or "failed")
        return Answer(retry_in_s=min(self.poll_s * 2 ** max(0, claim.attempt - 1), 300.0), reason="processing")

    def _refund(self, claim: Claim, recovery: CallFor, msisdn: str, ref: str) -> Answer:
        if claim.attempt > 1:
            earlier = self._carrier.refund_status(ref)
            if earlier is not None:
                return self._refund_answer(earlier, claim)
        operation = self._carrier.refund(ref, msisdn, recovery.debit_fen, reference(recovery.id, "carrier_debit"))
        return self._refund_answer(operation, claim)

    def _refund_answer(self, operation: Operation, claim: Claim) -> Answer:
        if operation.outcome is Outcome.DONE:
            return Answer((RecoveryEvent.REFUND_CONFIRMED,), "refunded")
        # A carrier that will not give back what it took is a case for a person: keep asking, slowly.
        log.error("carrier refused refund %s (%s): needs an operator", claim.recovery_id, operation.reason)
        return Answer(retry_in_s=3600.0, reason=f"refund_refused:{operation.reason}")

    def _backoff(self, attempt: int) -> float:
        return min(0.5 * 2 ** min(attempt, 12), 300.0)

    # --- recording ----------------------------------------------------------------------------

    def _record(self, claim: Claim, answer: Answer, *, go_on: bool = False) -> tuple[int, str] | None:
        """The answer recorded under the claim; with `go_on`, the next call's message claimed
        with it (its sequence number and kind), if the answer made one due."""
        if answer.retry_in_s is not None:
            self._reschedule(claim, answer)
            return None
        if not answer.events:
            with write_transaction(self._engine) as connection:
                run(
                    connection, CLOSE_HELD, {"message": claim.seq, "attempt": claim.attempt, "closed_at": self._clock()}
                )
            return None
        settling = (claim.recovery_id, CALL_STATE[claim.kind], answer.events)
        message = (claim.seq, claim.attempt)
        if go_on:
            claim_for = ClaimFor(self.name[:64], self.lease)
            return self._recoveries.settle_and_claim(
                *settling, actor=ENGINE, reason=answer.reason, message=message, claim_for=claim_for
            )
        self._recoveries.settle(*settling, actor=ENGINE, reason=answer.reason, message=message)
        return None

    def _reschedule(self, claim: Claim, answer: Answer) -> None:
        assert answer.retry_in_s is not None
        at = self._clock() + dt.timedelta(seconds=answer.retry_in_s)
        with write_transaction(self._engine) as connection:
            params = {"message": claim.seq, "attempt": claim.attempt, "due_at": at, "why": answer.reason[:200]}
            run(connection, _RESCHEDULE, params)
