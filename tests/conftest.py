"""Fixtures for the whole suite. Shared helpers that are not fixtures live in tests/support/."""

from __future__ import annotations

import secrets

import pytest

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.domain.calendar import WorkingDayCalendar
from core.domain.catalog import Catalog
from core.reference_data import load_calendar, load_catalog
from core.security.keys import PortalKeys


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


@pytest.fixture
def keys() -> PortalKeys:
    """Fresh random data, index and cookie keys."""
    return PortalKeys(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_urlsafe(32), generated=True)


@pytest.fixture
def sms() -> SandboxSmsGateway:
    """The sandbox SMS gateway; `tests.support.people.last_code(sms)` reads the code it sent last."""
    return SandboxSmsGateway()
