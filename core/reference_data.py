"""Reading the data files the portal ships (and an operator may update): the channel
catalog and the official holiday schedules. Errors name the file and the field."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from core.domain.calendar import WorkingDayCalendar, YearSchedule
from core.domain.catalog import Catalog, catalog_from_dict
from core.errors import CalendarError, CatalogError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def _read_json(path: Path, error: type[CatalogError] | type[CalendarError]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{path}: file not found", source=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise error(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})", source=str(path)) from exc


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or DATA_DIR / "channels.json"
    return catalog_from_dict(_read_json(path, CatalogError), source=str(path))


def load_catalog_raw(path: Path | None = None) -> dict[str, Any]:
    """The catalog as data (the sandbox feed publishes it, edited over time)."""
    return _read_json(path or DATA_DIR / "channels.json", CatalogError)


def _schedule_from_file(path: Path) -> YearSchedule:
    data = _read_json(path, CalendarError)
    problems = []

    def dates(field: str) -> frozenset[dt.date]:
        out = set()
        for i, raw in enumerate(data.get(field) or []):
            try:
                out.add(dt.date.fromisoformat(raw))
            except (TypeError, ValueError):
                problems.append(f"{field}[{i}]: {raw!r} is not a date like 2027-10-01")
        return frozenset(out)

    year = data.get("year") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(year, int):
        raise CalendarError(f"{path}: year: missing or not a number", source=str(path))
    if path.stem != str(year):
        problems.append(f"year: {year} does not match the file name {path.name}")
    holidays, workdays = dates("holidays"), dates("makeup_workdays")
    first, last = dt.date(year - 1, 12, 1), dt.date(year + 1, 1, 31)  # a notice may reach across New Year
    for day in sorted(holidays | workdays):
        if not first <= day <= last:
            problems.append(f"{day.isoformat()}: outside {year} and the weeks around it")
    for day in sorted(holidays & workdays):
        problems.append(f"{day.isoformat()}: listed both as a holiday and as a make-up workday")
    for day in sorted(workdays):
        if day.weekday() < 5:
            problems.append(f"makeup_workdays: {day.isoformat()} is a weekday already")
    if not data.get("source"):
        problems.append("source: say which official notice this schedule comes from")
    if problems:
        raise CalendarError(f"{path}: " + "; ".join(problems), source=str(path), problems=problems)
    return YearSchedule(year, holidays, workdays, str(data["source"]))


def _schedules_from_chinese_calendar() -> dict[int, YearSchedule]:
    from chinese_calendar import constants

    years = {d.year for d in constants.holidays}
    out = {}
    for year in sorted(years):
        holidays = frozenset(d for d in constants.holidays if d.year == year)
        workdays = frozenset(d for d in constants.workdays if d.year == year)
        out[year] = YearSchedule(year, holidays, workdays, "chinesecalendar")
    return out


def load_calendar(holidays_dir: Path | None = None) -> WorkingDayCalendar:
    """Official schedules: `chinesecalendar` for the years it knows, then one JSON file per
    later year in `data/holidays/` (a file for a year the library knows wins: the operator's
    word is the latest)."""
    schedules = _schedules_from_chinese_calendar()
    directory = holidays_dir or DATA_DIR / "holidays"
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9].json")):
        schedule = _schedule_from_file(path)
        schedules[schedule.year] = schedule
    return WorkingDayCalendar(schedules)
