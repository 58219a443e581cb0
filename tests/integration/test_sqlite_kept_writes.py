"""On a SQLite file, the engine's short write transactions (`core.persistence.kept_writes`: a
worker's claim, a partner answer's settle, any `UnitOfWork(orm=False)`) run on one kept
writer, outside the pool, and take the same write turn as `engine.begin()`: they commit,
roll back, fail and give the turn back as a `Connection`'s transaction does. Anywhere else
(PostgreSQL, SQLite in memory, an engine with listeners) they are `engine.begin()` itself."""

from __future__ import annotations

import datetime as dt
import gc
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, PendingRollbackError
from sqlalchemy.pool import StaticPool

from core.persistence import migrate
from core.persistence.db import engine_for
from core.persistence.fast_reads import Read, Readers, snapshot
from core.persistence.kept_writes import KeptWrite, write_transaction
from core.persistence.tables import User
from core.persistence.uow import UnitOfWork, inserting, run
from tests.support.db import dispose_folds_the_log

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


def _other_writer_finishes(engine) -> bool:
    """Whether a `Connection` write in another thread gets the write turn within 5 s."""
    finished = threading.Event()

    def other_writer() -> None:
        with engine.begin() as other:
            other.execute(text("UPDATE users SET role = role"))
        finished.set()

    threading.Thread(target=other_writer, daemon=True).start()
    return finished.wait(5)


def test_a_write_on_a_sqlite_file_commits_on_a_kept_connection_outside_the_pool(file_engine):
    with write_transaction(file_engine) as connection:
        assert isinstance(connection, KeptWrite)
        _insert(connection, "u0")
        writer = connection.connection
    assert _count(file_engine) == 1
    assert Readers.of(file_engine).writer is writer  # kept for the next write, its cache warm
    assert writer not in Readers.of(file_engine).idle  # not a reader's
    # the pool's only place taken: a kept write needs none
    with file_engine.connect(), write_transaction(file_engine) as connection:
        _insert(connection, "u1")
        assert connection.connection is writer
    assert _count(file_engine) == 2


def test_a_block_that_raises_rolls_back_and_gives_the_turn_back(file_engine):
    with pytest.raises(RuntimeError), write_transaction(file_engine) as connection:
        _insert(connection, "u0")
        raise RuntimeError("the caller's own failure")
    assert _count(file_engine) == 0
    assert _other_writer_finishes(file_engine)  # it would wait 30 s for a turn never given back


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
        assert Readers.of(engine).writer is not driver  # closed, not kept
        with pytest.raises(sqlite3.ProgrammingError):
            driver.cursor()
        with engine.begin() as after:
            assert after.execute(text("SELECT count(*) FROM child")).scalar_one() == 0
    finally:
        engine.dispose()


def test_a_kept_connection_closed_under_the_portal_fails_one_write_and_is_replaced(file_engine):
    with write_transaction(file_engine) as connection:
        _insert(connection, "u0")
    lost = Readers.of(file_engine).writer
    lost.close()
    with pytest.raises(DBAPIError), write_transaction(file_engine) as connection:
        _insert(connection, "u1")
    assert Readers.of(file_engine).writer is not lost
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


def test_a_commit_after_the_connection_was_lost_raises_and_stores_nothing(file_engine):
    """As a `Connection` does (PendingRollbackError): a caller that caught the lost
    connection's error must not be told its transaction committed."""
    with pytest.raises(PendingRollbackError), write_transaction(file_engine) as connection:
        _insert(connection, "u0")
        connection.connection.close()  # lost under it
        with pytest.raises(DBAPIError):
            _insert(connection, "u1")
    assert _count(file_engine) == 0


def test_a_write_dropped_in_its_transaction_gives_the_turn_back_when_collected(file_engine):
    """A bug that never closes its unit of work: as with a pooled connection, the transaction
    is rolled back and the turn given back once the object is gone, not held for good."""
    dropped = KeptWrite(file_engine)
    dropped.begin()
    _insert(dropped, "u0")
    del dropped
    gc.collect()
    assert _other_writer_finishes(file_engine)
    assert _count(file_engine) == 0


class _Interrupted(sqlite3.Connection):
    """A driver connection whose next commit is interrupted (Ctrl-C at the worst moment)."""

    interrupt = False

    def commit(self) -> None:
        if type(self).interrupt:
            type(self).interrupt = False
            raise KeyboardInterrupt
        super().commit()


def test_a_writer_left_in_its_transaction_by_an_interrupt_is_closed_not_kept(tmp_path):
    path = tmp_path / "interrupted.sqlite3"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, factory=_Interrupted, check_same_thread=False, timeout=30)

    engine = engine_for(f"sqlite:///{path}", creator=connect)
    try:
        migrate.upgrade(engine)
        with pytest.raises(KeyboardInterrupt), write_transaction(engine) as connection:
            _insert(connection, "u0")
            writer = connection.connection
            _Interrupted.interrupt = True
        assert Readers.of(engine).writer is not writer
        with pytest.raises(sqlite3.ProgrammingError):
            writer.cursor()  # closed, which rolled its transaction back
        assert _other_writer_finishes(engine)
        assert _count(engine) == 0
    finally:
        _Interrupted.interrupt = False
        engine.dispose()


def test_disposing_the_engine_closes_its_writer_and_folds_the_log_into_the_file(file_engine):
    with write_transaction(file_engine) as connection:
        _insert(connection, "u0")
    writer = Readers.of(file_engine).writer
    dispose_folds_the_log(file_engine)
    with pytest.raises(sqlite3.ProgrammingError):
        writer.cursor()
    with write_transaction(file_engine) as connection:  # a new writer, of the new pool
        _insert(connection, "u1")
    assert _count(file_engine) == 2


def test_a_write_object_kept_after_its_transaction_cannot_touch_the_writer_another_holds(file_engine):
    """The writer is the current turn-holder's: an earlier `KeptWrite` told afterwards that its
    connection was lost changes nothing for the one writing now."""
    first = KeptWrite(file_engine)  # a unit of work's: it commits, and is not closed yet
    first.begin()
    _insert(first, "u0")
    first.commit()
    with write_transaction(file_engine) as second:
        first.invalidate()  # stale, while the second holds the writer
        _insert(second, "u1")
    first.close()
    assert _count(file_engine) == 2
