"""On a SQLite file, the engine's short write transactions (`core.persistence.kept_writes`: a
worker's claim, a partner answer's settle, any `UnitOfWork(orm=False)`) run on a kept
connection, outside the pool, and take the same write turn as `engine.begin()`: they commit,
roll back, fail and give the turn back as a `Connection`'s transaction does. Anywhere else
(PostgreSQL, SQLite in memory, an engine with listeners) they are `engine.begin()` itself."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from core.persistence import migrate
from core.persistence.db import engine_for
from core.persistence.fast_reads import Read, Readers, snapshot
from core.persistence.kept_writes import KeptWrite, write_transaction
from core.persistence.tables import User
from core.persistence.uow import UnitOfWork, inserting, run

USERS = User.__table__  # type: ignore[attr-defined]
_COUNT: Read[tuple[int]] = Read(lambda: select(func.count()).select_from(USERS))


def _row(uid: str) -> dict[str, object]:
    return {"id": uid, "role": "consumer", "created_at": dt.datetime.now(dt.UTC)}


def _insert(connection, uid: str) -> None:
    row = _row(uid)
    run(connection, inserting(USERS, row), row)


def _count(engine) -> int:
    with snapshot(engine) as reader:
        return reader.rows(_COUNT)[0][0]


@pytest.fixture
def file_engine(tmp_path):
    """A SQLite file whose pool has one place and waits a second at most for it."""
    engine = engine_for(f"sqlite:///{tmp_path / 'writes.sqlite3'}", pool_size=1, max_overflow=0, pool_timeout=1)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_a_write_on_a_sqlite_file_commits_on_a_kept_connection_outside_the_pool(file_engine):
    with write_transaction(file_engine) as connection:
        assert isinstance(connection, KeptWrite)
        _insert(connection, "u0")
        kept = connection.connection
    assert _count(file_engine) == 1
    assert kept in Readers.of(file_engine).idle  # given back, for the next read or write
    # the pool's only place taken: a kept write needs none
    with file_engine.connect(), write_transaction(file_engine) as connection:
        _insert(connection, "u1")
    assert _count(file_engine) == 2


def test_a_block_that_raises_rolls_back_and_gives_the_turn_back(file_engine):
    with pytest.raises(RuntimeError), write_transaction(file_engine) as connection:
        _insert(connection, "u0")
        raise RuntimeError("the caller's own failure")
    assert _count(file_engine) == 0
    finished = threading.Event()

    def other_writer() -> None:  # would wait 30 s for a turn never given back
        with file_engine.begin() as other:
            other.execute(text("UPDATE users SET role = role"))
        finished.set()

    threading.Thread(target=other_writer, daemon=True).start()
    assert finished.wait(5)


def test_kept_writes_and_connection_writes_take_one_write_turn_in_turn(file_engine):
    """A kept write holds the same turn as `engine.begin()`: the other writer waits for its
    commit rather than failing on SQLite's lock, and sees what it wrote."""
    order: list[str] = []
    seen: list[int] = []
    inside = threading.Event()

    def other_writer() -> None:
        inside.wait(5)
        with file_engine.begin() as other:
            order.append("other began")
            seen.append(other.execute(text("SELECT count(*) FROM users")).scalar_one())

    thread = threading.Thread(target=other_writer)
    thread.start()
    with write_transaction(file_engine) as connection:
        _insert(connection, "u0")
        inside.set()
        time.sleep(0.3)  # the other writer is waiting for the turn now
        order.append("kept committing")
    thread.join(10)
    assert order == ["kept committing", "other began"]
    assert seen == [1]


def test_many_threads_writing_at_once_each_commit_once(file_engine):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with write_transaction(file_engine) as connection:
                    _insert(connection, f"t{n}-{i}")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _count(file_engine) == 120
    assert len(Readers.of(file_engine).idle) <= Readers.KEEP


