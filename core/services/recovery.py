"""Recoveries: idempotent submission within limits, and every state change recorded in one
transaction together with its ledger entry, its audit record and the next partner call (the
outbox). Partner calls happen after commit, from the outbox (`core.services.recovery_worker`).

Who may do what is checked here, not on a page: a consumer submits and cancels their own
recoveries; an operator or admin approves, rejects and cancels any; partner-driven moves
(debit confirmed, payout failed ...) are the engine's alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.audit import GENESIS, chain_hash, first_broken
from core.domain.calendar import to_shanghai
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog
from core.domain.ledger import entry_for
from core.domain.limits import LimitExceeded, Part, PortalLimits, Usage, limit_problems, plan_parts
from core.domain.quotes import transaction_size
from core.domain.recovery import TERMINAL, IllegalTransition, RecoveryEvent, RecoveryState, next_state
from core.domain.risk import Assessment, Decision
from core.errors import InputError, PortalError
from core.persistence.tables import (
    AuditRecord,
    LedgerPosting,
    OutboxMessage,
    QuoteLock,
    Recovery,
    RecoveryTransition,
    VerifiedNumber,
    new_id,
)
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import BlindIndex, FieldCipher
from core.services.agreements import Agreements
from core.services.identity import OPERATORS, NotAllowed, Principal
from core.services.risk import RiskService, Subject

S, E = RecoveryState, RecoveryEvent

#: The partner call each state asks for next.
NEXT_CALL: Mapping[RecoveryState, str] = {
    S.DEBITING: "carrier_debit",
    S.PAYING: "payout",
    S.REFUNDING: "carrier_refund",
}
#: The state a partner call belongs to: its result only counts while the recovery is still there.
CALL_STATE: Mapping[str, RecoveryState] = {kind: state for state, kind in NEXT_CALL.items()}

#: Unfinished states from least to most advanced (a refund comes after a failed payout).
PROGRESS = (S.CREATED, S.REVIEW, S.APPROVED, S.DEBITING, S.DEBITED, S.PAYING, S.REFUNDING)
#: Every state, ordered so that each transition moves forward (a timeline's order within an instant).
TIMELINE = (
    S.CREATED,
    S.REVIEW,
    S.APPROVED,
    S.REJECTED,
    S.CANCELLED,
    S.DEBITING,
    S.FAILED,
    S.DEBITED,
    S.PAYING,
    S.PAID,
    S.REFUNDING,
    S.REFUNDED,
)
ENGINE = "engine"  # the actor of partner-driven moves
STAFF_EVENTS = frozenset({E.APPROVE, E.REVIEW, E.REJECT, E.CANCEL})
OWNER_EVENTS = frozenset({E.CANCEL})
#: A group can be cancelled by its owner only while every part is still in one of these.
CANCELLABLE = frozenset({S.CREATED, S.REVIEW, S.APPROVED})
#: Recoveries that count against limits: every one not refused, cancelled, failed or refunded.
COUNTED = tuple(s.value for s in RecoveryState if s not in (S.REJECTED, S.CANCELLED, S.FAILED, S.REFUNDED))


class IdempotencyConflict(InputError):
    key = "error.recovery.idempotency"


class SubmissionInFlight(InputError):
    key = "error.recovery.in_flight"


class UnknownRecovery(PortalError):
    key = "error.recovery.unknown"


class QuoteExpired(InputError):
    key = "error.quote.expired"


class QuoteUnusable(InputError):
    key = "error.quote.unusable"


class CannotCancel(InputError):
    key = "error.recovery.cannot_cancel"


class OwnRecovery(NotAllowed):
    key = "error.review.own"


@dataclass(frozen=True)
class RecoveryRequest:
    channel_id: str
    phone: str  # one of the caller's verified numbers
    amount_fen: int
    payee: str  # where the channel pays: a wallet account, a bank card ...
    quote_lock_id: str | None = None  # the locked quote to honour (its transactions and fees)
    device: str = field(default="", repr=False)  # what the browser sent (address prefix, user agent)


@dataclass(frozen=True)
class PartView:
    id: str
    part: int
    state: RecoveryState
    debit_fen: int
    fee_fen: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """As the command line prints it and a receipt signs it."""
        return {
            "id": self.id,
            "part": self.part,
            "state": self.state.value,
            "debit_fen": self.debit_fen,
            "fee_fen": self.fee_fen,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RecoveryView:
    """A recovery as its owner sees it: one or more linked transactions."""

    id: str  # the group id (its first part's id)
    user_id: str
    channel_id: str
    masked_number: str
    created_at: dt.datetime
    parts: tuple[PartView, ...]
    created: bool = False  # False: an earlier submission with the same key is returned
    risk: Assessment | None = None  # the risk rules' decision and reasons (None before risk control)
    quote_lock_id: str | None = None

    @property
    def payout_fen(self) -> int:
        return self.amount_fen - self.fee_fen

    @property
    def cancellable(self) -> bool:
        """Nothing debited and no debit asked for yet."""
        return all(p.state in CANCELLABLE for p in self.parts)

    @property
    def amount_fen(self) -> int:
        return sum(p.debit_fen for p in self.parts)

    @property
    def fee_fen(self) -> int:
        return sum(p.fee_fen for p in self.parts)

    @property
    def settled(self) -> bool:
        return all(p.state in TERMINAL for p in self.parts)

    @property
    def state(self) -> RecoveryState:
        """The group's state: its least advanced unfinished part's; once all have ended, the
        first part's (each part's own outcome is in `parts`)."""
        unfinished = [p.state for p in self.parts if p.state not in TERMINAL]
        if not unfinished:
            return self.parts[0].state
        return min(unfinished, key=PROGRESS.index)


@dataclass(frozen=True)
class Step:
    """One change on a recovery's timeline."""

    part: int
    at: dt.datetime
    event: RecoveryEvent
    state: RecoveryState  # the state it led to
    by: str  # owner | operator | engine | partner
    reason: str


