from __future__ import annotations

import datetime as dt

import pytest

from core.domain.calendar import WorkingDayCalendar
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog
from core.domain.quotes import QuoteRequest
from core.reference_data import load_calendar, load_catalog

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: A Wednesday morning in an ordinary week of a published year.
ORDINARY_MORNING = dt.datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="session", autouse=True)
def _isolated_portal_state(tmp_path_factory):
    """Pages and commands under test use a fresh SQLite file and fresh development keys,
    never the developer's `var/` (tests must not depend on what an earlier run left)."""
    import os

    state = tmp_path_factory.mktemp("portal-state")
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "PORTAL_SECRETS_FILE")}
    os.environ["DATABASE_URL"] = f"sqlite:///{state / 'portal.sqlite3'}"
    os.environ["PORTAL_SECRETS_FILE"] = str(state / "secrets.json")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def calendar() -> WorkingDayCalendar:
    return load_calendar()


def make_request(balance_yuan: int | str = 200, carrier: Carrier = Carrier.CHINA_MOBILE, **overrides) -> QuoteRequest:
    from core.money import parse_amount

    fields = dict(balance_fen=parse_amount(str(balance_yuan)), carrier=carrier, at=ORDINARY_MORNING)
    fields.update(overrides)
    return QuoteRequest(**fields)
