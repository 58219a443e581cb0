"""Stuck work: recoveries past their channel's promise, or waiting on a partner call whose
outcome is still unknown after its retries (`core.domain.stuck` says when). For each, what is
safe: ask the partner now (a status query through the adapter, shown beside our record), retry
the call now (the same reference: the partner answers a repeat from its own record), or a manual
resolution that two operators agree to — mark paid, mark failed, refund — which moves the
recovery through the state machine with its normal, balanced ledger entries (correcting entries:
nothing is ever edited) and closes the partner call it was waiting for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from core.adapters.partners import Partners
from core.domain.access import Principal, require_operator
from core.domain.calendar import WorkingDayCalendar
from core.domain.catalog import Catalog
from core.domain.notes import kept_words
from core.domain.quotes import days_for, split, transaction_size
from core.domain.recovery import RecoveryEvent, RecoveryState
from core.domain.review import FourEyesAction
from core.domain.stuck import StuckReason, promised_by, stuck_reason
from core.errors import InputError, PartnerError
from core.i18n import Translator, age_text, local_time
from core.persistence.tables import OutboxMessage, Recovery, RecoveryTransition
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.console.approvals import ApprovalView, FourEyesService
from core.services.recovery import RecoveryService
from core.services.recovery.transitions import NEXT_CALL, refuse_own
from core.services.recovery.views import RecoveryView, UnknownRecovery, grouped, plain_rows
from core.services.recovery_worker import reference

UNDER_WAY = (
    RecoveryState.APPROVED,
    RecoveryState.DEBITING,
    RecoveryState.DEBITED,
    RecoveryState.PAYING,
    RecoveryState.REFUNDING,
)
#: What each manual resolution does, and to a transaction in which state.
RESOLUTIONS: Mapping[FourEyesAction, tuple[RecoveryState, RecoveryEvent]] = {
    FourEyesAction.MARK_PAID: (RecoveryState.PAYING, RecoveryEvent.PAYOUT_CONFIRMED),
    FourEyesAction.MANUAL_REFUND: (RecoveryState.PAYING, RecoveryEvent.PAYOUT_FAILED),
    FourEyesAction.MARK_FAILED: (RecoveryState.DEBITING, RecoveryEvent.DEBIT_FAILED),
}
#: The partner call a state waits for (the one the engine makes next): what to ask the partner about.
ASKS = NEXT_CALL


class NotStuck(InputError):
    """Manual resolution is only for a transaction that is stuck, in the state the action needs."""

    key = "error.stuck.not_stuck"


@dataclass(frozen=True)
class StuckPart:
    id: str
    part: int
    state: RecoveryState
    reason: StuckReason
    deadline: dt.datetime
    attempts: int
    last_error: str
    late_s: float  # how long past the promise (0 while still within it)


def stuck_text(part: StuckPart, t: Translator, quote: Callable[[str], str] = str) -> str:
    """Why one part of a recovery is stuck, as the Stuck page and `ops stuck` say it: its state,
    and the promise it is past or the partner call still unanswered (`quote`: how the partner's
    own words are shown, escaped for Markdown on a page)."""
    head = t("stuck.part", part=part.part, state=t(f"state.{part.state.value}"))
    if part.reason is StuckReason.UNKNOWN_OUTCOME:
        error = quote(part.last_error) if part.last_error else "—"
        why = t("stuck.reason.unknown_outcome", attempts=part.attempts, error=error)
    else:
        why = t("stuck.reason.past_promise", deadline=local_time(part.deadline), late=age_text(part.late_s, t))
    return f"{head} · {why}"


@dataclass(frozen=True)
class StuckCase:
    view: RecoveryView
    carrier: str
    parts: tuple[StuckPart, ...]

    @property
    def reason(self) -> StuckReason:
        reasons = {p.reason for p in self.parts}
        return StuckReason.UNKNOWN_OUTCOME if StuckReason.UNKNOWN_OUTCOME in reasons else StuckReason.PAST_PROMISE


@dataclass(frozen=True)
class PartnerAnswer:
    """What the partner's own record says of one call, beside ours."""

    part_id: str
    call: str  # carrier_debit | payout | carrier_refund
    ours: RecoveryState
    theirs: str  # the partner's status, or "unknown" (no such record) / "unreachable"
    amount_fen: int | None
    reason: str


