"""How a recovery moves: every state change commits in one transaction with its balanced ledger
entry, its audit record and the next partner call (the outbox). People move a recovery in two
ways only: its owner cancels it before the debit (`cancel`); an operator decides on one in
review (`review`: a reason, the audit record, never their own). Partner answers are the engine's
(`settle`). There is no other door."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.domain.access import NotAllowed, Principal, require_operator
from core.domain.ledger import entry_for
from core.domain.notes import kept_words
from core.domain.recovery import IllegalTransition, RecoveryEvent, RecoveryState, next_state
from core.domain.review import NOTE_MAX, needs_second_person, reasons_for, stored_reason
from core.errors import InputError
from core.persistence.fast_reads import Read
from core.persistence.tables import LedgerPosting, OutboxMessage, Recovery, RecoveryTransition, VerifiedNumber, new_id
from core.persistence.uow import Prepared, UnitOfWork
from core.services.audit import AuditLog
from core.services.recovery.views import RecoveryView, UnknownRecovery, parts_of, view_of

#: The partner call each state asks for next.
NEXT_CALL: Mapping[RecoveryState, str] = {
    RecoveryState.DEBITING: "carrier_debit",
    RecoveryState.PAYING: "payout",
    RecoveryState.REFUNDING: "carrier_refund",
}
#: The state a partner call belongs to: its result only counts while the recovery is still there.
CALL_STATE: Mapping[str, RecoveryState] = {kind: state for state, kind in NEXT_CALL.items()}
ENGINE = "engine"  # the actor of partner-driven moves
#: Moves whose reason is kept on the transaction itself (why it failed, was refused or cancelled).
EXPLAINED = frozenset(
    {RecoveryEvent.DEBIT_FAILED, RecoveryEvent.PAYOUT_FAILED, RecoveryEvent.REJECT, RecoveryEvent.CANCEL}
)


class CannotCancel(InputError):
    key = "error.recovery.cannot_cancel"


class OwnRecovery(NotAllowed):
    key = "error.review.own"


class SecondPersonNeeded(NotAllowed):
    """Approving above the four-eyes amount: one operator asks, another agrees."""

    key = "error.review.second_person"


def review_reason(reason: str, *, approve: bool) -> str:
    """The reason as stored: `review:<code>` for a code from the list, else the operator's own
    words (3 to 200 characters)."""
    reason = kept_words(reason)
    if reason in reasons_for(approve):
        return stored_reason(reason)
    if reason in reasons_for(not approve):
        raise InputError("that reason belongs to the other decision", key="error.review.reason")
    if not 3 <= len(reason) <= 200:
        raise InputError("give a reason (3 to 200 characters)", key="error.review.reason")
    return reason


def refuse_own(uow: UnitOfWork, caller: Principal, parts: Sequence[Recovery]) -> None:
    """Nobody acts as staff on a recovery of their own: their account, or a number they verified."""
    own_numbers = uow.session.exec(
        select(VerifiedNumber.number_index).where(VerifiedNumber.user_id == caller.user_id)
    ).all()
    if parts[0].user_id == caller.user_id or parts[0].number_index in own_numbers:
        raise OwnRecovery("another operator must decide on your own recovery")


TRANSITIONS = RecoveryTransition.__table__  # type: ignore[attr-defined]
POSTINGS = LedgerPosting.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


#: a worker's claim (attempt :attempt) still holds outbox message :message: not done, not taken
#: again since. Whatever a worker records is fenced by it (here and in the worker).
CLAIM_HOLDS = (
    OUTBOX.c.seq == bindparam("message"),
    OUTBOX.c.attempts == bindparam("attempt"),
    OUTBOX.c.done_at.is_(None),
)
# `settle`'s statements, each compiled once (`Read`, `Prepared`)
#: close a worker's message while its claim holds (an answer that changes nothing, or came too late)
CLOSE_HELD = Prepared(update(OUTBOX).where(*CLAIM_HOLDS).values(done_at=bindparam("closed_at")))
#: close the open messages of one call of a recovery, saying which (and at which attempt): the
#: claim a worker records under holds exactly when its message is among them
_CLOSE_KIND = Prepared(
    update(OUTBOX)
    .where(
        OUTBOX.c.recovery_id == bindparam("of"),
        OUTBOX.c.kind == bindparam("call"),
        OUTBOX.c.done_at.is_(None),
    )
    .values(done_at=bindparam("closed_at"))
    .returning(OUTBOX.c.seq, OUTBOX.c.attempts)
)


@dataclass
class Settling:
    """What `settle` reads of a recovery and `move` changes: a plain row, saved by one UPDATE."""

    id: str
    state: str
    reason: str
    debit_fen: int
    fee_fen: int
    partner_fee_fen: int
    updated_at: dt.datetime | None = None


RECOVERIES = Recovery.__table__  # type: ignore[attr-defined]
_SETTLING: Read[tuple[str, str, str, int, int, int]] = Read(
    lambda: core_select(
        *(RECOVERIES.c[name] for name in ("id", "state", "reason", "debit_fen", "fee_fen", "partner_fee_fen"))
    ).where(RECOVERIES.c.id == bindparam("recovery"))
)
_SAVE = Prepared(
    update(RECOVERIES)
    .where(RECOVERIES.c.id == bindparam("recovery"))
    .values(state=bindparam("to"), updated_at=bindparam("moved_at"), reason=bindparam("why"))
)


#: the next call's message written already claimed (`settle_and_claim`), its sequence number back
_CLAIMED_MESSAGE = Prepared(
    insert(OUTBOX).returning(OUTBOX.c.seq),
    columns=("recovery_id", "kind", "available_at", "attempts", "claimed_by", "last_error", "done_at"),
)


@dataclass(frozen=True)
class ClaimFor:
    """A worker that takes the next call of the recovery it settles at once: the message is
    written claimed by `worker` (its first attempt) for `lease`, counted from the moment the
    settling transaction holds its locks, as a claim leaves it."""

    worker: str
    lease: dt.timedelta


def new_message(recovery_id: str, kind: str, now: dt.datetime) -> dict[str, object]:
    """An outbox row (every column but its sequence number), due now."""
    return {
        "recovery_id": recovery_id,
        "kind": kind,
        "available_at": now,
        "attempts": 0,
        "claimed_by": "",
        "last_error": "",
        "done_at": None,
    }


class Transitions:
    _engine: Engine
    _clock: Callable[[], dt.datetime]
    audit: AuditLog
    four_eyes_above_fen: int

    def move(
        self,
        uow: UnitOfWork,
        recovery: Recovery | Settling,
        event: RecoveryEvent,
        actor: str,
        reason: str,
        now: dt.datetime,
        claimed_until: tuple[str, dt.datetime] | None = None,
    ) -> int | None:
        """One state change with everything that must be true with it, in the caller's transaction.
        An ORM row is saved with the session; a `Settling` row by `settle`, once, after its moves.
        With `claimed_until` = (worker, lease end), the next call's message (if the new state asks
        for one) is written at once, claimed by that worker: its sequence number is returned."""
        before = RecoveryState(recovery.state)
        after = next_state(before, event)
        recovery.state, recovery.updated_at = after.value, now
        if event in EXPLAINED:
            recovery.reason = reason[:64]
        if isinstance(recovery, Recovery):
            uow.session.add(recovery)
        uow.write(
            TRANSITIONS,
            {
                "id": new_id(),
                "recovery_id": recovery.id,
                "before": before.value,
                "after": after.value,
                "event": event.value,
                "actor": actor[:64],
                "reason": reason[:200],
                "at": now,
            },
        )
        entry = entry_for(
            recovery.id,
            event,
            debited_fen=recovery.debit_fen,
            fee_fen=recovery.fee_fen,
            partner_fee_fen=recovery.partner_fee_fen,
        )
        if entry is not None:
            entry_id = new_id()
            for posting in entry.postings:
                uow.write(
                    POSTINGS,
                    {
                        "id": new_id(),
                        "entry_id": entry_id,
                        "recovery_id": recovery.id,
                        "event": event.value,
                        "account": posting.account.value,
                        "amount_fen": posting.amount_fen,
                        "at": now,
                    },
                )
        claimed = None
        if after in NEXT_CALL:
            message = new_message(recovery.id, NEXT_CALL[after], now)
            if claimed_until is None:
                uow.write(OUTBOX, message)
            else:
                worker, until = claimed_until
                message.update(attempts=1, available_at=until, claimed_by=worker[:64])
                claimed = int(uow.run(_CLAIMED_MESSAGE, **message)[0][0])
        self.audit.append(uow, actor, event.value, recovery.id, {"from": before.value, "to": after.value})
        return claimed

    def settle(
        self,
        recovery_id: str,
        expected: RecoveryState,
        events: Sequence[RecoveryEvent],
        *,
        actor: str,
        reason: str = "",
        message: tuple[int, int] | None = None,
        audit: Mapping[str, str] | None = None,
    ) -> bool:
        """A partner's answer: apply `events` if the recovery is still `expected` (a state that
        waits for a partner call, `NEXT_CALL`) and, for a worker, still holds the claim
        `message` = (seq, attempt). False: someone else already
        settled it, and nothing was changed. The call's outbox message is closed with it."""
        return self._settle(recovery_id, expected, events, actor, reason, message, audit, None)[0]

    def settle_and_claim(
        self,
        recovery_id: str,
        expected: RecoveryState,
        events: Sequence[RecoveryEvent],
        *,
        actor: str,
        reason: str,
        message: tuple[int, int],
        claim_for: ClaimFor,
    ) -> tuple[int, str] | None:
        """`settle` for a worker that goes on to the recovery's next call itself: that call's
        message is written in the same transaction, already claimed for `claim_for` (attempt 1,
        leased as a claim leases it), so no other transaction claims it. The message's sequence
        number and kind; None when nothing was settled or the new state asks for no call.

        Exactly once holds as for any claim: the call goes out under the lease and its answer
        counts only while the claim holds; if the worker stops before recording it, the lease
        runs out, another worker claims the message (attempt 2) and asks the partner for the
        status of our reference before it calls again."""
        return self._settle(recovery_id, expected, events, actor, reason, message, None, claim_for)[1]

    def _settle(
        self,
        recovery_id: str,
        expected: RecoveryState,
        events: Sequence[RecoveryEvent],
        actor: str,
        reason: str,
        message: tuple[int, int] | None,
        audit: Mapping[str, str] | None,
        claim_for: ClaimFor | None,
    ) -> tuple[bool, tuple[int, str] | None]:
        now = self._clock()
        # batched: this transaction writes its rows at commit and reads none of them back; and it
        # reads and writes by compile-once statements only, so it needs no ORM session
        with UnitOfWork(self._engine, batched=True, orm=False) as uow:
            uow.lock(f"recovery:{recovery_id}")
            found = uow.rows(_SETTLING, recovery=recovery_id)
            if not found:
                raise UnknownRecovery("no such recovery")
            recovery = Settling(*found[0])
            if RecoveryState(recovery.state) is not expected:
                if message is not None:  # settled already: the worker's message is closed, if still its
                    uow.run(CLOSE_HELD, message=message[0], attempt=message[1], closed_at=now)
                    uow.commit()
                return False, None
            # the call this state asked for is answered, whoever answered it
            closed = uow.run(_CLOSE_KIND, of=recovery_id, call=NEXT_CALL[expected], closed_at=now)
            if message is not None and tuple(message) not in {tuple(row) for row in closed}:
                return False, None  # the claim ran out and another worker took the message: change nothing
            claimed = None
            # leased from now, when this transaction holds its locks (a wait for them eats no lease)
            until = None if claim_for is None else (claim_for.worker, self._clock() + claim_for.lease)
            for event in events:
                seq = self.move(uow, recovery, event, actor, reason, now, until)
                if seq is not None:
                    claimed = (seq, NEXT_CALL[RecoveryState(recovery.state)])
            if claimed is not None and NEXT_CALL.get(RecoveryState(recovery.state)) != claimed[1]:
                claimed = None  # a later event left the state that call is for: nobody goes on to it
            uow.at_commit(_SAVE, recovery=recovery.id, to=recovery.state, moved_at=now, why=recovery.reason)
            if audit:
                self.audit.append(uow, actor, "partner_notice", recovery_id, audit)
            uow.commit()
            return True, claimed

    def cancel(self, caller: Principal, group_id: str) -> RecoveryView:
        """The owner cancels a whole recovery (every linked part) while nothing has been debited
        or asked to be; afterwards it is refused and nothing changes."""
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"group:{group_id}")
            parts = parts_of(uow, Recovery.group_id == group_id)
            if not parts or parts[0].user_id != caller.user_id:
                raise UnknownRecovery("no such recovery")
            if not view_of(parts).cancellable:
                raise CannotCancel("the debit has started; a recovery can only be cancelled before it")
            now = self._clock()
            for part in parts:
                uow.lock(f"recovery:{part.id}")
                self.move(uow, part, RecoveryEvent.CANCEL, caller.user_id, "cancelled by its owner", now)
            uow.commit()
            return view_of(parts)

    def review(
        self,
        caller: Principal,
        group_id: str,
        *,
        approve: bool,
        reason: str,
        operator: str,
        note: str = "",
        maker: Principal | None = None,
    ) -> RecoveryView:
        """An operator's decision on a recovery in review, with their name and reason recorded.
        `reason` is a code from `core.domain.review` (its owner reads it in their language) or,
        from the command line, the operator's own words; `note` is for colleagues only.
        Approving more than the four-eyes amount takes two operators: `maker` asked, the caller
        agrees (`core.services.console.approvals`). Nobody decides on a recovery of their own
        (their account, or a number they verified), neither as maker nor as checker."""
        require_operator(caller, "only an operator reviews recoveries")
        stored, note = review_reason(reason, approve=approve), kept_words(note)
        if len(note) > NOTE_MAX:
            raise InputError(f"keep the note under {NOTE_MAX} characters", key="error.review.note")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"group:{group_id}")
            parts = parts_of(uow, Recovery.group_id == group_id)
            if not parts:
                raise UnknownRecovery("no such recovery")
            for person in (caller, maker) if maker is not None else (caller,):
                refuse_own(uow, person, parts)
            waiting = [p for p in parts if p.state == RecoveryState.REVIEW.value]
            if not waiting:
                raise IllegalTransition(
                    f"the recovery is {parts[0].state}, not in review", state=parts[0].state, event="review"
                )
            amount = sum(p.debit_fen for p in parts)
            alone = maker is None or maker.user_id == caller.user_id
            if approve and alone and needs_second_person(amount, self.four_eyes_above_fen):
                raise SecondPersonNeeded("approving this amount takes a second operator")
            self._record_decision(uow, waiting, caller, approve=approve, reason=stored)
            details = {"decision": "approve" if approve else "reject", "operator": operator[:64], "reason": stored}
            details |= {"note": note} if note else {}
            details |= {"maker": maker.user_id} if maker is not None else {}
            self.audit.append(uow, caller.user_id, "review", group_id, details)
            uow.commit()
            return view_of(parts)

    def _record_decision(
        self, uow: UnitOfWork, waiting: list[Recovery], caller: Principal, *, approve: bool, reason: str
    ) -> None:
        now = self._clock()
        for part in waiting:
            uow.lock(f"recovery:{part.id}")
            if approve:
                self.move(uow, part, RecoveryEvent.APPROVE, caller.user_id, reason, now)
                self.move(uow, part, RecoveryEvent.START_DEBIT, ENGINE, "approved", now)
            else:
                self.move(uow, part, RecoveryEvent.REJECT, caller.user_id, reason, now)
