"""Compile-once statements (`core.persistence.compiled`) hand the driver what SQLAlchemy itself
hands it: a moment (`UTCDateTime`) on SQLite is made in one step instead of two, with the same
text and the same refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlmodel.sql.sqltypes import UTCDateTime

from core.persistence.compiled import bind_processor

SQLITE = SQLiteDialect()
SQLALCHEMYS = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
OURS = bind_processor(UTCDateTime(), SQLITE)


def outcome(process, value):  # type: ignore[no-untyped-def]
    try:
        return process(value)
    except Exception as error:  # the refusal itself is compared
        return (type(error), str(error))


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9998, 12, 30), timezones=st.timezones()))
def test_a_moment_is_bound_as_the_same_utc_text_sqlalchemy_binds(moment):
    assert OURS is not SQLALCHEMYS
    assert outcome(OURS, moment) == outcome(SQLALCHEMYS, moment)


@pytest.mark.parametrize(
    "value",
    [
        None,
        dt.datetime(2026, 11, 30, 4, 0),  # naive: refused with sqlmodel's message
        dt.date(2026, 11, 30),
        "2026-11-30 04:00:00",
        dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    ],
)
def test_what_is_not_a_utc_moment_is_bound_or_refused_as_sqlalchemy_does(value):
    assert outcome(OURS, value) == outcome(SQLALCHEMYS, value)


def test_a_moment_in_beijing_time_is_kept_as_its_utc_time():
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert OURS(dt.datetime(2026, 6, 1, 8, 0, tzinfo=beijing)) == "2026-06-01 00:00:00.000000"
