"""What a user and a number already have in recoveries, read in the submitting transaction under
their locks: the amounts that count against the limits today and this month (Asia/Shanghai),
and the part of a number's balance that open recoveries still hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_
from sqlalchemy import select as core_select

from core.domain.calendar import to_shanghai
from core.domain.limits import Usage
from core.domain.recovery import COMMITTED, RecoveryState
from core.persistence.fast_reads import Read
from core.persistence.tables import Recovery
from core.persistence.uow import UnitOfWork

#: Ended without taking any balance for good: these free the limits again.
GAVE_BACK = {RecoveryState.REJECTED, RecoveryState.CANCELLED, RecoveryState.FAILED, RecoveryState.REFUNDED}
#: Recoveries that count against limits: every one not refused, cancelled, failed or refunded.
COUNTED = tuple(state.value for state in RecoveryState if state not in GAVE_BACK)


def _usage_statement() -> Any:
    """The limits query, built once: one row of six sums over the month's counted recoveries."""
    recoveries = Recovery.__table__  # type: ignore[attr-defined]
    c = recoveries.c
    by_user, by_number = c.user_id == bindparam("user"), c.number_index == bindparam("number")
    by_channel, today = c.channel_id == bindparam("channel"), c.created_at >= bindparam("day_start")

    def total(*where: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*where), c.debit_fen), else_=0)), 0)

    return core_select(
        total(by_user, today),
        total(by_user),
        total(by_number, today),
        total(by_number),
        total(by_number, by_channel, today),
        total(by_number, by_channel),
    ).where(c.state.in_(COUNTED), or_(by_user, by_number), c.created_at >= bindparam("month_start"))


_USAGE: Read[tuple[int, int, int, int, int, int]] = Read(_usage_statement)
_RECOVERIES = Recovery.__table__  # type: ignore[attr-defined]


def usage(uow: UnitOfWork, now: dt.datetime, user_id: str, index: str, channel_id: str) -> Usage:
    """What the user and the number (and the number on this channel) recovered today and this month."""
    local = to_shanghai(now)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    params = {"user": user_id, "number": index, "channel": channel_id}
    (row,) = uow.rows(_USAGE, **params, day_start=day_start, month_start=month_start)
    return Usage(*(int(value) for value in row))


#: What open recoveries on a number hold, by state (built once).
_COMMITTED: Read[tuple[str, int]] = Read(
    lambda: (
        core_select(_RECOVERIES.c.state, func.sum(_RECOVERIES.c.debit_fen))
        .where(
            _RECOVERIES.c.number_index == bindparam("number"),
            _RECOVERIES.c.state.in_(sorted(s.value for s in COMMITTED)),
        )
        .group_by(_RECOVERIES.c.state)
    )
)


def committed_on(uow: UnitOfWork, index: str) -> dict[RecoveryState, int]:
    """What open recoveries on a number hold of its balance, by state: everything not yet
    debited (as far as our records know). A debit that is under way may already show in the
    carrier's balance, so this errs on the side of holding too much, never too little."""
    rows = uow.rows(_COMMITTED, number=index)
    return {RecoveryState(state): int(total) for state, total in rows}