class RecoveryService:
    def __init__(
        self,
        engine: Engine,
        cipher: FieldCipher,
        number_index: BlindIndex,
        catalog: Callable[[], Catalog],
        limits: PortalLimits,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        risk: RiskService | None = None,
        agreements: Agreements | None = None,
        lookup: Callable[[str], Any] | None = None,
    ) -> None:
        """`risk`, `agreements` and `lookup` (the carrier's number lookup) are the consumer
        journey's checks; without them (the engine's own tests) every submission within limits
        is approved."""
        self.risk = risk
        self.agreements = agreements
        self._lookup = lookup
        self._engine = engine
        self._cipher = cipher
        self._number_index = number_index
        self._catalog = catalog
        self.limits = limits
        self._clock = clock

    def number_index(self, national: str) -> str:
        return self._number_index(national)

    # --- submission ----------------------------------------------------------------------------

    def submit(self, caller: Principal, key: str, request: RecoveryRequest) -> RecoveryView:
        """Same key + same request: the first result. Same key + another request: refused.
        A duplicate that arrives while the first is still being written is refused (on
        PostgreSQL; SQLite writes one at a time, so there it simply sees the first result)."""
        key = key.strip()
        if not 8 <= len(key) <= 64 or not key.isprintable():
            raise InputError("an idempotency key has 8 to 64 printable characters", key="error.recovery.key")
        if caller.role != "consumer":
            raise NotAllowed("only a consumer recovers their own balance")
        number = parse_mobile(request.phone)
        payee = unicodedata.normalize("NFKC", request.payee).strip()
        if not 1 <= len(payee) <= 64 or not payee.isprintable():
            raise InputError("say where the money should go (1 to 64 characters)", key="error.recovery.payee")
        channel = self._catalog().by_id().get(request.channel_id)
        if channel is None:
            raise InputError("no such channel", key="error.recovery.channel")
        if isinstance(request.amount_fen, bool) or not isinstance(request.amount_fen, int) or request.amount_fen <= 0:
            raise InputError("the amount must be a positive number of fen", key="error.recovery.amount")
        index = self._number_index(number.national)
        fingerprint = hashlib.sha256(
            json.dumps([request.channel_id, index, request.amount_fen, payee, request.quote_lock_id]).encode()
        ).hexdigest()
        plan = None if request.quote_lock_id else plan_parts(channel, request.amount_fen)
        current = self._current_carrier(number.national) if self.risk is not None else None
        with UnitOfWork(self._engine) as uow:
            if not uow.try_lock(f"submit:{caller.user_id}:{key}"):
                raise SubmissionInFlight("the same request is being processed; look again in a moment")
            earlier = self._parts(uow, Recovery.user_id == caller.user_id, Recovery.idempotency_key == key)
            if earlier:
                if earlier[0].request_hash != fingerprint:
                    raise IdempotencyConflict("this key was used for a different request")
                return _view(earlier, created=False)
            owned = uow.session.exec(
                select(VerifiedNumber).where(
                    VerifiedNumber.number_index == index, VerifiedNumber.user_id == caller.user_id
                )
            ).first()
            if owned is None:
                raise NotAllowed("verify this number first", key="error.recovery.number_not_verified")
            if self.agreements is not None:
                self.agreements.require(uow, caller.user_id)
            now = self._clock()
            group_id = new_id()
            lock = None
            if request.quote_lock_id:
                lock = self._quote_lock(uow, caller, request, index, now)
                plan = [Part(debit, fee) for debit, fee in json.loads(lock.plan)]
                lock.used_by = group_id
                uow.session.add(lock)
            assert plan is not None
            uow.lock(f"limits:user:{caller.user_id}")
            uow.lock(f"limits:number:{index}")
            problems = limit_problems(
                request.amount_fen, channel, self.limits, self._usage(uow, caller.user_id, index, channel.id)
            )
            if problems:
                first = problems[0]
                raise LimitExceeded(f"over a limit ({first.key})", key=first.key, **first.params)
            device_index = self.risk.device_index(request.device) if self.risk is not None else ""
            assessment = None
            if self.risk is not None:
                assessment = self.risk.assess(
                    uow,
                    Subject(caller.user_id, index, device_index, self.risk.payee_index(payee)),
                    request.amount_fen,
                    now,
                    watched_limits=[limit for limit in (transaction_size(channel, None),) if limit],
                    allocated=number.allocated_carrier,
                    current=current,
                    quoted=Carrier.parse(lock.carrier) if lock is not None else None,
                )
            rows = []
            for i, part in enumerate(plan, start=1):
                row_id = group_id if i == 1 else new_id()
                recovery = Recovery(
                    id=row_id,
                    group_id=group_id,
                    part=i,
                    parts=len(plan),
                    user_id=caller.user_id,
                    idempotency_key=key,
                    request_hash=fingerprint,
                    state=S.CREATED.value,
                    channel_id=channel.id,
                    number_index=index,
                    number_cipher=self._cipher.encrypt(
                        number.national, table="recoveries", column="number", row_id=row_id
                    ),
                    masked_number=number.masked,
                    payee_cipher=self._cipher.encrypt(payee, table="recoveries", column="payee", row_id=row_id),
                    debit_fen=part.debit_fen,
                    fee_fen=part.fee_fen,
                    device_index=device_index,
                    quote_lock_id=request.quote_lock_id,
                    risk_decision=assessment.decision.value if assessment is not None else "",
                    risk_reasons=assessment.to_json() if assessment is not None else "",
                    created_at=now,
                    updated_at=now,
                )
                uow.session.add(recovery)
                rows.append(recovery)
            uow.session.flush()
            self._audit(uow, caller.user_id, "submit", group_id, {"channel": channel.id, "parts": str(len(plan))})
            decision = assessment.decision if assessment is not None else Decision.APPROVE
            rules = ",".join(r.rule for r in assessment.reasons) if assessment is not None else ""
            for recovery in rows:
                if decision is Decision.APPROVE:
                    self._move(uow, recovery, E.APPROVE, ENGINE, "risk: approve" if rules else "within limits", now)
                    self._move(uow, recovery, E.START_DEBIT, ENGINE, "approved", now)
                elif decision is Decision.REVIEW:
                    self._move(uow, recovery, E.REVIEW, ENGINE, f"risk: {rules}", now)
                else:
                    self._move(uow, recovery, E.REJECT, ENGINE, f"risk: {rules}", now)
            uow.commit()
            return _view(rows, created=True)

    def _current_carrier(self, national: str) -> Carrier | None:
        """The carrier the number is with now, by the carrier's own lookup; None when the
        lookup cannot answer (the worker looks again before debiting)."""
        if self._lookup is None:
            return None
        try:
            return self._lookup(national).current_carrier
        except PortalError:
            return None

    def _quote_lock(
        self, uow: UnitOfWork, caller: Principal, request: RecoveryRequest, index: str, now: dt.datetime
    ) -> QuoteLock:
        lock = uow.session.get(QuoteLock, request.quote_lock_id)
        if lock is None or lock.user_id != caller.user_id:
            raise QuoteUnusable("this quote is not yours or does not exist")
        if lock.used_by is not None:
            raise QuoteUnusable("this quote was already used for a recovery", key="error.quote.used")
        if lock.number_index != index or lock.channel_id != request.channel_id or lock.amount_fen != request.amount_fen:
            raise QuoteUnusable("the request does not match the locked quote")
        if now > lock.expires_at:
            raise QuoteExpired("the quote's ten minutes are over; look at the new quote")
        return lock

    def _usage(self, uow: UnitOfWork, user_id: str, index: str, channel_id: str) -> Usage:
        local = to_shanghai(self._clock())
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        by_user, by_number = col(Recovery.user_id) == user_id, col(Recovery.number_index) == index
        by_channel = col(Recovery.channel_id) == channel_id
        today = col(Recovery.created_at) >= day_start

        def total(*where: Any) -> Any:
            return func.coalesce(func.sum(case((and_(*where), Recovery.debit_fen), else_=0)), 0)

        row = uow.session.exec(
            select(  # type: ignore[call-overload]
                total(by_user, today),
                total(by_user),
                total(by_number, today),
                total(by_number),
                total(by_number, by_channel, today),
                total(by_number, by_channel),
            ).where(col(Recovery.state).in_(COUNTED), or_(by_user, by_number), col(Recovery.created_at) >= month_start)
        ).one()
        return Usage(*(int(value) for value in row))

    # --- state changes -------------------------------------------------------------------------

    def apply(self, caller: Principal, recovery_id: str, event: RecoveryEvent, *, reason: str = "") -> RecoveryView:
        """A person's move on one transaction: its owner may cancel it; staff may also approve,
        review or reject it. Partner-driven moves are refused here."""
        operator = caller.role in OPERATORS
        allowed = STAFF_EVENTS if operator else OWNER_EVENTS
        if event not in allowed:
            raise NotAllowed(f"{caller.role} cannot {event.value} a recovery")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"recovery:{recovery_id}")
            recovery = uow.session.get(Recovery, recovery_id)
            if recovery is None or (not operator and recovery.user_id != caller.user_id):
                raise UnknownRecovery("no such recovery")  # another's recovery is not even confirmed to exist
            self._move(uow, recovery, event, caller.user_id, reason, self._clock())
            if event is E.APPROVE:
                self._move(uow, recovery, E.START_DEBIT, ENGINE, "approved", self._clock())
            uow.commit()
            return _view(self._parts(uow, Recovery.group_id == recovery.group_id))

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
        """A partner's answer: apply `events` if the recovery is still `expected` (and, for a
        worker, still holds the claim `message` = (seq, attempt)). False: someone else already
        settled it, and nothing was changed. The call's outbox message is closed with it."""
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"recovery:{recovery_id}")
            recovery = uow.session.get(Recovery, recovery_id)
            if recovery is None:
                raise UnknownRecovery("no such recovery")
            held = held_message(uow, *message) if message is not None else None
            if message is not None and held is None:
                return False
            if RecoveryState(recovery.state) is not expected:
                if held is not None:
                    held.done_at = now
                    uow.commit()
                return False
            kind = NEXT_CALL.get(expected)
            for event in events:
                self._move(uow, recovery, event, actor, reason, now)
            if kind is not None:  # the call this state asked for is answered, whoever answered it
                for pending in uow.session.exec(
                    select(OutboxMessage).where(
                        OutboxMessage.recovery_id == recovery_id,
                        OutboxMessage.kind == kind,
                        col(OutboxMessage.done_at).is_(None),
                    )
                ).all():
                    pending.done_at = now
            if audit:
                self._audit(uow, actor, "partner_notice", recovery_id, audit)
            uow.commit()
            return True

    def _move(
        self, uow: UnitOfWork, recovery: Recovery, event: RecoveryEvent, actor: str, reason: str, now: dt.datetime
    ) -> None:
        """One state change with everything that must be true with it, in the caller's transaction."""
        before = RecoveryState(recovery.state)
        after = next_state(before, event)
        recovery.state, recovery.updated_at = after.value, now
        if event in (E.DEBIT_FAILED, E.PAYOUT_FAILED, E.REJECT, E.CANCEL):
            recovery.reason = reason[:64]
        uow.session.add(recovery)
        uow.session.add(
            RecoveryTransition(
                recovery_id=recovery.id,
                before=before.value,
                after=after.value,
                event=event.value,
                actor=actor[:64],
                reason=reason[:200],
                at=now,
            )
        )
        entry = entry_for(recovery.id, event, debited_fen=recovery.debit_fen, fee_fen=recovery.fee_fen)
        if entry is not None:
            entry_id = new_id()
            for posting in entry.postings:
                uow.session.add(
                    LedgerPosting(
                        entry_id=entry_id,
                        recovery_id=recovery.id,
                        event=event.value,
                        account=posting.account.value,
                        amount_fen=posting.amount_fen,
                        at=now,
                    )
                )
        if after in NEXT_CALL:
            uow.session.add(OutboxMessage(recovery_id=recovery.id, kind=NEXT_CALL[after], available_at=now))
        self._audit(uow, actor, event.value, recovery.id, {"from": before.value, "to": after.value})

    def _audit(self, uow: UnitOfWork, actor: str, action: str, subject: str, detail: Mapping[str, str]) -> None:
        if "audit_head" not in uow.memo:
            uow.lock("audit-chain")  # one chain: appends queue until this transaction ends
            last = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
            uow.memo["audit_head"] = last.hash if last is not None else GENESIS
        previous = str(uow.memo["audit_head"])
        record = {"actor": actor, "action": action, "subject": subject, "detail": dict(detail)}
        digest = chain_hash(previous, record)
        uow.session.add(
            AuditRecord(
                at=self._clock(),
                actor=actor[:64],
                action=action,
                subject=subject,
                detail=json.dumps(dict(detail), sort_keys=True),
                previous_hash=previous,
                hash=digest,
            )
        )
        uow.memo["audit_head"] = digest

    def cancel(self, caller: Principal, group_id: str) -> RecoveryView:
        """The owner cancels a whole recovery (every linked part) while nothing has been debited
        or asked to be; afterwards it is refused and nothing changes."""
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"group:{group_id}")
            parts = self._parts(uow, Recovery.group_id == group_id)
            if not parts or parts[0].user_id != caller.user_id:
                raise UnknownRecovery("no such recovery")
            if not _view(parts).cancellable:
                raise CannotCancel("the debit has started; a recovery can only be cancelled before it")
            now = self._clock()
            for part in parts:
                uow.lock(f"recovery:{part.id}")
                self._move(uow, part, E.CANCEL, caller.user_id, "cancelled by its owner", now)
            uow.commit()
            return _view(parts)

    def review_queue(self, caller: Principal) -> list[RecoveryView]:
        """Recoveries waiting for an operator, oldest first."""
        if caller.role not in OPERATORS:
            raise NotAllowed("only an operator reviews recoveries")
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(
                select(Recovery)
                .where(col(Recovery.group_id).in_(select(Recovery.group_id).where(Recovery.state == S.REVIEW.value)))
                .order_by(col(Recovery.created_at), col(Recovery.group_id), col(Recovery.part))
            ).all()
        groups: dict[str, list[Recovery]] = {}
        for row in rows:
            groups.setdefault(row.group_id, []).append(row)
        return [_view(parts) for parts in groups.values()]

    def review(self, caller: Principal, group_id: str, *, approve: bool, reason: str, operator: str) -> RecoveryView:
        """An operator's decision on a recovery in review, with their name and reason recorded.
        Nobody decides on a recovery of their own (their account, or a number they verified)."""
        if caller.role not in OPERATORS:
            raise NotAllowed("only an operator reviews recoveries")
        reason = " ".join(reason.split())
        if not 3 <= len(reason) <= 200:
            raise InputError("give a reason (3 to 200 characters)", key="error.review.reason")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"group:{group_id}")
            parts = self._parts(uow, Recovery.group_id == group_id)
            if not parts:
                raise UnknownRecovery("no such recovery")
            own_numbers = uow.session.exec(
                select(VerifiedNumber.number_index).where(VerifiedNumber.user_id == caller.user_id)
            ).all()
            if parts[0].user_id == caller.user_id or parts[0].number_index in own_numbers:
                raise OwnRecovery("another operator must decide on your own recovery")
            waiting = [p for p in parts if p.state == S.REVIEW.value]
            if not waiting:
                raise IllegalTransition(
                    f"the recovery is {parts[0].state}, not in review", state=parts[0].state, event="review"
                )
            now = self._clock()
            for part in waiting:
                uow.lock(f"recovery:{part.id}")
                if approve:
                    self._move(uow, part, E.APPROVE, caller.user_id, reason, now)
                    self._move(uow, part, E.START_DEBIT, ENGINE, "approved", now)
                else:
                    self._move(uow, part, E.REJECT, caller.user_id, reason, now)
            decision = "approve" if approve else "reject"
            self._audit(
                uow,
                caller.user_id,
                "review",
                group_id,
                {"decision": decision, "operator": operator[:64], "reason": reason},
            )
            uow.commit()
            return _view(parts)

    def history(self, caller: Principal, group_id: str) -> list[Step]:
        """Every recorded change of a recovery's parts, oldest first, as its owner may see it."""
        return self.follow(caller, group_id)[1]

    def follow(self, caller: Principal, group_id: str) -> tuple[RecoveryView, list[Step]]:
        """A recovery and its timeline, read together (what its page and its receipt show)."""
        with UnitOfWork(self._engine) as uow:
            parts = self._parts(uow, Recovery.group_id == group_id)
            if not parts or (parts[0].user_id != caller.user_id and not caller.is_staff):
                raise UnknownRecovery("no such recovery")
            rows = uow.session.exec(
                select(RecoveryTransition).where(col(RecoveryTransition.recovery_id).in_([p.id for p in parts]))
            ).all()
        view = _view(parts)
        part_of = {p.id: p.part for p in view.parts}
        # Several changes can share one instant (an approval and the start of its debit), and
        # ids are random: within an instant, parts in order and each part's states as they follow.
        rows = sorted(rows, key=lambda r: (r.at, part_of[r.recovery_id], TIMELINE.index(S(r.after))))
        steps = []
        for row in rows:
            if row.actor == ENGINE:
                by = "engine"
            elif row.actor == view.user_id:
                by = "owner"
            elif row.actor.startswith("partner:"):
                by = "partner"
            else:
                by = "operator"
            steps.append(
                Step(
                    part_of[row.recovery_id],
                    row.at,
                    RecoveryEvent(row.event),
                    RecoveryState(row.after),
                    by,
                    row.reason,
                )
            )
        return view, steps

    # --- reading -------------------------------------------------------------------------------

    def get(self, caller: Principal, group_id: str) -> RecoveryView:
        with UnitOfWork(self._engine) as uow:
            parts = self._parts(uow, Recovery.group_id == group_id)
        if not parts or (parts[0].user_id != caller.user_id and not caller.is_staff):
            raise UnknownRecovery("no such recovery")
        return _view(parts)

    def list_for(self, caller: Principal, user_id: str | None = None, *, limit: int = 50) -> list[RecoveryView]:
        """A user's recoveries, newest first: their own, or anyone's for staff."""
        user_id = user_id or caller.user_id
        if user_id != caller.user_id and not caller.is_staff:
            raise NotAllowed("not your recoveries")
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(
                select(Recovery)
                .where(Recovery.user_id == user_id)
                .order_by(col(Recovery.created_at).desc(), col(Recovery.group_id), col(Recovery.part))
            ).all()
        groups: dict[str, list[Recovery]] = {}
        for row in rows:
            groups.setdefault(row.group_id, []).append(row)
        return [_view(parts) for parts in list(groups.values())[:limit]]

    @staticmethod
    def _parts(uow: UnitOfWork, *where: Any) -> list[Recovery]:
        return list(uow.session.exec(select(Recovery).where(*where).order_by(col(Recovery.part))).all())

    # --- for the worker --------------------------------------------------------------------------

    def secrets_of(self, recovery: Recovery) -> tuple[str, str]:
        """(full number, payee) of one transaction, decrypted for the partner call only."""
        number = self._cipher.decrypt(recovery.number_cipher, table="recoveries", column="number", row_id=recovery.id)
        payee = self._cipher.decrypt(recovery.payee_cipher, table="recoveries", column="payee", row_id=recovery.id)
        return number, payee