class StuckService:
    def __init__(
        self,
        engine: Engine,
        recoveries: RecoveryService,
        partners: Partners,
        catalog: Callable[[], Catalog],
        calendar: WorkingDayCalendar,
        approvals: FourEyesService,
        audit: AuditLog,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._recoveries = recoveries
        self._partners = partners
        self._catalog = catalog
        self._calendar = calendar
        self._approvals = approvals
        self._audit = audit
        self._clock = clock
        for action in RESOLUTIONS:
            approvals.handle(action, self._resolve_agreed)

    # --- finding ------------------------------------------------------------------------------

    def stuck(self, caller: Principal, *, group_id: str | None = None) -> list[StuckCase]:
        """Every recovery with a transaction stuck now (or only the recovery `group_id`), the
        longest overdue first."""
        require_operator(caller, "only an operator handles stuck recoveries")
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            under_way = select(Recovery.group_id).where(col(Recovery.state).in_([s.value for s in UNDER_WAY]))
            if group_id is not None:
                under_way = under_way.where(Recovery.group_id == group_id)
            rows = plain_rows(
                uow,
                col(Recovery.group_id).in_(under_way),
                order=[col(Recovery.created_at), col(Recovery.group_id), col(Recovery.part)],
            )
            ids = [r.id for r in rows if RecoveryState(r.state) in UNDER_WAY]
            started = _debit_started(uow, ids)
            calls = _open_calls(uow, ids)
        return sorted(self._cases(rows, started, calls, now), key=lambda c: min(p.deadline for p in c.parts))

    def _cases(
        self,
        rows: Sequence[Recovery],
        started: Mapping[str, dt.datetime],
        calls: Mapping[str, OutboxMessage],
        now: dt.datetime,
    ) -> list[StuckCase]:
        channels = self._catalog().by_id()
        carriers = {r.group_id: r.carrier for r in rows if r.part == 1}
        cases = []
        for view in grouped(rows):
            channel = channels.get(view.channel_id)
            if channel is None:
                continue
            days = days_for(split(view.amount_fen, transaction_size(channel, None), 1), channel.limits.per_day_fen)
            stuck = []
            for part in view.parts:
                if part.state not in UNDER_WAY:
                    continue
                deadline = promised_by(channel, self._calendar, started.get(part.id, view.created_at), days)
                call = calls.get(part.id)
                attempts, error = (call.attempts, call.last_error) if call is not None else (0, "")
                reason = stuck_reason(now, deadline, attempts, bool(error))
                if reason is not None:
                    late = max((now - deadline).total_seconds(), 0.0)
                    stuck.append(StuckPart(part.id, part.part, part.state, reason, deadline, attempts, error, late))
            if stuck:
                cases.append(StuckCase(view, carriers.get(view.id, ""), tuple(stuck)))
        return cases

    # --- what is safe -------------------------------------------------------------------------

    def ask_partner(self, caller: Principal, part_id: str) -> PartnerAnswer:
        """A status query to the partner the transaction waits on, recorded in the audit chain."""
        require_operator(caller, "only an operator asks partners")
        row = self._part(part_id)
        state = RecoveryState(row.state)
        call = NEXT_CALL.get(state)
        if call is None:
            raise NotStuck("this transaction waits on no partner call", key="error.stuck.no_call")
        ref = reference(row.id, call)
        try:
            if call == "payout":
                payout = self._partners.payouts[row.channel_id].status(ref)
                theirs, amount, why = (
                    (payout.status.value, payout.amount_fen, payout.reason) if payout else ("unknown", None, "")
                )
            else:
                ask = (
                    self._partners.carrier.debit_status
                    if call == "carrier_debit"
                    else self._partners.carrier.refund_status
                )
                op = ask(ref)
                theirs, amount, why = (op.outcome.value, op.amount_fen, op.reason) if op else ("unknown", None, "")
        except PartnerError:
            theirs, amount, why = "unreachable", None, ""
        with UnitOfWork(self._engine) as uow:
            self._audit.append(uow, caller.user_id, "stuck.ask_partner", row.id, {"call": call, "theirs": theirs})
            uow.commit()
        return PartnerAnswer(row.id, call, state, theirs, amount, why)

    def retry_now(self, caller: Principal, part_id: str) -> bool:
        """Make the transaction's open partner call due now (the same reference). False when none is open."""
        require_operator(caller, "only an operator retries partner calls")
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"recovery:{part_id}")
            message = uow.session.exec(
                select(OutboxMessage).where(OutboxMessage.recovery_id == part_id, col(OutboxMessage.done_at).is_(None))
            ).first()
            if message is None:
                return False
            message.available_at = now
            uow.session.add(message)
            self._audit.append(uow, caller.user_id, "stuck.retry_now", part_id, {"call": message.kind})
            uow.commit()
            return True

    def request_resolution(self, caller: Principal, part_id: str, action: FourEyesAction, note: str) -> ApprovalView:
        """Ask a second operator to agree to mark paid / mark failed / refund a stuck transaction."""
        require_operator(caller, "only an operator resolves stuck recoveries")
        if action not in RESOLUTIONS:
            raise InputError("not a manual resolution", key="error.stuck.action")
        note = kept_words(note)
        if not 3 <= len(note) <= 200:
            raise InputError("say why (3 to 200 characters)", key="error.review.reason")
        self._check_resolvable(caller, part_id, action)
        return self._approvals.request(caller, action, part_id, {"note": note, "action": action.value})

    def _check_resolvable(self, caller: Principal, part_id: str, action: FourEyesAction) -> None:
        row = self._part(part_id)
        with UnitOfWork(self._engine) as uow:
            refuse_own(uow, caller, [row])
        expected, _ = RESOLUTIONS[action]
        stuck_ids = {p.id for case in self.stuck(caller, group_id=row.group_id) for p in case.parts}
        if RecoveryState(row.state) is not expected or part_id not in stuck_ids:
            raise NotStuck("only a stuck transaction in the right state can be resolved by hand")

    def _resolve_agreed(self, checker: Principal, maker: Principal, part_id: str, detail: Mapping[str, str]) -> bool:
        """A second operator agreed: the move happens as a partner's answer would make it."""
        action = FourEyesAction(detail["action"])
        self._check_resolvable(checker, part_id, action)
        expected, event = RESOLUTIONS[action]
        done = self._recoveries.settle(
            part_id,
            expected,
            [event],
            actor=checker.user_id,
            reason=f"manual: {detail.get('note', '')}"[:200],
            audit={"action": action.value, "maker": maker.user_id, "checker": checker.user_id},
        )
        if not done:
            raise NotStuck("the transaction moved on meanwhile; nothing was changed")
        return done

    def _part(self, part_id: str) -> Recovery:
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(Recovery, part_id)
            if row is None:
                raise UnknownRecovery("no such recovery")
            return row


def _debit_started(uow: UnitOfWork, ids: list[str]) -> dict[str, dt.datetime]:
    if not ids:
        return {}
    rows = uow.session.exec(
        select(RecoveryTransition.recovery_id, func.min(RecoveryTransition.at))
        .where(
            col(RecoveryTransition.recovery_id).in_(ids), RecoveryTransition.event == RecoveryEvent.START_DEBIT.value
        )
        .group_by(RecoveryTransition.recovery_id)
    ).all()
    return dict(rows)


def _open_calls(uow: UnitOfWork, ids: list[str]) -> dict[str, OutboxMessage]:
    if not ids:
        return {}
    rows = uow.session.exec(
        select(OutboxMessage).where(col(OutboxMessage.recovery_id).in_(ids), col(OutboxMessage.done_at).is_(None))
    ).all()
    return {r.recovery_id: r for r in rows}
