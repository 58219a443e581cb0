"""Short write transactions on a SQLite file without a `Connection` around them: the engine's
hot path (a worker's claim, a partner answer's settle) writes a few compile-once statements
(`core.persistence.uow.run`) per transaction, and SQLAlchemy's `Connection` — the pool's
checkout and checkin with their events and the rollback on return, the `begin` and `commit`
events, its proxies — cost each of those transactions about as much CPU as its statements
(150–200 µs against 35–40 µs for the same transaction on the bare driver, measured on this
machine).

`write_transaction(engine)` is `engine.begin()` for such a transaction, and `connect(engine)`
is `engine.connect()` for a unit of work without the ORM (`UnitOfWork(orm=False)`). On a
SQLite file they give a `KeptWrite`: a transaction on one of the file's kept connections (the
readers of `core.persistence.fast_reads`, made by the pool and detached from it), that takes
the process's write turn and `BEGIN IMMEDIATE` as the engine's `begin` event does
(`core.persistence.db`), and gives the turn back as its transaction ends. What stays as with a
`Connection`: the write turn, the statements' errors raised as SQLAlchemy's, a lost connection
discarded. What does not: no pool events and no `begin`, `commit` or `rollback` events.

Anywhere else — PostgreSQL; SQLite in memory, whose one connection is the database; an
engine with cursor listeners (a profiler, a benchmark's capture) or with transaction listeners
besides the write turn's own — they are `engine.begin()` and `engine.connect()` themselves, so
every listener sees what it expects."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from core.persistence.compiled import NO_LISTENERS, execute
from core.persistence.db import write_turn
from core.persistence.fast_reads import Readers, close_quietly, take_kept


def kept(engine: Engine) -> bool:
    """Whether `engine`'s write transactions run on its kept connections (`KeptWrite`)."""
    if engine.dialect.name != "sqlite" or not isinstance(engine.pool, QueuePool):
        return False
    dispatch = engine.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        return False
    # the write turn's own begin, commit and rollback listeners (`core.persistence.db`), no other
    return len(dispatch.begin) == len(dispatch.commit) == len(dispatch.rollback) == 1 and write_turn(engine) is not None


def connect(engine: Engine) -> Connection | KeptWrite:
    """`engine.connect()`, or on a SQLite file a `KeptWrite` (not begun)."""
    return KeptWrite(engine) if kept(engine) else engine.connect()


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection | KeptWrite]:
    """`engine.begin()`: one transaction, committed at the end of the block, rolled back if the
    block raises; on a SQLite file on a kept connection (`KeptWrite`)."""
    if not kept(engine):
        with engine.begin() as connection:
            yield connection
        return
    with KeptWrite(engine) as connection:
        connection.begin()
        yield connection
        connection.commit()


class KeptWrite:
    """One connection's write transactions on a SQLite file, outside the engine's pool: the part
    of `Connection` the compile-once statements, `Snapshot` and `UnitOfWork` use (`dialect`,
    `connection` — here the driver's connection —, `in_transaction`, `begin`, `commit`,
    `rollback`, `close`, `invalidate`, `invalidated`, `engine`). The connection is one of the
    file's kept ones (`fast_reads.Readers`), taken at the first `begin` and given back by
    `close`, rolled back; one that was lost, or whose transaction could not be ended, is closed
    instead. Used by one thread at a time, like a `Connection`."""

    _has_events = False  # no listener of its own (`compiled.listeners`)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.connection: Any = None  # the driver's, from the first `begin` on
        self.invalidated = False
        self._turn = write_turn(engine)
        self._kept: Readers | None = None
        self._began = False
        self._broken = False  # a transaction that could not be ended: the connection is not kept

    @property
    def dispatch(self) -> Any:
        return self.engine.dispatch

    def __enter__(self) -> KeptWrite:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def in_transaction(self) -> bool:
        return self._began

    def begin(self) -> None:
        """The write turn, then `BEGIN IMMEDIATE` (the database's write lock), as the engine's
        `begin` event takes them."""
        if self.invalidated:
            raise exc.ResourceClosedError("this connection was discarded after an error")
        if self._began:
            raise exc.InvalidRequestError("a transaction has already begun on this connection")
        if self.connection is None:
            self._kept, self.connection = take_kept(self.engine)
        assert self._turn is not None
        Error = self.dialect.loaded_dbapi.Error
        try:
            self._turn.take(self.connection)
        except Error as error:  # no turn in 30 s: SQLite's "database is locked", as SQLAlchemy's
            raise exc.DBAPIError.instance("BEGIN IMMEDIATE", (), error, Error) from error
        try:
            cursor = self._cursor()
            try:
                execute(self, cursor, "BEGIN IMMEDIATE", (), around=NO_LISTENERS)
            finally:
                if not self.invalidated:
                    cursor.close()
        except BaseException:
            self._turn.give_back(self.connection)
            raise
        self._began = True

    def _cursor(self) -> Any:
        """A cursor of the driver's connection; one closed under us fails as SQLAlchemy's error,
        and is discarded (`invalidate`)."""
        Error = self.dialect.loaded_dbapi.Error
        try:
            return self.connection.cursor()
        except Error as error:
            lost = self.dialect.is_disconnect(error, self.connection, None)
            if lost:
                self.invalidate(error)
            raise exc.DBAPIError.instance(None, None, error, Error, connection_invalidated=lost) from error

    def commit(self) -> None:
        self._end("commit")

    def rollback(self) -> None:
        self._end("rollback")

    def _end(self, how: str) -> None:
        """Commit or roll back, then give the write turn back. A commit that fails is rolled
        back (SQLite may have done so already), the driver's error raised as SQLAlchemy's, and
        the connection not kept."""
        if not self._began or self.invalidated:
            return
        connection = self.connection
        Error = self.dialect.loaded_dbapi.Error
        try:
            getattr(connection, how)()
        except Error as error:
            self._broken = True
            with contextlib.suppress(Error):
                connection.rollback()
            raise exc.DBAPIError.instance(how.upper(), (), error, Error) from error
        finally:
            self._began = False
            assert self._turn is not None
            self._turn.give_back(connection)

    def close(self) -> None:
        """Whatever was not committed rolled back, and the connection given back (or closed)."""
        if self.connection is None:
            return
        try:
            if self._began:
                self.rollback()
        except exc.DBAPIError:
            self._broken = True
        finally:
            connection, self.connection = self.connection, None
            if self.invalidated or self._broken or self._kept is None:
                close_quietly(connection)
            else:
                self._kept.give_back(connection)

    def invalidate(self, error: BaseException | None = None) -> None:
        """The connection is lost (`compiled.execute`): closed, and the write turn given back."""
        if self.invalidated:
            return
        self.invalidated = True
        self._began = False
        connection = self.connection
        if connection is not None:
            assert self._turn is not None
            self._turn.give_back(connection)
            close_quietly(connection)
