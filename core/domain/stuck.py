"""When a recovery is stuck: it has passed its channel's own promise on the official working-day
calendar, or a partner call's outcome is still unknown after its retries. Pure.

The promise counts from when the recovery left the portal's hands (its debit started): an
instant channel has `INSTANT_GRACE` (minutes, as its users understand "instant"); a T+n or
working-days channel until the end (Asia/Shanghai) of the last day its speed promises — the
next working day for T+1, the fifth for 3–5 working days — plus the extra days a daily limit
spreads the transactions over.
"""

from __future__ import annotations

import datetime as dt
import enum

from core.domain.calendar import SHANGHAI, WorkingDayCalendar
from core.domain.catalog import Channel, Instant
from core.domain.quotes import eta

INSTANT_GRACE = dt.timedelta(minutes=30)
#: A partner call that failed this many times without a definite answer has an unknown outcome.
UNKNOWN_AFTER_ATTEMPTS = 5


class StuckReason(enum.StrEnum):
    PAST_PROMISE = "past_promise"  # later than the channel promised
    UNKNOWN_OUTCOME = "unknown_outcome"  # a partner call still unanswered after its retries


def promised_by(
    channel: Channel, calendar: WorkingDayCalendar, started_at: dt.datetime, days_needed: int = 1
) -> dt.datetime:
    """The moment after which a recovery that started at `started_at` is late."""
    if isinstance(channel.speed, Instant):
        return started_at + INSTANT_GRACE + dt.timedelta(days=days_needed - 1)
    _, last = eta(channel, calendar, started_at, days_needed)
    end_of_day = dt.datetime.combine(last.date + dt.timedelta(days=1), dt.time(0), tzinfo=SHANGHAI)
    return end_of_day.astimezone(dt.UTC)


def stuck_reason(now: dt.datetime, deadline: dt.datetime, attempts: int, unanswered: bool) -> StuckReason | None:
    """Why a recovery still under way is stuck, or None. `attempts` counts the current partner
    call's tries; `unanswered`: its last try ended without a definite answer."""
    if unanswered and attempts >= UNKNOWN_AFTER_ATTEMPTS:
        return StuckReason.UNKNOWN_OUTCOME
    if now > deadline:
        return StuckReason.PAST_PROMISE
    return None