def held_message(uow: UnitOfWork, seq: int, attempt: int) -> OutboxMessage | None:
    """The outbox message `seq` if the claim `attempt` still holds it (not done, not taken again
    after its lease ran out); None otherwise, and the caller must change nothing."""
    message = uow.session.get(OutboxMessage, seq)
    if message is None or message.done_at is not None or message.attempts != attempt:
        return None
    return message


def _view(parts: Sequence[Recovery], *, created: bool = False) -> RecoveryView:
    first = parts[0]
    return RecoveryView(
        id=first.group_id,
        user_id=first.user_id,
        channel_id=first.channel_id,
        masked_number=first.masked_number,
        created_at=first.created_at,
        parts=tuple(PartView(p.id, p.part, RecoveryState(p.state), p.debit_fen, p.fee_fen, p.reason) for p in parts),
        created=created,
        risk=Assessment.from_json(first.risk_reasons) if first.risk_reasons else None,
        quote_lock_id=first.quote_lock_id,
    )


def verify_audit_chain(engine: Engine) -> tuple[int, int | None]:
    """(records checked, sequence number of the first broken record or None)."""
    with UnitOfWork(engine) as uow:
        rows = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq))).all()
    chain = [
        (
            {"actor": r.actor, "action": r.action, "subject": r.subject, "detail": json.loads(r.detail or "{}")},
            r.previous_hash,
            r.hash,
        )
        for r in rows
    ]
    broken = first_broken(chain)
    return len(rows), (rows[broken].seq if broken is not None else None)
