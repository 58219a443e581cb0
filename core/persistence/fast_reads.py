"""Reads that only build views, without the ORM and without Core's per-statement machinery: a
Core select is compiled once per dialect (`Read`), and run in one read-only transaction
(`snapshot`) straight on a DBAPI cursor (a pooled connection's, or on a SQLite file a kept
reader's) with positional parameters; its rows come back as tuples (or a `NamedTuple` the
caller names) with the columns' types applied as SQLAlchemy applies them (a `UTCDateTime` is
an aware datetime on SQLite too).

What stays as with any other statement: the engine's `before_cursor_execute` and
`after_cursor_execute` listeners see each statement and its parameters, and a driver error
is raised as SQLAlchemy's (`sqlalchemy.exc.DBAPIError` and its kinds). What does not: no ORM
objects or identity map, no statement echo (`echo=True`) and no `begin` event — a read takes
no write lock on SQLite (a deferred `BEGIN`: one snapshot from its first read on), and
PostgreSQL's driver opens its transaction itself (REPEATABLE READ in a `snapshot`: one snapshot
for all its reads there too). The transaction always rolls back.

A list parameter (`col.in_(ids)`) is one placeholder per item: the statement is compiled once
per length of each list (see `Read`)."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

from sqlalchemy import bindparam, exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.sql.selectable import Select
from sqlmodel.sql.sqltypes import UTCDateTime

from core.persistence.compiled import Plan, Plans, compile_plan, execute, listeners

if TYPE_CHECKING:
    from core.persistence.kept_writes import KeptWrite

R = TypeVar("R", bound=tuple[Any, ...])

Processor = Callable[[Any], Any]


@dataclass
class _ReadPlan:
    """One compiled form of a `Read`: its plan (`core.persistence.compiled`), the selected
    columns' types, and how values come out."""

    plan: Plan
    types: tuple[Any, ...]  # the selected columns' types
    rows: Callable[[Sequence[Any]], list[Any]] | None = None  # the driver's rows as results, made on a first run


class Read(Plans[_ReadPlan], Generic[R]):
    """One select, compiled once per dialect (and per length of each list parameter), then run
    with new parameters by `Snapshot.rows`.

    `build` makes the statement: scalar parameters are `bindparam("name")`; a list parameter
    named in `lists` is passed to `build` by name, as a bind parameter to use as
    `column.in_(it)`, and given to `Snapshot.rows` as a list. `row` makes each row from its
    values (a `NamedTuple` class for rows read by attribute; plain tuples by default).

    Module-level `Read`s are shared by every thread: a plan, once made, is only read (two
    threads making the same one at once make equal ones)."""

    def __init__(
        self,
        build: Callable[..., Select[Any]],
        *,
        lists: Sequence[str] = (),
        row: type[R] | None = None,
    ) -> None:
        super().__init__(lists)
        self._build = build
        self._make = cast(Callable[[Sequence[Any]], R], tuple if row is None else getattr(row, "_make", row))

    def _compile(self, dialect: Dialect, lengths: Mapping[str, int]) -> _ReadPlan:
        statement = self._build(**{name: bindparam(name, expanding=True) for name in lengths})
        plan, _ = compile_plan(statement, dialect, lengths)
        return _ReadPlan(plan, tuple(c.type for c in statement.selected_columns))


def _converter(make: Callable[[Sequence[Any]], Any], processors: Sequence[Processor | None]) -> Any:
    """A function from the driver's rows to results: each row's values unpacked, the columns
    with a processor converted, the row made by `make`. Written out for its columns, as
    `collections.namedtuple` writes its classes, because a page converts every row it reads:
    one call per row instead of a loop over its columns (a fifth less, measured on ten rows)."""
    if not any(processors):
        return lambda rows: [make(row) for row in rows]
    names = [f"c{i}" for i in range(len(processors))]
    values = [f"p{i}(c{i})" if process else f"c{i}" for i, process in enumerate(processors)]
    unpacked = ", ".join(names) + ("," if len(names) == 1 else "")
    source = f"def convert(rows):\n    return [make(({', '.join(values)},)) for {unpacked} in rows]\n"
    scope: dict[str, Any] = {"make": make} | {f"p{i}": process for i, process in enumerate(processors) if process}
    exec(source, scope)  # noqa: S102 - our own column names and indexes, no outside text
    return scope["convert"]


