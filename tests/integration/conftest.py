"""Every database test runs on SQLite (a fresh file) and on the local PostgreSQL (a fresh
schema), and drops what it made. CI sets TEST_DATABASE_URL and REQUIRE_POSTGRES=1, so the
PostgreSQL half can never skip there."""

from __future__ import annotations

import datetime as dt
import os
import secrets

import httpx
import pytest

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.adapters.sms import SmsGateway
from core.persistence import migrate
from core.persistence.db import engine_for, scratch_schema
from core.security.keys import PortalKeys
from core.services.identity import IdentityService


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = engine_for(f"sqlite:///{tmp_path / 'portal.sqlite3'}")
        migrate.upgrade(engine)
        yield engine
        engine.dispose()
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail("TEST_DATABASE_URL is not set but PostgreSQL is required here")
        pytest.skip("TEST_DATABASE_URL not set (CI sets it to the local PostgreSQL)")
    with scratch_schema(base, prefix="t") as engine:
        migrate.upgrade(engine)
        yield engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def keys():
    return PortalKeys(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_urlsafe(32), generated=True)


@pytest.fixture
def sms():
    return SandboxSmsGateway()


@pytest.fixture
def identity(engine, keys, sms, clock):
    client = httpx.Client(transport=httpx.MockTransport(sms), base_url="http://sms.test/")
    return IdentityService(engine, keys, SmsGateway(client), clock=clock)


def last_code(sms: SandboxSmsGateway) -> str:
    import re

    return re.search(r"\b(\d{6})\b", sms.latest(1)[0].text).group(1)
