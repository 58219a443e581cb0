"""Every database test runs on SQLite (a fresh file) and on the local PostgreSQL (a fresh
schema), and drops what it made. CI sets TEST_DATABASE_URL and REQUIRE_POSTGRES=1, so the
PostgreSQL half can never skip there."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from core.adapters.sms import SmsGateway
from core.persistence import migrate
from core.persistence.db import engine_for
from core.services.identity import IdentityService
from tests.support.db import scratch_engine
from tests.support.portal import Portal, build_portal


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with scratch_engine(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
def file_engine(tmp_path):
    """SQLite only: a file whose pool has one place and waits a second at most for it (the kept
    readers' and writer's tests: what they take from the pool shows)."""
    engine = engine_for(f"sqlite:///{tmp_path / 'kept.sqlite3'}", pool_size=1, max_overflow=0, pool_timeout=1)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def identity(engine, keys, sms, clock):
    client = httpx.Client(transport=httpx.MockTransport(sms), base_url="http://sms.test/")
    return IdentityService(engine, keys, SmsGateway(client), clock=clock)


@pytest.fixture
def portal(engine) -> Portal:
    """The consumer journey's portal on this test's database (tests/support/portal.py)."""
    return build_portal(engine)
