"""Short write transactions on a SQLite file without a `Connection` around them: the engine's
hot path (a worker's claim, a partner answer's settle) writes a few compile-once statements
(`core.persistence.uow.run`) per transaction, and SQLAlchemy's `Connection` — the pool's
checkout and checkin with their events and the rollback on return, the `begin` and `commit`
events, its proxies — cost each of those transactions about as much CPU as its statements
(150–200 µs against 35–40 µs for the same transaction on the bare driver, measured on this
machine).

`write_transaction(engine)` is `engine.begin()` for such a transaction, and `connect(engine)`
is `engine.connect()` for a unit of work without the ORM (`UnitOfWork(orm=False)`). On a
SQLite file they give a `KeptWrite`: a transaction on the file's kept writer (a connection
kept beside the readers of `core.persistence.fast_reads`, made by the pool and detached from
it), that takes the process's write turn and `BEGIN IMMEDIATE` as the engine's `begin` event
does (`core.persistence.db`), and gives the turn back as its transaction ends. What stays as
with a `Connection`: the write turn, the statements' errors raised as SQLAlchemy's, a lost
connection discarded, a commit after it refused (`PendingRollbackError`). What does not: no
pool events, no `begin`, `commit` or `rollback` events, no statement echo.

Anywhere else — PostgreSQL; SQLite in memory, whose one connection is the database; an
engine with cursor listeners (a profiler, a benchmark's capture) or with transaction listeners
besides the write turn's own — they are `engine.begin()` and `engine.connect()` themselves, so
every listener sees what it expects."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from core.persistence.compiled import NO_LISTENERS, cursor_of, execute
from core.persistence.db import write_turn
from core.persistence.fast_reads import Readers, kept_writer


def kept(engine: Engine) -> bool:
    """Whether `engine`'s write transactions run on its kept writer (`KeptWrite`)."""
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
    """Write transactions on a SQLite file outside the engine's pool: the part of `Connection`
    the compile-once statements, `Snapshot` and `UnitOfWork` use (`dialect`, `connection` — here
    the driver's connection —, `in_transaction`, `begin`, `commit`, `rollback`, `close`,
    `invalidate`, `invalidated`, `engine`). Used by one thread at a time, like a `Connection`.

    They all run on one connection, the file's kept writer (`fast_reads.Readers.writer`), taken
    with the process's write turn and left with it: writers of one process take turns anyway,
    and on one connection the pages the last transaction read and wrote are still in its cache
    for the next (a connection whose cache another connection's write made stale reads them
    from the file again: about 140 page reads per recovery on the readers' connections, measured).
    A writer that was lost, or whose transaction could not be ended, is closed and the next
    transaction makes a new one. A `KeptWrite` dropped in a transaction without being closed
    (a bug) rolls it back and gives the turn back when it is collected, as a pooled connection
    does."""

    _has_events = False  # no listener of its own (`compiled.listeners`)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.connection: Any = None  # the driver's: the writer, from the first `begin` on
        self.invalidated = False
        self._turn = write_turn(engine)
        self._kept: Readers | None = None
        self._began = False
        self._abandoned: weakref.finalize | None = None

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
        """The write turn, the writer, then `BEGIN IMMEDIATE` (the database's write lock), as the
        engine's `begin` event takes them."""
        if self.invalidated:
            raise exc.ResourceClosedError("this connection was discarded after an error")
        if self._began:
            raise exc.InvalidRequestError("a transaction has already begun on this connection")
        turn = self._turn
        assert turn is not None
        Error = self.dialect.loaded_dbapi.Error
        try:
            turn.take(self)
        except Error as error:  # no turn in 30 s: SQLite's "database is locked", as SQLAlchemy's
            raise exc.DBAPIError.instance("BEGIN IMMEDIATE", (), error, Error) from error
        self._kept = self.connection = None
        try:
            self._kept, self.connection = kept_writer(self.engine)
            cursor = cursor_of(self)  # a writer closed under us: SQLAlchemy's error, discarded
            try:
                execute(self, cursor, "BEGIN IMMEDIATE", (), around=NO_LISTENERS)
            finally:
                if not self.invalidated:
                    cursor.close()
        except BaseException:
            self._release(broken=True)
            raise
        self._began = True
        self._abandoned = weakref.finalize(self, _abandoned, turn, self._kept, self.connection, id(self))

    def commit(self) -> None:
        if self.invalidated:
            raise exc.PendingRollbackError("the connection was lost in this transaction: nothing was committed")
        self._end("commit")

    def rollback(self) -> None:
        self._end("rollback")

    def _end(self, how: str) -> None:
        """Commit or roll back, then give the writer and the write turn back. A commit that
        fails is rolled back (SQLite may have done so already), the driver's error raised as
        SQLAlchemy's, and the writer closed; so is one still in a transaction however it ended."""
        if not self._began or self.invalidated:
            return
        connection = self.connection
        Error = self.dialect.loaded_dbapi.Error
        failed = True
        try:
            getattr(connection, how)()
            failed = False
        except Error as error:
            with contextlib.suppress(Error):
                connection.rollback()
            raise exc.DBAPIError.instance(how.upper(), (), error, Error) from error
        finally:
            self._release(broken=failed or _still_open(connection))

    def _release(self, *, broken: bool) -> None:
        """The writer back (closed if `broken`), then the write turn; this object keeps neither
        (the writer is the next turn-holder's: nothing here may touch it any more)."""
        self._began = False
        if self._abandoned is not None:
            self._abandoned.detach()
            self._abandoned = None
        connection, self.connection = self.connection, None
        if self._kept is not None and connection is not None:
            self._kept.writer_back(connection, broken=broken or self.invalidated)
        assert self._turn is not None
        self._turn.give_back(self)

    def close(self) -> None:
        """Whatever was not committed rolled back (the writer given back)."""
        if self._began:
            with contextlib.suppress(exc.DBAPIError):  # `_end` closed a writer it could not roll back
                self.rollback()

    def invalidate(self, error: BaseException | None = None) -> None:
        """The writer is lost (`compiled.execute`): closed, and the write turn given back."""
        if self.invalidated:
            return
        self.invalidated = True
        if self._began:  # (in `begin`, its own failure releases them)
            self._release(broken=True)


def _still_open(connection: Any) -> bool:
    """Whether `connection` is still in a transaction (or cannot say: closed)."""
    try:
        return bool(connection.in_transaction)
    except Exception:  # a closed connection cannot tell
        return True


def _abandoned(turn: Any, kept: Readers, connection: Any, holder: int) -> None:
    """A `KeptWrite` collected in a transaction: the writer closed (rolling it back), the turn
    given back."""
    kept.writer_back(connection, broken=True)
    turn.give_back_for(holder)
