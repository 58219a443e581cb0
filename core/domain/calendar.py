"""China's working-day calendar: weekends, official holidays and make-up workdays (调休).

A year is *published* when its official schedule is known. In an unpublished year the
calendar falls back to "Monday to Friday" and every answer that touched such a day says it
is an estimate; nothing is guessed silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.errors import InputError

SHANGHAI_UTC_OFFSET = dt.timedelta(hours=8)  # China has had no daylight saving time since 1991
#: Asia/Shanghai as a fixed offset: the portal's one time zone constant.
SHANGHAI = dt.timezone(SHANGHAI_UTC_OFFSET)
#: The earliest business day anything of the portal's can be dated (it did no business before):
#: a date before it is a typo or a broken file, and near the ends of `datetime` it overflows.
FIRST_BUSINESS_DAY = dt.date(2000, 1, 1)


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule: days off that would be workdays, and make-up workdays.

    A notice may reach a few days into the neighbouring years (the 2019 notice moved work to
    Saturday 29 Dec 2018), so its dates are not all in `year`."""

    year: int
    holidays: frozenset[dt.date]
    makeup_workdays: frozenset[dt.date]
    source: str = ""


@dataclass(frozen=True)
class DayCount:
    """A date reached by counting working days, and whether an unpublished year was crossed."""

    date: dt.date
    estimated: bool


@dataclass(frozen=True)
class WorkingDayCalendar:
    schedules: Mapping[int, YearSchedule] = field(default_factory=dict)
    _days_off: frozenset[dt.date] = field(init=False, repr=False, compare=False)
    _makeup: frozenset[dt.date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One index by date across all notices, whichever year's notice a date came from.
        days_off = frozenset().union(*(s.holidays for s in self.schedules.values()))
        makeup = frozenset().union(*(s.makeup_workdays for s in self.schedules.values()))
        object.__setattr__(self, "_days_off", days_off)
        object.__setattr__(self, "_makeup", makeup)

    def is_published(self, year: int) -> bool:
        return year in self.schedules

    def is_workday(self, day: dt.date) -> bool:
        if day in self._makeup:
            return True
        if day in self._days_off:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, days: int) -> DayCount:
        """The date `days` working days after `start` (start itself not counted)."""
        if days < 0:
            raise ValueError("days must be non-negative")
        estimated = not self.is_published(start.year)
        day = start
        remaining = days
        while remaining:
            day += dt.timedelta(days=1)
            estimated = estimated or not self.is_published(day.year)
            if self.is_workday(day):
                remaining -= 1
        return DayCount(day, estimated)

    def next_workday_on_or_after(self, start: dt.date) -> DayCount:
        day = start
        estimated = not self.is_published(day.year)
        while not self.is_workday(day):
            day += dt.timedelta(days=1)
            estimated = estimated or not self.is_published(day.year)
        return DayCount(day, estimated)

    def days_off_between(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """Every non-working day in [first, last], for drawing the calendar."""
        out = []
        day = first
        while day <= last:
            if not self.is_workday(day):
                out.append(day)
            day += dt.timedelta(days=1)
        return out


def to_shanghai(moment: dt.datetime) -> dt.datetime:
    """An aware datetime as wall-clock time in Asia/Shanghai (fixed UTC+8)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(SHANGHAI)


def shanghai_day(moment: dt.datetime) -> dt.date:
    """The Asia/Shanghai business day an aware moment falls on."""
    if moment.tzinfo is SHANGHAI:  # already Beijing time (every statement row): no conversion
        return moment.date()
    return to_shanghai(moment).date()


def day_start(day: dt.date) -> dt.datetime:
    """The first moment of an Asia/Shanghai day (aware; `+ timedelta(days=1)` is the next one's)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI)


def shanghai_period(start: dt.date, end: dt.date, *, most_days: int, errors: str) -> tuple[dt.datetime, dt.datetime]:
    """[first moment, moment after the last) in UTC of Shanghai days `start`..`end`, checked: a
    period that ends before it starts, or runs over `most_days`, is an InputError keyed
    `error.<errors>.period` / `error.<errors>.too_long`."""
    if end < start:
        raise InputError("the period ends before it starts", key=f"error.{errors}.period")
    if (end - start).days + 1 > most_days:
        raise InputError(f"a period is at most {most_days} days", key=f"error.{errors}.too_long", days=str(most_days))
    return day_start(start).astimezone(dt.UTC), day_start(end + dt.timedelta(days=1)).astimezone(dt.UTC)
