"""Working the outbox in-process on a simulated clock until every recovery has settled."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from core.persistence.tables import OutboxMessage
from core.persistence.uow import UnitOfWork
from core.simulation.rig import Rig, SimClock


def next_open_message(engine: Engine) -> dt.datetime | None:
    """When the earliest message not yet done is due, or None when all are done."""
    with UnitOfWork(engine) as uow:
        return uow.session.exec(
            select(func.min(OutboxMessage.available_at)).where(col(OutboxMessage.done_at).is_(None))
        ).one()


def drain(rig: Rig, clock: SimClock, *, rounds: int = 500) -> int:
    """Work every outbox message and deliver every partner notice, moving the simulated clock
    on to whatever is due next (or a minute, for a notice), until nothing is left to do.
    Returns the worker's steps."""

    def settled() -> bool:
        return next_open_message(rig.engine) is None and not rig.payouts.pending_notifications()

    def advance() -> None:
        due = next_open_message(rig.engine)
        clock.advance_to(due if due is not None and due > clock.now else clock.now + dt.timedelta(seconds=60))

    return rig.worker().run_until_settled(settled, deliver=rig.payouts.deliver_due, advance=advance, rounds=rounds)
