import datetime as dt
import json

import pytest

from core.domain.calendar import SHANGHAI
from core.domain.catalog import TPlus
from core.domain.quotes import eta
from core.errors import CalendarError
from core.reference_data import load_calendar

D = dt.date


def test_2026_national_day_holiday_is_not_working_days(calendar):
    for day in range(1, 8):
        assert not calendar.is_workday(D(2026, 10, day))
    assert calendar.is_workday(D(2026, 10, 9))


def test_2026_make_up_workdays_fall_on_a_weekend_and_count(calendar):
    assert D(2026, 9, 20).weekday() == 6 and calendar.is_workday(D(2026, 9, 20))  # Sunday
    assert D(2026, 10, 10).weekday() == 5 and calendar.is_workday(D(2026, 10, 10))  # Saturday


def test_counting_working_days_across_national_day(calendar):
    # Wednesday 30 Sep: the next working day is Thursday 8 Oct, then Fri 9, then the make-up Saturday 10.
    assert calendar.add_working_days(D(2026, 9, 30), 1).date == D(2026, 10, 8)
    assert calendar.add_working_days(D(2026, 9, 30), 3).date == D(2026, 10, 10)
    assert calendar.add_working_days(D(2026, 9, 30), 5).date == D(2026, 10, 13)
    assert not calendar.add_working_days(D(2026, 9, 30), 5).estimated


def test_a_late_december_quote_reaching_into_2027_is_marked_an_estimate(calendar, catalog):
    app = catalog.by_id()["china_mobile_app"]
    first, last = eta(app, calendar, dt.datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI), 1)
    assert first.date == D(2026, 12, 31) and not first.estimated  # 3 working days stay in 2026
    assert last.date == D(2027, 1, 4) and last.estimated  # 2027's schedule is not published
    assert not calendar.is_published(2027)


def test_an_unpublished_year_counts_weekends_only(calendar):
    assert calendar.is_workday(D(2027, 1, 1))  # New Year's Day, unknown to an unpublished schedule
    assert not calendar.is_workday(D(2027, 1, 2))


def _write_schedule(directory, year=2027, **fields):
    data = {
        "year": year,
        "source": "国务院办公厅关于2027年部分节假日安排的通知 (test fixture)",
        "holidays": ["2027-01-01"],
        "makeup_workdays": [],
    }
    data.update(fields)
    path = directory / f"{year}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_an_operator_adds_a_year_by_adding_a_file(tmp_path, catalog):
    _write_schedule(tmp_path, holidays=["2027-01-01"], makeup_workdays=["2027-01-09"])
    calendar = load_calendar(tmp_path)
    assert calendar.is_published(2027)
    assert not calendar.is_workday(D(2027, 1, 1))
    assert calendar.is_workday(D(2027, 1, 9))  # a Saturday made a workday
    app = catalog.by_id()["china_mobile_app"]
    _, last = eta(app, calendar, dt.datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI), 1)
    assert last.date == D(2027, 1, 5) and not last.estimated  # 1 Jan is now a known holiday


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"holidays": ["2027-13-01"]}, "holidays[0]"),
        ({"holidays": ["2026-11-30"]}, "outside 2027"),
        ({"makeup_workdays": ["2027-01-04"]}, "is a weekday already"),
        ({"holidays": ["2027-01-09"], "makeup_workdays": ["2027-01-09"]}, "both as a holiday"),
        ({"source": ""}, "source"),
    ],
)
def test_a_bad_schedule_file_is_refused_naming_the_file_and_the_field(tmp_path, fields, problem):
    path = _write_schedule(tmp_path, **fields)
    with pytest.raises(CalendarError) as caught:
        load_calendar(tmp_path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_t_plus_one_ordered_on_a_holiday_counts_from_the_next_workday(catalog, calendar):
    bank = catalog.by_id()["icbc_e_mall"]
    assert isinstance(bank.speed, TPlus)
    first, _ = eta(bank, calendar, dt.datetime(2026, 10, 3, 9, 0, tzinfo=SHANGHAI), 1)
    assert first.date == D(2026, 10, 9)  # T = Thu 8 Oct, T+1 = Fri 9 Oct


def test_eta_uses_china_time_not_utc(catalog, calendar):
    alipay = catalog.by_id()["alipay"]
    # 20:00 UTC on 30 Nov is already 1 Dec in Shanghai
    first, _ = eta(alipay, calendar, dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC), 1)
    assert first.date == D(2026, 12, 1)


def test_a_notice_may_move_work_across_new_year(tmp_path):
    # Like the 2019 notice, which made Saturday 29 Dec 2018 a workday and 30-31 Dec days off.
    _write_schedule(tmp_path, holidays=["2026-12-31", "2027-01-01"], makeup_workdays=["2026-12-26"])
    calendar = load_calendar(tmp_path)
    assert calendar.is_workday(D(2026, 12, 26))  # a Saturday, by the 2027 notice
    assert not calendar.is_workday(D(2026, 12, 31))
    assert calendar.is_workday(D(2026, 12, 30))  # the library's 2026 days are kept
    assert not calendar.is_workday(D(2026, 10, 1))


def test_an_instant_payout_is_never_an_estimate(catalog, calendar):
    alipay = catalog.by_id()["alipay"]
    first, last = eta(alipay, calendar, dt.datetime(2027, 3, 1, 10, 0, tzinfo=SHANGHAI), 1)
    assert first.date == last.date == D(2027, 3, 1)
    assert not first.estimated and not last.estimated
