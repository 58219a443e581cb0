"""Reading recoveries: one (its owner's, or any for staff), a user's list, the review queue, a
recovery with its timeline, and — for the worker alone — the secrets a partner call needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.access import NotAllowed, Principal, require_operator
from core.domain.recovery import RecoveryEvent, RecoveryState
from core.persistence.tables import Recovery, RecoveryTransition
from core.persistence.uow import UnitOfWork
from core.security.fields import BlindIndex, FieldCipher
from core.services.recovery.transitions import ENGINE
from core.services.recovery.views import RecoveryView, Step, UnknownRecovery, grouped, parts_of, view_of

#: Every state, ordered so that each transition moves forward (a timeline's order within an instant).
TIMELINE = (
    RecoveryState.CREATED,
    RecoveryState.REVIEW,
    RecoveryState.APPROVED,
    RecoveryState.REJECTED,
    RecoveryState.CANCELLED,
    RecoveryState.DEBITING,
    RecoveryState.FAILED,
    RecoveryState.DEBITED,
    RecoveryState.PAYING,
    RecoveryState.PAID,
    RecoveryState.REFUNDING,
    RecoveryState.REFUNDED,
)


class Queries:
    _engine: Engine
    _cipher: FieldCipher
    _number_index: BlindIndex

    def number_index(self, national: str) -> str:
        return self._number_index(national)

    def get(self, caller: Principal, group_id: str) -> RecoveryView:
        with UnitOfWork(self._engine) as uow:
            parts = parts_of(uow, Recovery.group_id == group_id)
        if not parts or (parts[0].user_id != caller.user_id and not caller.is_staff):
            raise UnknownRecovery("no such recovery")
        return view_of(parts)

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
        return grouped(rows)[:limit]

    def review_queue(self, caller: Principal) -> list[RecoveryView]:
        """Recoveries waiting for an operator, oldest first."""
        require_operator(caller, "only an operator reviews recoveries")
        waiting = select(Recovery.group_id).where(Recovery.state == RecoveryState.REVIEW.value)
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(
                select(Recovery)
                .where(col(Recovery.group_id).in_(waiting))
                .order_by(col(Recovery.created_at), col(Recovery.group_id), col(Recovery.part))
            ).all()
        return grouped(rows)

    def history(self, caller: Principal, group_id: str) -> list[Step]:
        """Every recorded change of a recovery's parts, oldest first, as its owner may see it."""
        return self.follow(caller, group_id)[1]

    def follow(self, caller: Principal, group_id: str) -> tuple[RecoveryView, list[Step]]:
        """A recovery and its timeline, read together (what its page and its receipt show)."""
        with UnitOfWork(self._engine) as uow:
            parts = parts_of(uow, Recovery.group_id == group_id)
            if not parts or (parts[0].user_id != caller.user_id and not caller.is_staff):
                raise UnknownRecovery("no such recovery")
            rows = uow.session.exec(
                select(RecoveryTransition).where(col(RecoveryTransition.recovery_id).in_([p.id for p in parts]))
            ).all()
        view = view_of(parts)
        return view, timeline(view, rows)

    def secrets_of(self, recovery: Sealed) -> tuple[str, str]:
        """(full number, payee) of one transaction, decrypted for the partner call only."""
        number = self._cipher.decrypt(recovery.number_cipher, table="recoveries", column="number", row_id=recovery.id)
        payee = self._cipher.decrypt(recovery.payee_cipher, table="recoveries", column="payee", row_id=recovery.id)
        return number, payee


class Sealed(Protocol):
    """A recovery's row as far as its secrets go (an ORM row, or the worker's `CallFor`)."""

    @property
    def id(self) -> str: ...
    @property
    def number_cipher(self) -> bytes: ...
    @property
    def payee_cipher(self) -> bytes: ...


def _by(actor: str, owner: str) -> str:
    """Who made a change, as its owner is told: the engine, themselves, a partner, an operator."""
    if actor == ENGINE:
        return "engine"
    if actor == owner:
        return "owner"
    if actor.startswith("partner:"):
        return "partner"
    return "operator"


_STATES = {state.value: state for state in RecoveryState}  # a stored value as its member, by look-up
_EVENTS = {event.value: event for event in RecoveryEvent}
_RANK = {state.value: TIMELINE.index(state) for state in TIMELINE}


def timeline(view: RecoveryView, rows: Iterable[Any]) -> list[Step]:
    """A recovery's steps from its transition rows (anything with a transition's `recovery_id`,
    `at`, `event`, `after`, `actor` and `reason`), oldest first. Several changes can share one
    instant (an approval and the start of its debit), and ids are random: within an instant,
    parts in order and each part's states as they follow."""
    part_of = {p.id: p.part for p in view.parts}
    owner = view.user_id
    # each row's order and part worked out once (a detail's timeline is built on every read)
    keyed = [(row.at, part_of[row.recovery_id], _RANK[row.after], i, row) for i, row in enumerate(rows)]
    keyed.sort()  # the index breaks ties: rows are never compared
    return [
        Step(part, at, _EVENTS[row.event], _STATES[row.after], _by(row.actor, owner), row.reason)
        for at, part, _, _, row in keyed
    ]
