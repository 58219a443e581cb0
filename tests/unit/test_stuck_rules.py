"""When a recovery is stuck: past its channel's own promise on the official working-day calendar,
or a partner call still unanswered after its retries."""

from __future__ import annotations

import datetime as dt

import pytest

from core.domain.calendar import SHANGHAI
from core.domain.stuck import UNKNOWN_AFTER_ATTEMPTS, StuckReason, promised_by, stuck_reason


def shanghai(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("channel", "started", "late_after"),
    [
        ("alipay", "2026-11-20T10:00", "2026-11-20T10:30"),  # instant: minutes
        ("icbc_e_mall", "2026-11-20T10:00", "2026-11-24T00:00"),  # T+1 from a Friday: the Monday
        ("icbc_e_mall", "2026-11-20T16:00", "2026-11-25T00:00"),  # after the 15:00 cut-off: a day more
        ("china_mobile_app", "2026-11-18T10:00", "2026-11-26T00:00"),  # 3–5 working days: the fifth
        ("icbc_e_mall", "2026-09-30T10:00", "2026-10-09T00:00"),  # T+1 over the National Day week
        ("china_mobile_app", "2026-09-29T10:00", "2026-10-13T00:00"),  # ... counting the Oct 10 make-up day
    ],
)
def test_the_promise_is_the_channels_own_on_the_official_calendar(catalog, calendar, channel, started, late_after):
    deadline = promised_by(catalog.by_id()[channel], calendar, shanghai(started).astimezone(dt.UTC))
    assert deadline == shanghai(late_after)


def test_a_daily_limit_adds_the_days_it_spreads_the_transactions_over(catalog, calendar):
    started = shanghai("2026-11-18T10:00").astimezone(dt.UTC)
    one = promised_by(catalog.by_id()["china_mobile_app"], calendar, started, 1)
    three = promised_by(catalog.by_id()["china_mobile_app"], calendar, started, 3)
    assert three - one == dt.timedelta(days=2)  # Thursday 26th, Friday 27th: two more working days


def test_late_or_unanswered_after_the_retries_is_stuck_and_nothing_else():
    now = shanghai("2026-11-20T12:00")
    assert stuck_reason(now, now - dt.timedelta(seconds=1), 0, False) is StuckReason.PAST_PROMISE
    assert stuck_reason(now, now, 0, False) is None
    assert stuck_reason(now, now + dt.timedelta(days=1), UNKNOWN_AFTER_ATTEMPTS, True) is StuckReason.UNKNOWN_OUTCOME
    assert stuck_reason(now, now + dt.timedelta(days=1), UNKNOWN_AFTER_ATTEMPTS - 1, True) is None
    assert stuck_reason(now, now + dt.timedelta(days=1), UNKNOWN_AFTER_ATTEMPTS, False) is None
