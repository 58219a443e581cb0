"""The review queue: recoveries the risk rules sent to an operator, oldest first, each with what
the operator needs to decide — its age (flagged past the service time), every rule that fired,
the account's history, and other open recoveries on the same number (a second recovery of the
same balance submitted while the first waited is visible at a glance).

An operator claims a case before deciding (a lease: others see who holds it, and it runs out by
itself), decides with a reason from the list (the owner reads it in their language) and a note
for colleagues, and the claim ends with the decision. Approving above the four-eyes amount
becomes a request a second operator agrees to (`core.services.console.approvals`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.domain.access import NotAllowed, Principal, require_operator
from core.domain.notes import kept_words
from core.domain.recovery import TERMINAL, RecoveryState
from core.domain.review import FourEyesAction, held, needs_second_person, overdue, reasons_for
from core.errors import InputError, PortalError
from core.persistence.fast_reads import Read, Snapshot, snapshot
from core.persistence.tables import Recovery, ReviewClaim, User, VerifiedNumber
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.console.approvals import ApprovalView, FourEyesService
from core.services.console.part_rows import RECOVERIES, PartRow, select_parts, views_of
from core.services.recovery import RecoveryService
from core.services.recovery.transitions import refuse_own
from core.services.recovery.views import RecoveryView, UnknownRecovery, parts_of, view_of

OPEN_STATES = tuple(s.value for s in RecoveryState if s not in TERMINAL)


class ClaimHeld(PortalError):
    """Another operator is working this case."""

    key = "error.queue.claimed"

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message, holder=holder)


class ClaimNeeded(PortalError):
    """Claim the case before deciding on it."""

    key = "error.queue.claim_first"


@dataclass(frozen=True)
class ClaimView:
    holder: str  # user name
    mine: bool
    expires_at: dt.datetime


@dataclass(frozen=True)
class AccountHistory:
    """What an operator weighs about the account behind a case."""

    account_since: dt.datetime
    recoveries: int  # every recovery of the account, this one included
    by_state: dict[str, int]
    numbers: tuple[str, ...]  # masked
    devices: int  # distinct devices its recoveries came from


@dataclass(frozen=True)
class Case:
    view: RecoveryView
    carrier: str
    age_s: float
    overdue: bool
    claim: ClaimView | None
    history: AccountHistory
    same_number: tuple[RecoveryView, ...]  # other open recoveries on this number
    request: ApprovalView | None  # a pending request for a second operator


@dataclass(frozen=True)
class QueueOverview:
    """The queue page in one read: the oldest cases, how many wait in all, and the requests
    waiting for a second operator."""

    cases: list[Case]
    waiting: int
    requests: list[ApprovalView]
    service_s: float


@dataclass(frozen=True)
class Decision:
    """What a decision did: the recovery moved (`view`), or a second operator must agree (`request`)."""

    view: RecoveryView | None
    request: ApprovalView | None


class ReviewQueueService:
    def __init__(
        self,
        engine: Engine,
        recoveries: RecoveryService,
        approvals: FourEyesService,
        audit: AuditLog,
        *,
        claim_s: float,
        service_s: float,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._recoveries = recoveries
        self._approvals = approvals
        self._audit = audit
        self._claim = dt.timedelta(seconds=claim_s)
        self.service_s = service_s
        self._clock = clock
        approvals.handle(FourEyesAction.APPROVE_RECOVERY, self._approve_agreed)

    # --- reading ------------------------------------------------------------------------------

    def overview(self, caller: Principal) -> QueueOverview:
        require_operator(caller, "only an operator reviews recoveries")
        requests = self._approvals.pending(caller)  # read once: the cases' requests and the list
        with snapshot(self._engine) as reader:
            cases = self._cases(reader, caller, requests)
            waiting = _waiting(reader)
        return QueueOverview(cases, waiting, requests, self.service_s)

    def waiting(self, caller: Principal) -> int:
        """How many recoveries wait for review in all (`cases` shows the oldest of them)."""
        require_operator(caller, "only an operator reviews recoveries")
        with snapshot(self._engine) as reader:
            return _waiting(reader)

    def cases(self, caller: Principal, *, limit: int = 100) -> list[Case]:
        """Recoveries waiting for an operator, oldest first, with what it takes to decide."""
        require_operator(caller, "only an operator reviews recoveries")
        pending = self._approvals.pending(caller)
        with snapshot(self._engine) as reader:
            return self._cases(reader, caller, pending, limit=limit)

    def _cases(
        self, reader: Snapshot, caller: Principal, pending: Sequence[ApprovalView], *, limit: int = 100
    ) -> list[Case]:
        now = self._clock()
        # every part of a recovery enters and leaves review together: its first part stands for it
        oldest = [group_id for (group_id,) in reader.rows(_OLDEST, limit=limit)]
        rows = reader.rows(_PARTS_OF, group_ids=oldest)
        views = views_of(rows)
        carriers = {r.group_id: r.carrier for r in rows}
        claims = _claims(reader, [v.id for v in views], caller, now)
        histories = _histories(reader, views)
        same_number = _open_on_numbers(reader, rows, views)
        requests = {r.subject: r for r in pending}
        return [
            Case(
                view=v,
                carrier=carriers.get(v.id, ""),
                age_s=(now - v.created_at).total_seconds(),
                overdue=overdue(v.created_at, now, self.service_s),
                claim=claims.get(v.id),
                history=histories[v.user_id],
                same_number=same_number.get(v.id, ()),
                request=requests.get(v.id),
            )
            for v in views
        ]

    # --- claiming -----------------------------------------------------------------------------

    def claim(self, caller: Principal, group_id: str) -> ClaimView:
        """Take a case (or renew one's own claim): nobody else decides on it until it is
        released, decided, or the claim runs out."""
        require_operator(caller, "only an operator reviews recoveries")
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"group:{group_id}")
            parts = parts_of(uow, Recovery.group_id == group_id)
            if not parts:
                raise UnknownRecovery("no such recovery")
            refuse_own(uow, caller, parts)
            if not any(p.state == RecoveryState.REVIEW.value for p in parts):
                raise InputError("the recovery is no longer in review", key="error.queue.not_in_review")
            row = uow.session.get(ReviewClaim, group_id)
            if row is not None and held(row.expires_at, now) and row.holder_id != caller.user_id:
                raise ClaimHeld("another operator is working this case", holder=row.holder_name)
            name = _name(uow, caller)
            if row is None:
                row = ReviewClaim(group_id=group_id, holder_id=caller.user_id, holder_name=name, expires_at=now)
            row.holder_id, row.holder_name, row.claimed_at, row.expires_at = (
                caller.user_id,
                name,
                now,
                now + self._claim,
            )
            uow.session.add(row)
            self._audit.append(uow, caller.user_id, "queue.claim", group_id, {"until": row.expires_at.isoformat()})
            uow.commit()
            return ClaimView(name, True, row.expires_at)

    def release(self, caller: Principal, group_id: str) -> None:
        """Give a case back to the queue (only its holder does)."""
        require_operator(caller, "only an operator reviews recoveries")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"group:{group_id}")
            row = uow.session.get(ReviewClaim, group_id)
            if row is None or row.holder_id != caller.user_id or not held(row.expires_at, self._clock()):
                raise ClaimNeeded("you do not hold this case")
            uow.session.execute(delete(ReviewClaim).where(col(ReviewClaim.group_id) == group_id))
            self._audit.append(uow, caller.user_id, "queue.release", group_id, {})
            uow.commit()

    # --- deciding -----------------------------------------------------------------------------

    def decide(self, caller: Principal, group_id: str, *, approve: bool, reason: str, note: str = "") -> Decision:
        """Approve or reject a case one holds, with a reason from the list and a note. Approving
        above the four-eyes amount asks a second operator instead."""
        require_operator(caller, "only an operator reviews recoveries")
        if reason not in reasons_for(approve):
            raise InputError("choose a reason from the list", key="error.review.reason")
        with UnitOfWork(self._engine) as uow:
            view = self._held_case(uow, caller, group_id)
            four_eyes = approve and needs_second_person(view.amount_fen, self._recoveries.four_eyes_above_fen)
            name = "" if four_eyes else _name(uow, caller)
        if four_eyes:
            request = self._approvals.request(
                caller, FourEyesAction.APPROVE_RECOVERY, group_id, {"reason": reason, "note": kept_words(note)}
            )
            self._end_claim(group_id)
            return Decision(None, request)
        decided = self._recoveries.review(caller, group_id, approve=approve, reason=reason, operator=name, note=note)
        self._end_claim(group_id)
        return Decision(decided, None)

    def _held_case(self, uow: UnitOfWork, caller: Principal, group_id: str) -> RecoveryView:
        parts = parts_of(uow, Recovery.group_id == group_id)
        if not parts:
            raise UnknownRecovery("no such recovery")
        refuse_own(uow, caller, parts)
        row = uow.session.get(ReviewClaim, group_id)
        if row is None or row.holder_id != caller.user_id or not held(row.expires_at, self._clock()):
            raise ClaimNeeded("claim the case before deciding on it")
        return view_of(parts)

    def _end_claim(self, group_id: str) -> None:
        with UnitOfWork(self._engine) as uow:
            uow.session.execute(delete(ReviewClaim).where(col(ReviewClaim.group_id) == group_id))
            uow.commit()

    def _approve_agreed(
        self, checker: Principal, maker: Principal, group_id: str, detail: Mapping[str, str]
    ) -> RecoveryView:
        """A second operator agreed to approve: the engine approves, with both names recorded."""
        with UnitOfWork(self._engine) as uow:
            name = _name(uow, checker)
        return self._recoveries.review(
            checker,
            group_id,
            approve=True,
            reason=detail.get("reason", ""),
            operator=name,
            note=detail.get("note", ""),
            maker=maker,
        )


def _name(uow: UnitOfWork, who: Principal) -> str:
    user = uow.session.get(User, who.user_id)
    if user is None or user.deleted_at is not None:
        raise NotAllowed("no such staff account")
    return user.username or who.user_id[:8]


def _waiting(reader: Snapshot) -> int:
    ((count,),) = reader.rows(_WAITING)
    return int(count)


def _claims(reader: Snapshot, group_ids: list[str], caller: Principal, now: dt.datetime) -> dict[str, ClaimView]:
    return {
        group_id: ClaimView(holder_name, holder_id == caller.user_id, expires_at)
        for group_id, holder_id, holder_name, expires_at in reader.rows(_CLAIMS, group_ids=group_ids)
        if held(expires_at, now)
    }


def _histories(reader: Snapshot, views: Sequence[RecoveryView]) -> dict[str, AccountHistory]:
    """Each case's account: when it began, its recoveries by state (groups), numbers, devices."""
    users = list({v.user_id for v in views})
    if not users:
        return {}
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for user_id, state, n in reader.rows(_COUNTS, users=users):
        counts[user_id][state] = n
    devices = dict(reader.rows(_DEVICES, users=users))
    numbers: dict[str, list[str]] = defaultdict(list)
    for user_id, masked in reader.rows(_NUMBERS, users=users):
        numbers[user_id].append(masked)
    since = dict(reader.rows(_SINCE, users=users))
    return {
        user_id: AccountHistory(
            account_since=since[user_id],
            recoveries=sum(counts[user_id].values()),
            by_state=dict(counts[user_id]),
            numbers=tuple(sorted(numbers[user_id])),
            devices=int(devices.get(user_id, 0)),
        )
        for user_id in users
    }


def _open_on_numbers(
    reader: Snapshot, rows: Sequence[PartRow], views: Sequence[RecoveryView]
) -> dict[str, tuple[RecoveryView, ...]]:
    """For each case, the other recoveries still open on the same number (anyone's)."""
    index_of = {r.group_id: r.number_index for r in rows if r.part == 1}
    indexes = list({index_of[v.id] for v in views if v.id in index_of})
    if not indexes:
        return {}
    open_rows = reader.rows(_OPEN_ON_NUMBERS, indexes=indexes)
    groups: dict[str, list[PartRow]] = {}
    for row in open_rows:
        groups.setdefault(row.group_id, []).append(row)
    cases = {v.id: v for v in views}
    by_number: dict[str, list[RecoveryView]] = defaultdict(list)
    for group_id, parts in groups.items():
        # a case with every part open (read in the same transaction) is the view built already
        case = cases.get(group_id)
        if case is None or [p.id for p in case.parts] != [p.id for p in parts]:
            case = views_of(parts)[0]
        by_number[parts[-1].number_index].append(case)
    return {v.id: tuple(o for o in by_number.get(index_of.get(v.id, ""), []) if o.id != v.id) for v in views}


_R = RECOVERIES.c
_IN_REVIEW = (_R.state == RecoveryState.REVIEW.value, _R.part == 1)
_OLDEST: Read[tuple[str]] = Read(
    lambda: select(_R.group_id).where(*_IN_REVIEW).order_by(_R.created_at, _R.group_id).limit(bindparam("limit"))
)
_WAITING: Read[tuple[int]] = Read(lambda: select(func.count()).where(*_IN_REVIEW))
_PARTS_OF: Read[PartRow] = Read(
    lambda group_ids: select_parts().where(_R.group_id.in_(group_ids)).order_by(_R.created_at, _R.group_id, _R.part),
    lists=("group_ids",),
    row=PartRow,
)
_C = cast(Table, ReviewClaim.__table__).c  # type: ignore[attr-defined]
_CLAIMS: Read[tuple[str, str, str, dt.datetime]] = Read(
    lambda group_ids: select(_C.group_id, _C.holder_id, _C.holder_name, _C.expires_at).where(
        _C.group_id.in_(group_ids)
    ),
    lists=("group_ids",),
)
_COUNTS: Read[tuple[str, str, int]] = Read(
    lambda users: (
        select(_R.user_id, _R.state, func.count())
        .where(_R.user_id.in_(users), _R.part == 1)
        .group_by(_R.user_id, _R.state)
    ),
    lists=("users",),
)
_DEVICES: Read[tuple[str, int]] = Read(
    lambda users: (
        select(_R.user_id, func.count(func.distinct(_R.device_index)))
        .where(_R.user_id.in_(users), _R.device_index != "")
        .group_by(_R.user_id)
    ),
    lists=("users",),
)
_V = cast(Table, VerifiedNumber.__table__).c  # type: ignore[attr-defined]
_NUMBERS: Read[tuple[str, str]] = Read(
    lambda users: select(_V.user_id, _V.masked).where(_V.user_id.in_(users)), lists=("users",)
)
_U = cast(Table, User.__table__).c  # type: ignore[attr-defined]
_SINCE: Read[tuple[str, dt.datetime]] = Read(
    lambda users: select(_U.id, _U.created_at).where(_U.id.in_(users)), lists=("users",)
)
_OPEN_ON_NUMBERS: Read[PartRow] = Read(
    lambda indexes: (
        select_parts()
        .where(_R.number_index.in_(indexes), _R.state.in_(OPEN_STATES))
        .order_by(_R.created_at, _R.group_id, _R.part)
    ),
    lists=("indexes",),
    row=PartRow,
)