def _utc_from_text(value: str | None) -> dt.datetime | None:
    """A `UTCDateTime` as SQLite keeps it (ISO text, UTC, no offset) as an aware datetime: what
    SQLAlchemy's text-to-datetime and `UTCDateTime`'s result processors make, in one call."""
    if value is None:
        return None
    try:  # stored without an offset, as SQLAlchemy writes it: UTC said in the text (five times
        moment = _FROM_ISO(value + "+00:00")  # faster than `replace(tzinfo=...)` afterwards)
    except ValueError:  # an offset of its own
        moment = _FROM_ISO(value)
    if moment.tzinfo is None:  # a day alone ("2026-06-01" + an offset parses as naive midnight)
        return moment.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo is dt.UTC else moment.astimezone(dt.UTC)


_FROM_ISO = dt.datetime.fromisoformat
REPEATABLE_READ: Final = "REPEATABLE READ"


class Snapshot:
    """One read-only transaction on one connection (`snapshot`): here a `Connection`'s; a
    pooled DBAPI connection's, or a SQLite reader's, in the classes below."""

    def __init__(self, connection: Connection | KeptWrite) -> None:
        self._connection = connection
        self._dialect = connection.dialect
        self._dbapi = connection.connection
        self._cursor = self._dbapi.cursor()
        self._around = listeners(connection)  # looked up once for the transaction's reads

    def rows(self, read: Read[R], **params: Any) -> list[R]:
        """Every row of `read` with these parameters (lists for its list parameters)."""
        plan = read.plan(self._dialect, params)
        raw = self._execute(plan.plan.sql, plan.plan.values(params))
        convert = plan.rows
        if convert is None:
            convert = plan.rows = _converter(read._make, self._processors(plan))
        return cast(list[R], convert(raw))

    def _processors(self, plan: _ReadPlan) -> list[Processor | None]:
        """Per selected column, what makes its value from the driver's (None: the value as it is)."""
        description = self._cursor.description or ()
        found: list[Processor | None] = []
        for type_, column in zip(plan.types, description, strict=True):
            if isinstance(type_, UTCDateTime) and self._dialect.name == "sqlite":
                found.append(_utc_from_text)  # what its two processors make, in one step
                continue
            found.append(type_.dialect_impl(self._dialect).result_processor(self._dialect, column[1]))
        return found

    def _execute(self, sql: str, values: tuple[Any, ...]) -> Sequence[Any]:
        return execute(self._connection, self._cursor, sql, values, around=self._around)

    def _begin(self) -> None:
        if self._dialect.name == "sqlite":  # the driver leaves transactions to us (db.py)
            self._execute("BEGIN", ())

    def _end(self) -> None:
        if not self._connection.invalidated:
            self._cursor.close()
            self._dbapi.rollback()


def snapshot(engine: Engine) -> contextlib.AbstractContextManager[Snapshot]:
    """One read-only transaction: every `Snapshot.rows` in the block reads the same state of
    the database; it rolls back at the end.

    It reads straight on a DBAPI connection, without a `Connection` around it: a page's whole
    read is a few statements of tens of microseconds, and the `Connection` and its event
    lookups cost as much as one of them. On a SQLite file the connection is one of the engine's
    readers (`Readers`): the pool's checkout and checkin, with their events and the rollback
    on return, cost a page read a sixth of its time, and a reader needs none of it. Elsewhere
    (PostgreSQL; SQLite in memory, whose one connection is the database) it is the pool's, and
    its checkout and checkin events fire as for any other.
    With cursor listeners on the engine (a profiler, a benchmark's capture) it reads through a
    `Connection`, as they expect one.

    On PostgreSQL the transaction is REPEATABLE READ (its default, READ COMMITTED, gives each
    statement a snapshot of its own); SQLite's deferred `BEGIN` holds one from the first read."""
    dispatch = engine.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        return _connected(engine)
    if engine.dialect.name == "sqlite" and isinstance(engine.pool, QueuePool):
        return _ReaderSnapshot(engine)
    return _PooledSnapshot(engine)


