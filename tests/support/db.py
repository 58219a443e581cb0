"""Engines for tests, and reading what they hold: row counts, every row, and a snapshot of the
tables a recovery or a submission writes (equal before and after: nothing was written)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, func, select

from core.persistence import migrate
from core.persistence.db import engine_for, scratch_schema
from core.persistence.tables import (
    AgreementAcceptance,
    AuditRecord,
    LedgerPosting,
    OutboxMessage,
    QuoteLock,
    Recovery,
    RecoveryTransition,
)
from core.persistence.uow import UnitOfWork

#: Every table a submission or a state change writes.
RECOVERY_TABLES: tuple[type[SQLModel], ...] = (
    Recovery,
    RecoveryTransition,
    LedgerPosting,
    OutboxMessage,
    AuditRecord,
    AgreementAcceptance,
)


def sqlite_engine(path: Path, *, migrated: bool = True) -> Engine:
    """A SQLite database in the new file `path` (mode 0600, as the portal makes it), at the latest
    revision unless told not to: a copy of one database migrated once a session, since migrating
    each test's own takes longer than most tests."""
    if migrated:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as target:
            target.write(_migrated_sqlite().read_bytes())
    return engine_for(f"sqlite:///{path}")


@functools.cache
def _migrated_sqlite() -> Path:
    """A SQLite file migrated to the latest revision, once a session; removed at exit."""
    home = Path(tempfile.mkdtemp(prefix="portal-test-migrated-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    path = home / "migrated.sqlite3"
    engine = engine_for(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection checkpoints the write-ahead log into the file
    assert not path.with_name(path.name + "-wal").exists(), "the migrated database is not all in its file"
    return path


@contextlib.contextmanager
def scratch_engine(backend: str, tmp_path: Path, *, migrated: bool = True) -> Iterator[Engine]:
    """A fresh, empty database for one test, gone afterwards: on "sqlite" a file in `tmp_path`, on
    "postgresql" a scratch schema on TEST_DATABASE_URL. Migrated to the latest revision unless
    told not to. Without TEST_DATABASE_URL the PostgreSQL half skips, or fails where
    REQUIRE_POSTGRES is set (as in CI)."""
    if backend == "sqlite":
        engine = sqlite_engine(tmp_path / "portal.sqlite3", migrated=migrated)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail("TEST_DATABASE_URL is not set but PostgreSQL is required here")
        pytest.skip("TEST_DATABASE_URL not set (CI sets it to the local PostgreSQL)")
    with scratch_schema(base, prefix="t") as engine:
        if migrated:
            migrate.upgrade(engine)
        yield engine


def database_url(engine: Engine) -> str:
    """The DATABASE_URL another process needs to reach the same database (and scratch schema)."""
    if engine.dialect.name == "sqlite":
        return f"sqlite:///{engine.url.database}"
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar()
    base = os.environ["TEST_DATABASE_URL"]
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def count(engine: Engine, table: type[SQLModel], *where: Any) -> int:
    with UnitOfWork(engine) as uow:
        return int(uow.session.exec(select(func.count()).select_from(table).where(*where)).one())


def all_rows(engine: Engine, table: type[SQLModel], *where: Any) -> list[Any]:
    with UnitOfWork(engine) as uow:
        return list(uow.session.exec(select(table).where(*where)).all())


def snapshot(engine: Engine) -> dict[str, int]:
    """How many rows every table a submission writes holds, and how many quote locks are used."""
    rows = {table.__tablename__: count(engine, table) for table in RECOVERY_TABLES}
    rows["used_locks"] = count(engine, QuoteLock, col(QuoteLock.used_by).is_not(None))
    return rows


def ledger(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    """(sum of each entry, balance of each account)."""
    entries: dict[str, int] = defaultdict(int)
    accounts: dict[str, int] = defaultdict(int)
    for posting in all_rows(engine, LedgerPosting):
        entries[posting.entry_id] += posting.amount_fen
        accounts[posting.account] += posting.amount_fen
    return dict(entries), dict(accounts)


def dispose_folds_the_log(engine: Engine) -> None:
    """Dispose `engine` (a SQLite file with a write-ahead log) and check that the dispose itself,
    not a garbage collection some time later, closed its last connection: that connection folds
    the log into the database file and removes it."""
    wal = Path(f"{engine.url.database}-wal")
    assert wal.exists()
    gc.disable()
    try:
        engine.dispose()
        assert not wal.exists()
    finally:
        gc.enable()
