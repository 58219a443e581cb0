"""On a SQLite file, a page's snapshot (`core.persistence.fast_reads.snapshot`) reads on one of
the engine's readers, kept outside its pool: a read takes no place a writer needs, a reader
holds no transaction between reads, and only a few idle ones are kept. SQLite only: on
PostgreSQL a snapshot reads on the pool's connections (tests/integration/test_fast_reads.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from core.persistence import migrate
from core.persistence.db import engine_for
from core.persistence.fast_reads import Read, Readers, snapshot
from core.persistence.tables import User
from tests.support.db import dispose_folds_the_log

_COUNT: Read[tuple[int]] = Read(lambda: select(func.count()).select_from(User.__table__))  # type: ignore[attr-defined]


def _add_user(engine, uid: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(User.__table__), [{"id": uid, "role": "consumer", "created_at": dt.datetime.now(dt.UTC)}])  # type: ignore[attr-defined]


def test_a_write_goes_on_while_a_snapshot_is_open_in_a_pool_of_one_place(file_engine):
    """Before, a snapshot held the pool's only connection: the write waited, then failed."""
    _add_user(file_engine, "u0")
    with snapshot(file_engine) as reader:
        assert reader.rows(_COUNT) == [(1,)]
        _add_user(file_engine, "u1")  # the pool's place is free
        assert reader.rows(_COUNT) == [(1,)]  # still its own snapshot
    with snapshot(file_engine) as reader:
        assert reader.rows(_COUNT) == [(2,)]


def _checkpoint_busy(engine) -> int:
    """1 when a reader's snapshot keeps the log from being emptied (asked outside any transaction)."""
    outside = sqlite3.connect(engine.url.database, isolation_level=None, timeout=0)
    try:
        return outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        outside.close()


def test_a_reader_pins_no_state_of_the_log_once_its_snapshot_ends(file_engine):
    """A kept reader rolled back: the write-ahead log can be emptied in full (an open snapshot
    would keep the checkpoint from it, as the first check shows)."""
    _add_user(file_engine, "u0")
    with snapshot(file_engine) as reader:
        reader.rows(_COUNT)
        _add_user(file_engine, "u1")
        assert _checkpoint_busy(file_engine) == 1  # the open snapshot still reads the older state
    assert len(Readers.of(file_engine).idle) == 1
    assert _checkpoint_busy(file_engine) == 0


def test_at_most_a_few_idle_readers_are_kept_and_the_rest_are_closed(file_engine):
    many = Readers.KEEP + 4
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(snapshot(file_engine)) for _ in range(many)]
        for reader in readers:
            assert reader.rows(_COUNT) == [(0,)]
        connections = [reader._dbapi for reader in readers]
    assert len(set(map(id, connections))) == many  # one each while they were open
    kept = Readers.of(file_engine).idle
    assert len(kept) == Readers.KEEP
    closed = [c for c in connections if c not in kept]
    assert len(closed) == 4
    for connection in closed:
        with pytest.raises(sqlite3.ProgrammingError):
            connection.cursor()


def test_a_reader_closed_under_the_portal_fails_one_read_and_is_replaced(file_engine):
    _add_user(file_engine, "u0")
    with snapshot(file_engine) as reader:
        reader.rows(_COUNT)
    (lost,) = Readers.of(file_engine).idle
    lost.close()
    with pytest.raises(DBAPIError), snapshot(file_engine) as reader:
        reader.rows(_COUNT)
    assert lost not in Readers.of(file_engine).idle
    with snapshot(file_engine) as reader:
        assert reader.rows(_COUNT) == [(1,)]


def test_disposing_the_engine_closes_its_idle_readers_and_folds_the_log_into_the_file(file_engine):
    """As before readers: the last connection to close checkpoints the write-ahead log into the
    database file and removes it (a copy of the file after dispose holds everything)."""
    _add_user(file_engine, "u0")
    with snapshot(file_engine) as reader:
        reader.rows(_COUNT)
    (kept,) = Readers.of(file_engine).idle
    dispose_folds_the_log(file_engine)
    with pytest.raises(sqlite3.ProgrammingError):
        kept.cursor()


def test_a_reader_in_a_snapshot_while_the_engine_is_disposed_is_closed_as_it_comes_back(file_engine):
    _add_user(file_engine, "u0")
    with snapshot(file_engine) as reader:
        file_engine.dispose()
        assert reader.rows(_COUNT) == [(1,)]  # its snapshot reads on
        connection = reader._dbapi
    with pytest.raises(sqlite3.ProgrammingError):
        connection.cursor()
    assert connection not in Readers.of(file_engine).idle


def test_a_disposed_engine_reads_on_readers_of_its_new_pool(file_engine):
    with snapshot(file_engine) as reader:
        reader.rows(_COUNT)
    old = Readers.of(file_engine)
    file_engine.dispose()
    _add_user(file_engine, "u0")
    with snapshot(file_engine) as reader:
        assert reader.rows(_COUNT) == [(1,)]
    assert Readers.of(file_engine) is not old


def test_a_database_in_memory_is_read_on_its_one_pooled_connection():
    """An in-memory database lives in its one connection (the simulation's rig): a snapshot
    reads there, and takes nothing out of the pool."""
    engine = engine_for("sqlite://", poolclass=StaticPool)
    try:
        migrate.upgrade(engine)
        _add_user(engine, "u0")
        for _ in range(2):
            with snapshot(engine) as reader:
                assert reader.rows(_COUNT) == [(1,)]
    finally:
        engine.dispose()
