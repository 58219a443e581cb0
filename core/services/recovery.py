"""Recoveries: idempotent submission within limits, and every state change recorded in one
transaction together with its ledger entry, its audit record and the next partner call (the
outbox). Partner calls happen after commit, from the outbox (`core.services.recovery_worker`).

Who may do what is checked here, not on a page: a consumer submits and cancels their own
recoveries; an operator or admin decides on one in review (`review`: a reason, the audit
record, never their own); partner-driven moves (debit confirmed, payout failed ...) are the
engine's alone (`settle`). There is no other way to move a recovery.

A number's balance is promised to a recovery from its submission until its debit is
confirmed: a second submission may only take what is left (`committed_on`), checked under the
same per-number lock as the limits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.adapters.carrier import CarrierApi
from core.domain.audit import GENESIS, chain_hash, first_broken
from core.domain.calendar import to_shanghai
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog
from core.domain.ledger import entry_for
from core.domain.limits import LimitExceeded, Part, PortalLimits, Usage, limit_problems, plan_parts
from core.domain.payee import parse_payee
from core.domain.quotes import Reason, transaction_size
from core.domain.reasons import why
from core.domain.recovery import (
    COMMITTED,
    TERMINAL,
    IllegalTransition,
    Outcome,
    RecoveryEvent,
    RecoveryState,
    next_state,
    outcome_of,
)
from core.domain.risk import Assessment, Decision
from core.errors import InputError, PartnerError, PortalError
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


class BalanceCommitted(InputError):
    """The amount is more than the number's balance less what open recoveries already hold."""

    key = "error.recovery.balance_committed"


class CarrierUnavailable(InputError):
    key = "error.journey.number_unavailable"


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
        """What the recovery pays if every transaction succeeds (the quote); what it did pay
        is `outcome.received_fen`."""
        return self.amount_fen - self.fee_fen

    @property
    def outcome(self) -> Outcome:
        return outcome_of((p.state, p.debit_fen, p.fee_fen) for p in self.parts)

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
    reason: str  # as recorded: an operator's words, a partner's code

    @property
    def why(self) -> Reason | None:
        """The reason in words for the recovery's owner (`core.domain.reasons`)."""
        return why(self.event, self.by, self.reason)


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
        carrier: CarrierApi | None = None,
    ) -> None:
        """`risk`, `agreements` and `carrier` (the carrier's number lookup and balance) are the
        consumer journey's checks; without them (the engine's own tests) every submission within
        limits is approved."""
        self.risk = risk
        self.agreements = agreements
        self._carrier = carrier
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
        channel = self._catalog().by_id().get(request.channel_id)
        if channel is None:
            raise InputError("no such channel", key="error.recovery.channel")
        payee = parse_payee(channel.payout_form, request.payee)  # one stored form, whoever typed it
        if isinstance(request.amount_fen, bool) or not isinstance(request.amount_fen, int) or request.amount_fen <= 0:
            raise InputError("the amount must be a positive number of fen", key="error.recovery.amount")
        index = self._number_index(number.national)
        fingerprint = hashlib.sha256(
            json.dumps([request.channel_id, index, request.amount_fen, payee, request.quote_lock_id]).encode()
        ).hexdigest()
        plan = None if request.quote_lock_id else plan_parts(channel, request.amount_fen)
        current, balance = self._ask_carrier(number.national)
        with UnitOfWork(self._engine) as uow:
            if not uow.try_lock(f"submit:{caller.user_id}:{key}"):
                raise SubmissionInFlight("the same request is being processed; look again in a moment")
            # before anything is read: an account being deleted holds this lock while it checks
            # that nothing is under way, so a recovery can never start for an erased account
            uow.lock(f"limits:user:{caller.user_id}")
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
            uow.lock(f"limits:number:{index}")
            problems = limit_problems(
                request.amount_fen, channel, self.limits, self._usage(uow, caller.user_id, index, channel.id)
            )
            if problems:
                first = problems[0]
                raise LimitExceeded(f"over a limit ({first.key})", key=first.key, **first.params)
            if balance is not None:
                self._require_uncommitted(uow, index, balance, request.amount_fen)
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

    def _ask_carrier(self, national: str) -> tuple[Carrier | None, int | None]:
        """The carrier the number is with now and its balance, by the carrier's own API
        (None, None without one: the engine's own tests). A carrier that cannot answer stops
        the submission: what it holds cannot be checked against what is already promised."""
        if self._carrier is None:
            return None, None
        try:
            info = self._carrier.lookup(national)
            return info.current_carrier, self._carrier.balance(national) if info.active else 0
        except PartnerError as error:
            raise CarrierUnavailable("the carrier did not answer; try again in a moment") from error

    @staticmethod
    def committed_on(uow: UnitOfWork, index: str) -> dict[RecoveryState, int]:
        """What open recoveries on a number hold of its balance, by state: everything not yet
        debited (as far as our records know). A debit that is under way may already show in
        the carrier's balance, so this errs on the side of holding too much, never too little."""
        rows = uow.session.exec(
            select(Recovery.state, func.sum(Recovery.debit_fen))
            .where(Recovery.number_index == index, col(Recovery.state).in_([s.value for s in COMMITTED]))
            .group_by(Recovery.state)
        ).all()
        return {RecoveryState(state): int(total) for state, total in rows}

    def _require_uncommitted(self, uow: UnitOfWork, index: str, balance_fen: int, amount_fen: int) -> None:
        """Refuse an amount above the balance less what open recoveries on the number already
        hold (read under the number's lock, so two submissions cannot both take it)."""
        committed = sum(self.committed_on(uow, index).values())
        left = max(0, balance_fen - committed)
        if amount_fen > left:
            raise BalanceCommitted(
                "open recoveries already hold this balance",
                balance_fen=balance_fen,
                committed_fen=committed,
                left_fen=left,
            )

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