def test_a_statement_that_fails_is_sqlalchemys_error_and_changes_nothing(file_engine):
    with pytest.raises(IntegrityError), write_transaction(file_engine) as connection:
        _insert(connection, "u0")
        _insert(connection, "u0")  # the same key twice
    assert _count(file_engine) == 0
    with write_transaction(file_engine) as connection:  # the turn and a connection are free again
        _insert(connection, "u0")
    assert _count(file_engine) == 1


def test_a_commit_that_fails_is_rolled_back_and_its_connection_is_not_kept(tmp_path):
    """A deferred foreign key fails at COMMIT: the error is SQLAlchemy's, nothing is stored,
    the turn is given back."""
    engine = engine_for(f"sqlite:///{tmp_path / 'deferred.sqlite3'}")
    try:
        with engine.begin() as setup:
            setup.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            setup.execute(
                text(
                    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                    "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
                )
            )
        with pytest.raises(IntegrityError), write_transaction(engine) as connection:
            cursor = connection.connection.cursor()
            cursor.execute("INSERT INTO child (id, parent_id) VALUES (1, 99)")  # no parent 99
            driver = connection.connection
        assert driver not in Readers.of(engine).idle  # closed, not kept
        with pytest.raises(sqlite3.ProgrammingError):
            driver.cursor()
        with engine.begin() as after:
            assert after.execute(text("SELECT count(*) FROM child")).scalar_one() == 0
    finally:
        engine.dispose()


def test_a_kept_connection_closed_under_the_portal_fails_one_write_and_is_replaced(file_engine):
    with write_transaction(file_engine) as connection:
        _insert(connection, "u0")
    (lost,) = Readers.of(file_engine).idle
    lost.close()
    with pytest.raises(DBAPIError), write_transaction(file_engine) as connection:
        _insert(connection, "u1")
    assert lost not in Readers.of(file_engine).idle
    with write_transaction(file_engine) as connection:  # the turn was given back
        _insert(connection, "u1")
    assert _count(file_engine) == 2


def test_a_unit_of_work_without_the_orm_writes_on_a_kept_connection_and_begins_again(file_engine):
    with UnitOfWork(file_engine, orm=False) as uow:
        assert isinstance(uow.connection, KeptWrite)
        _insert(uow.connection, "u0")
        uow.commit()
        _insert(uow.connection, "u1")  # the next transaction, never committed
    assert _count(file_engine) == 1
    assert sqlite3.connect(file_engine.url.database).execute("SELECT id FROM users").fetchall() == [("u0",)]


def test_with_listeners_on_the_engine_writes_go_through_a_connection_they_see(file_engine):
    seen: list[str] = []
    commits: list[int] = []

    def statement(conn, cursor, sql, *_):
        seen.append(sql.split()[0])

    event.listen(file_engine, "before_cursor_execute", statement)
    try:
        with write_transaction(file_engine) as connection:
            assert isinstance(connection, Connection)
            _insert(connection, "u0")
    finally:
        event.remove(file_engine, "before_cursor_execute", statement)
    assert seen[:2] == ["BEGIN", "INSERT"]
    event.listen(file_engine, "commit", lambda conn: commits.append(1))
    with write_transaction(file_engine) as connection:
        assert isinstance(connection, Connection)  # a commit listener besides the write turn's
        _insert(connection, "u1")
    assert commits == [1]


def test_in_memory_sqlite_and_postgresql_write_through_a_connection(engine):
    """`engine` is the suite's fixture: a SQLite file, then the local PostgreSQL. In memory
    (the simulation's rig) and on PostgreSQL a write transaction is `engine.begin()`."""
    memory = engine_for("sqlite://", poolclass=StaticPool)
    try:
        migrate.upgrade(memory)
        with write_transaction(memory) as connection:
            assert isinstance(connection, Connection)
            _insert(connection, "u0")
        assert _count(memory) == 1
    finally:
        memory.dispose()
    with write_transaction(engine) as connection:
        assert isinstance(connection, KeptWrite if engine.dialect.name == "sqlite" else Connection)
        _insert(connection, "u0")
    assert _count(engine) == 1