@contextlib.contextmanager
def _connected(engine: Engine) -> Iterator[Snapshot]:
    """A snapshot through a `Connection` (`snapshot`, with cursor listeners on the engine)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":  # set back as the connection goes back to the pool
            connection = connection.execution_options(isolation_level=REPEATABLE_READ)
        reader = Snapshot(connection)
        try:
            reader._begin()
            yield reader
        finally:
            reader._end()


def _checkout(engine: Engine) -> Any:
    """A pooled DBAPI connection; a driver's error in making one raised as SQLAlchemy's, as a
    `Connection` raises it."""
    dialect = engine.dialect
    try:
        return engine.raw_connection()
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, None, None)
        raise exc.DBAPIError.instance(
            None, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from error


class _PooledSnapshot(Snapshot):
    """A `Snapshot` on a pooled DBAPI connection of `engine` (`snapshot`), itself the context
    manager (no generator and no ExitStack: a page read pays for every step here): every driver
    error is raised as SQLAlchemy's, and a lost server connection is discarded with the rest of
    the pool, as `core.persistence.compiled.execute` does. The connection goes back with its
    transaction rolled back and, on PostgreSQL, its isolation level as it was."""

    def __init__(self, engine: Engine) -> None:  # no `Connection`: not `Snapshot.__init__`
        self._engine = engine
        self._dialect = engine.dialect
        self._dbapi: Any = None
        self._cursor: Any = None
        self._isolated = False  # REPEATABLE READ set, to be set back
        self._lost = False

    def __enter__(self) -> Snapshot:
        self._dbapi = self._take()
        try:
            self._begin()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        ended = False
        try:
            self._end()
            ended = True
        finally:
            self._give_back(ended)

    def _take(self) -> Any:
        return _checkout(self._engine)

    def _give_back(self, ended: bool) -> None:
        """The connection back where it came from (`ended`: its transaction rolled back)."""
        self._dbapi.close()  # back to the pool, whose reset rolls back whatever `_end` could not

    def _discard(self, error: Any) -> None:
        self._dbapi.invalidate(error)
        self._engine.dispose(close=False)

    def _execute(self, sql: str, values: tuple[Any, ...]) -> Sequence[Any]:
        cursor = self._cursor
        try:
            cursor.execute(sql, values)
            return cursor.fetchall() if cursor.description is not None else ()
        except self._dialect.loaded_dbapi.Error as error:
            raise self._failed(error, sql, values) from error

    def _failed(self, error: Any, sql: str | None, values: Any) -> exc.StatementError:
        """`error` of the driver as SQLAlchemy's; a lost connection discarded (`_discard`)."""
        self._lost = self._dialect.is_disconnect(error, self._dbapi, self._cursor)
        if self._lost:
            self._discard(error)
        return exc.DBAPIError.instance(
            sql, values, error, self._dialect.loaded_dbapi.Error, connection_invalidated=self._lost
        )

    def _begin(self) -> None:
        try:
            self._cursor = self._dbapi.cursor()
            if self._dialect.name == "postgresql":  # the driver's own BEGIN says so: no statement more
                self._dialect.set_isolation_level(self._dbapi.dbapi_connection, REPEATABLE_READ)
                self._isolated = True
        except self._dialect.loaded_dbapi.Error as error:
            raise self._failed(error, None, None) from error
        super()._begin()

    def _end(self) -> None:
        if self._lost:
            return
        try:
            try:
                if self._cursor is not None:
                    self._cursor.close()
                self._dbapi.rollback()
            finally:
                if self._isolated:
                    self._dialect.reset_isolation_level(self._dbapi.dbapi_connection)
        except self._dialect.loaded_dbapi.Error as error:
            raise self._failed(error, None, None) from error


