"""Four eyes (maker–checker): actions one operator asks for and a second one must agree to
before they happen — approving a recovery above the four-eyes amount, a manual refund, a manual
"mark as paid / failed", removing a deny-list entry.

The rules: the one who asked cannot agree; a second pending request for the same action on the
same thing is refused (a unique `pending_key`, so two at once cannot both be made); a request
lapses after `lapse_s` and can then only be asked again. Agreeing claims the request in one
conditional statement — of two operators agreeing at once, one does it — and then carries it
out through the service the action belongs to (`handlers`), so every rule of that service
(roles, nobody on their own recovery, the state machine) applies to the checker as well.
Everything is written to the audit chain.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.domain.access import NotAllowed, Principal, Role, require_operator
from core.domain.notes import masked_numbers
from core.domain.review import FourEyesAction, RequestStatus, held
from core.errors import PortalError
from core.persistence.tables import ApprovalRequest, ReconciliationBreak, Recovery, User
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog, usernames
from core.services.recovery_worker import reference


class DuplicateRequest(PortalError):
    """The same action on the same thing already waits for a second operator."""

    key = "error.four_eyes.duplicate"


class SameOperator(NotAllowed):
    """The operator who asked cannot be the one who agrees."""

    key = "error.four_eyes.same_operator"


class RequestClosed(PortalError):
    """The request was decided already, or lapsed."""

    key = "error.four_eyes.closed"


class RequesterDisabled(RequestClosed):
    """The operator who asked was disabled: nobody agrees to what they asked for."""

    key = "error.four_eyes.requester_disabled"


def withdraw_requests_of(uow: UnitOfWork, audit: AuditLog, user_id: str, actor_id: str, now: dt.datetime) -> int:
    """Close the pending requests `user_id` made, as lapsed, each written to the audit chain (in
    the caller's transaction: a staff account disabled takes its requests with it)."""
    rows = uow.session.exec(
        select(ApprovalRequest).where(
            ApprovalRequest.requested_by == user_id, ApprovalRequest.status == RequestStatus.PENDING.value
        )
    ).all()
    for row in rows:
        row.status, row.pending_key = RequestStatus.LAPSED.value, None
        row.decided_by, row.decided_at = actor_id, now
        uow.session.add(row)
        detail = {"action": row.action, "id": row.id, "why": "requester_disabled"}
        audit.append(uow, actor_id, "four_eyes.withdraw", row.subject, detail)
    return len(rows)


def _disabled(uow: UnitOfWork, user_id: str) -> bool:
    user = uow.session.get(User, user_id)
    return user is None or user.disabled_at is not None or user.deleted_at is not None


@dataclass(frozen=True)
class Stake:
    """What a request puts at stake, read when it is shown (a checker agrees to money, not to an
    id): the recovery and its part, the amount, the channel, the partner and our reference, and
    for a correcting entry the two amounts it reconciles. Empty where the request has none."""

    recovery_id: str = ""  # the recovery (its group id)
    part: int | None = None
    amount_fen: int | None = None
    channel: str = ""
    partner: str = ""  # "carrier", or a payout channel
    reference: str = ""
    ours_fen: int | None = None
    theirs_fen: int | None = None


@dataclass(frozen=True)
class ApprovalView:
    id: str
    action: FourEyesAction
    subject: str
    detail: dict[str, str]
    status: RequestStatus
    requested_by: str  # the user name of the operator who asked
    requested_by_id: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    decided_by: str | None
    stake: Stake = Stake()


#: What carries out an agreed action: (checker, maker, subject, detail).
Handler = Callable[[Principal, Principal, str, Mapping[str, str]], Any]


class FourEyesService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        *,
        lapse_s: float,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._lapse = dt.timedelta(seconds=lapse_s)
        self._clock = clock
        self.handlers: dict[FourEyesAction, Handler] = {}

    def handle(self, action: FourEyesAction, handler: Handler) -> None:
        """Register the service call that carries out `action` once a second operator agrees."""
        self.handlers[action] = handler

    def request(
        self, caller: Principal, action: FourEyesAction, subject: str, detail: Mapping[str, str]
    ) -> ApprovalView:
        """Ask for `action` on `subject`; a second operator must agree (`agree`)."""
        require_operator(caller, "only an operator asks for this")
        now = self._clock()
        key = f"{action.value}:{subject}"
        try:
            with UnitOfWork(self._engine) as uow:
                self._lapse_expired(uow, now, key)
                if uow.session.exec(select(ApprovalRequest).where(ApprovalRequest.pending_key == key)).first():
                    raise DuplicateRequest("the same request already waits for a second operator")
                row = ApprovalRequest(
                    action=action.value,
                    subject=subject,
                    detail=json.dumps(dict(detail), ensure_ascii=False, sort_keys=True),
                    pending_key=key,
                    status=RequestStatus.PENDING.value,
                    requested_by=caller.user_id,
                    requested_at=now,
                    expires_at=now + self._lapse,
                )
                uow.session.add(row)
                uow.session.flush()
                self._audit.append(
                    uow, caller.user_id, "four_eyes.request", subject, {"action": action.value, "id": row.id}
                )
                uow.commit()
                request_id = row.id
        except IntegrityError:  # two asked at the same moment: the other one's stands
            raise DuplicateRequest("the same request already waits for a second operator") from None
        return self.get(caller, request_id)

    def pending(self, caller: Principal, subject: str | None = None) -> list[ApprovalView]:
        """Requests waiting for a second operator, oldest first (not the lapsed ones)."""
        require_operator(caller, "only an operator sees requests")
        with UnitOfWork(self._engine) as uow:  # a read: lapsed ones are left out, and marked when next written
            disabled = select(User.id).where(col(User.disabled_at).is_not(None))  # their requests are closed
            query = select(ApprovalRequest).where(
                ApprovalRequest.status == RequestStatus.PENDING.value,
                col(ApprovalRequest.expires_at) > self._clock(),
                col(ApprovalRequest.requested_by).not_in(disabled),
            )
            if subject is not None:
                query = query.where(ApprovalRequest.subject == subject)
            rows = uow.session.exec(query.order_by(col(ApprovalRequest.requested_at))).all()
            names = usernames(uow, {r.requested_by for r in rows})  # nobody decided a pending one yet
            return [_view(r, names, _stake(uow, r)) for r in rows]

    def get(self, caller: Principal, request_id: str) -> ApprovalView:
        require_operator(caller, "only an operator sees requests")
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(ApprovalRequest, request_id)
            if row is None:
                raise RequestClosed("no such request")
            names = usernames(uow, {row.requested_by, *([row.decided_by] if row.decided_by else [])})
            return _view(row, names, _stake(uow, row))

    def agree(self, caller: Principal, request_id: str) -> Any:
        """A second operator agrees: the action happens, as its own service does it. Returns what
        that service returned."""
        require_operator(caller, "only an operator agrees to this")
        row = self._claim(caller, request_id, RequestStatus.DONE)
        maker = Principal(row.requested_by, Role.OPERATOR)
        try:
            result = self.handlers[FourEyesAction(row.action)](caller, maker, row.subject, json.loads(row.detail))
        except Exception:
            self._mark_failed(row.id, caller)
            raise
        with UnitOfWork(self._engine) as uow:
            details = {"action": row.action, "id": row.id, "maker": row.requested_by}
            self._audit.append(uow, caller.user_id, "four_eyes.agree", row.subject, details)
            uow.commit()
        return result

    def refuse(self, caller: Principal, request_id: str) -> None:
        """A second operator says no, or the one who asked withdraws."""
        require_operator(caller, "only an operator decides on requests")
        row = self._claim(caller, request_id, RequestStatus.REFUSED, allow_maker=True)
        with UnitOfWork(self._engine) as uow:
            self._audit.append(
                uow, caller.user_id, "four_eyes.refuse", row.subject, {"action": row.action, "id": row.id}
            )
            uow.commit()

    def _claim(
        self, caller: Principal, request_id: str, status: RequestStatus, *, allow_maker: bool = False
    ) -> ApprovalRequest:
        """Close a pending request as `status`, in one conditional statement (one of two wins)."""
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(ApprovalRequest, request_id)
            if row is None or row.status != RequestStatus.PENDING.value:
                raise RequestClosed("the request was decided already")
            if not held(row.expires_at, now):
                self._lapse_expired(uow, now, row.pending_key)
                uow.commit()
                raise RequestClosed("the request lapsed; ask again")
            if row.requested_by == caller.user_id and not allow_maker:
                raise SameOperator("a second operator must agree, not the one who asked")
            if not allow_maker and _disabled(uow, row.requested_by):  # asked before the account was disabled
                withdraw_requests_of(uow, self._audit, row.requested_by, caller.user_id, now)
                uow.commit()
                raise RequesterDisabled("the operator who asked was disabled; nobody agrees to it")
            closed = uow.session.execute(
                update(ApprovalRequest)
                .where(
                    col(ApprovalRequest.id) == request_id, col(ApprovalRequest.status) == RequestStatus.PENDING.value
                )
                .values(status=status.value, pending_key=None, decided_by=caller.user_id, decided_at=now)
            )
            if closed.rowcount != 1:  # type: ignore[attr-defined]
                raise RequestClosed("the request was decided already")
            uow.commit()
            uow.session.refresh(row)
            return row

    def _mark_failed(self, request_id: str, caller: Principal) -> None:
        """The action could not happen (the recovery moved on, the entry is gone ...): the request
        is closed as failed, so that nothing waits on it, and the checker sees why."""
        with UnitOfWork(self._engine) as uow:
            uow.session.execute(
                update(ApprovalRequest)
                .where(col(ApprovalRequest.id) == request_id)
                .values(status=RequestStatus.FAILED.value)
            )
            self._audit.append(uow, caller.user_id, "four_eyes.failed", request_id, {"id": request_id})
            uow.commit()

    @staticmethod
    def _lapse_expired(uow: UnitOfWork, now: dt.datetime, key: str | None = None) -> None:
        query = update(ApprovalRequest).where(
            col(ApprovalRequest.status) == RequestStatus.PENDING.value, col(ApprovalRequest.expires_at) <= now
        )
        if key is not None:
            query = query.where(col(ApprovalRequest.pending_key) == key)
        uow.session.execute(query.values(status=RequestStatus.LAPSED.value, pending_key=None))


#: The partner call a manual resolution settles, by action: its reference names it.
_CALL_OF = {
    FourEyesAction.MARK_PAID: "payout",
    FourEyesAction.MANUAL_REFUND: "payout",
    FourEyesAction.MARK_FAILED: "carrier_debit",
}


def _stake(uow: UnitOfWork, row: ApprovalRequest) -> Stake:
    """What `row` puts at stake, as the tables say now (an empty Stake for what has none)."""
    action = FourEyesAction(row.action)
    if action is FourEyesAction.APPROVE_RECOVERY:
        parts = uow.session.exec(select(Recovery).where(Recovery.group_id == row.subject)).all()
        if not parts:
            return Stake()
        first = min(parts, key=lambda p: p.part)
        return Stake(row.subject, None, sum(p.debit_fen for p in parts), first.channel_id)
    if action in _CALL_OF:
        part = uow.session.get(Recovery, row.subject)
        if part is None:
            return Stake()
        partner = "carrier" if _CALL_OF[action] == "carrier_debit" else part.channel_id
        ref = reference(part.id, _CALL_OF[action])
        return Stake(part.group_id, part.part, part.debit_fen, part.channel_id, partner, ref)
    if action is FourEyesAction.CORRECT_BREAK:
        found = uow.session.get(ReconciliationBreak, row.subject)
        if found is None:
            return Stake()
        recovery = uow.session.get(Recovery, found.recovery_id) if found.recovery_id else None
        return Stake(
            recovery.group_id if recovery else "",
            recovery.part if recovery else None,
            None,
            recovery.channel_id if recovery else "",
            found.partner,
            found.reference,
            found.ours_fen,
            found.theirs_fen,
        )
    return Stake()


def _view(row: ApprovalRequest, names: Mapping[str, str], stake: Stake | None = None) -> ApprovalView:
    """`names`: user names by id; an account without one shows the start of its id."""
    return ApprovalView(
        id=row.id,
        action=FourEyesAction(row.action),
        subject=row.subject,
        detail={k: masked_numbers(str(v)) for k, v in json.loads(row.detail or "{}").items()},  # as kept before
        status=RequestStatus(row.status),
        requested_by=names.get(row.requested_by, row.requested_by[:8]),
        requested_by_id=row.requested_by,
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        decided_by=names.get(row.decided_by, row.decided_by[:8]) if row.decided_by else None,
        stake=stake or Stake(),
    )