class Readers:
    """A SQLite file's connections kept for snapshots (and the one writer the engine's short
    write transactions run on in turn, `core.persistence.kept_writes`), outside the engine's
    pool: each made by
    the pool (its connect event sets it up as every other: foreign keys, WAL, busy timeout, no
    transaction of the driver's own) and then detached from it. Making one takes a place of the
    pool for that moment (waiting for one as any checkout does); once made, a reader takes none,
    and gives the pool no checkout, checkin or reset to run. At most `KEEP` idle ones are kept,
    the oldest closed beyond that. A reader holds no transaction between snapshots (each rolls
    back or commits), so it pins no old state of the WAL; what the pool does to its
    own connections (recycling them, replacing them all after a lost one) is not done to them.

    Kept per pool: when the engine is disposed, its old pool goes and the idle readers are
    closed with it (the last connection to close folds the WAL into the database file, as the
    pool's do), a reader still in a snapshot is closed as it comes back, and the new pool makes
    new ones."""

    KEEP: Final = 8

    def __init__(self) -> None:
        self.idle: collections.deque[Any] = collections.deque()
        self.closed = False
        # the one connection the process's write transactions run on, in turn (`kept_writes`)
        self.writer: Any = None
        self._writer_busy = False
        self._writer_lock = threading.Lock()

    @staticmethod
    def of(engine: Engine) -> Readers:
        pool = engine.pool
        readers = _READERS.get(pool)
        if readers is None:
            with _READERS_MADE:
                readers = _READERS.get(pool)
                if readers is None:
                    readers = _READERS[pool] = Readers()
                    weakref.finalize(pool, readers.close)  # at once as a disposed pool goes
        return readers

    def give_back(self, connection: Any) -> None:
        """`connection` idle again (rolled back). (Appended first, then trimmed: two threads at
        once never keep more than `KEEP`.)"""
        self.idle.append(connection)
        self._trim()

    def close(self) -> None:
        self.closed = True
        self._trim()
        with self._writer_lock:
            writer = None if self._writer_busy else self.writer
            if writer is not None:
                self.writer = None
        if writer is not None:
            _close_quietly(writer)

    def take_writer(self, engine: Engine) -> Any:
        """The writer (made when there is none), for the holder of the write turn."""
        with self._writer_lock:
            self._writer_busy = True
            writer = self.writer
        if writer is None:
            try:
                writer = _detached(engine)
            except BaseException:
                with self._writer_lock:
                    self._writer_busy = False
                raise
            with self._writer_lock:
                self.writer = writer
        return writer

    def writer_back(self, connection: Any, *, broken: bool) -> None:
        """The writer's transaction ended: kept for the next, or closed when `broken` (lost, or
        still in a transaction) or these connections are closed."""
        with self._writer_lock:
            self._writer_busy = False
            keep = not broken and not self.closed and connection is self.writer
            if not keep and connection is self.writer:
                self.writer = None
        if not keep:
            _close_quietly(connection)

    def _trim(self) -> None:
        """The oldest idle ones beyond `KEEP` closed; every one once these readers are closed."""
        idle = self.idle
        while len(idle) > (0 if self.closed else self.KEEP):
            try:
                extra = idle.popleft()
            except IndexError:  # another thread took or closed it
                return
            _close_quietly(extra)


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):  # closing: nothing is left to tell anyone
        connection.close()


_READERS: weakref.WeakKeyDictionary[Pool, Readers] = weakref.WeakKeyDictionary()
_READERS_MADE = threading.Lock()


def kept_writer(engine: Engine) -> tuple[Readers, Any]:
    """A SQLite file's kept writer (`Readers.take_writer`) and the set it belongs to: for the
    holder of the process's write turn (`core.persistence.kept_writes`)."""
    readers = Readers.of(engine)
    return readers, readers.take_writer(engine)


def _take_reader(engine: Engine) -> tuple[Readers, Any]:
    """An idle kept connection of a SQLite file's engine, or a new one (`Readers`), and the set
    it goes back to (a snapshot's)."""
    readers = Readers.of(engine)
    try:
        return readers, readers.idle.pop()
    except IndexError:
        return readers, _detached(engine)


def _detached(engine: Engine) -> Any:
    """A new DBAPI connection made by the pool (set up by its connect event) and detached from
    it: the pool's place is free again, and the connection is ours to close."""
    pooled = _checkout(engine)
    pooled.detach()
    return pooled.dbapi_connection


class _ReaderSnapshot(_PooledSnapshot):
    """A `_PooledSnapshot` on one of a SQLite file's readers (`Readers`) instead of a pooled
    connection: taken from the idle ones (a new one made when none is idle) and given back to
    them; one that failed as lost, or whose transaction could not be rolled back, is closed
    instead."""

    def _take(self) -> Any:
        self._readers, connection = _take_reader(self._engine)
        return connection

    def _give_back(self, ended: bool) -> None:
        if self._lost:
            return  # closed already (`_discard`)
        if ended:
            self._readers.give_back(self._dbapi)
        else:  # one whose rollback failed is not kept
            _close_quietly(self._dbapi)

    def _discard(self, error: Any) -> None:
        _close_quietly(self._dbapi)
