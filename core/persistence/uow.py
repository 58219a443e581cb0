"""A unit of work: one transaction that rolls back unless told to commit.

Rows that are only ever added (transitions, ledger postings, outbox messages, audit records; a
submission's new recoveries) go in by `write(table, row)`: a plain INSERT at once, or, in a unit
of work opened with `batched=True`, kept and sent at commit as one multi-row INSERT per table
(after the ORM's own changes, so their foreign keys hold). A batched unit of work must not read
back, before it commits, rows it wrote this way — the engine's hot path (`Transitions.settle`) is
written so.

A unit of work opened with `orm=False` has no ORM session: its transaction is a plain Core
connection (`connection`), cheaper to open and commit, for work that writes only by `write` and
`run` and reads only by `rows` (the engine's hot path, again).

The statements the engine runs for every partner answer (its updates and these INSERTs) are
compiled once (`Prepared`) and run straight on the transaction's DBAPI cursor (`run`,
`run_many`), as `core.persistence.fast_reads` runs a select: Core's per-statement work (a cache
key, a compiled-cache look-up, an execution context, a result object) is spent once per statement
rather than once per run. What stays as with any other statement: the engine's
`before_cursor_execute` and `after_cursor_execute` listeners see each statement and its
parameters, the values go in converted by their columns' types as SQLAlchemy converts them, and a
driver error is raised as SQLAlchemy's (`sqlalchemy.exc.DBAPIError` and its kinds).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Table, bindparam, func, insert, select
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.base import Executable
from sqlmodel import Session

from core.persistence.compiled import Plan, Plans, compile_plan, cursor_of, execute, listeners, pipelined
from core.persistence.fast_reads import Read, Snapshot
from core.persistence.kept_writes import KeptWrite, connect

R = TypeVar("R", bound=tuple[Any, ...])


class UnitOfWork:
    def __init__(self, engine: Engine, *, batched: bool = False, orm: bool = True) -> None:
        self._engine = engine
        self._batched = batched
        self._orm = orm
        self._session: Session | None = None
        self._connection: Connection | KeptWrite | None = None  # the transaction of a unit of work without ORM
        self._reader: tuple[Any, Snapshot] | None = None  # `rows`' reader, by the driver connection it reads on
        self.memo: dict[str, object] = {}
        self._rows: dict[Table, list[dict[str, Any]]] = {}
        self._later: list[tuple[Prepared, dict[str, Any]]] = []  # statements kept for commit

    def __enter__(self) -> UnitOfWork:
        if self._orm:
            self._session = Session(self._engine, expire_on_commit=False)
        self.memo = {}  # what this transaction already read under its locks
        self._rows = {}
        self._later = []
        return self

    @property
    def session(self) -> Session:
        """The ORM session of this transaction (not in a unit of work opened with `orm=False`)."""
        if self._session is None:
            raise RuntimeError("this unit of work was opened without the ORM (orm=False): it has no session")
        return self._session

    @property
    def connection(self) -> Connection | KeptWrite:
        """This transaction's connection (begun): the session's, or without the ORM its own (after
        a commit, as a session does, it begins the next transaction)."""
        if self._session is not None:
            return self._session.connection()
        if self._connection is None:
            self._connection = connect(self._engine)  # on a SQLite file, outside the pool (`kept_writes`)
        if not self._connection.in_transaction():
            self._connection.begin()
        return self._connection

    @property
    def batched(self) -> bool:
        return self._batched

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def write(self, table: Table, row: dict[str, Any]) -> None:
        """Add one row to `table` (every column given): now, or at commit when batched. A batched
        row is kept as given, not copied, until commit: its writer may still change its values
        (the submission writes its recoveries first, for the foreign keys of the rows that follow,
        and moves them afterwards)."""
        if self._batched:
            self._rows.setdefault(table, []).append(row)
            return
        self._flush()  # the rows it refers to first
        run_many(self.connection, inserting(table, row), [row])

    def _flush(self) -> None:
        if self._session is not None and (self._session.new or self._session.dirty):
            self._session.flush()

    def at_commit(self, prepared: Prepared, **params: Any) -> None:
        """Run `prepared` (an UPDATE without RETURNING) at commit, after the batched rows, in
        the same trip to the database (a batched unit of work; `write`'s rule holds: nothing
        reads its effect back before the commit)."""
        if not self._batched:
            raise RuntimeError("at_commit is for a batched unit of work")
        self._later.append((prepared, params))

    def _write_rows(self) -> None:
        if not self._rows and not self._later:
            return
        if self._session is not None:
            self._session.flush()  # the rows they refer to first
        connection = self.connection
        with pipelined(connection):  # one round trip on PostgreSQL for all of them
            for table, rows in self._rows.items():  # in the order first written: parents before children
                run_many(connection, inserting(table, rows[0]), rows)
            for prepared, params in self._later:
                run(connection, prepared, params)
        self._rows, self._later = {}, []

    def rows(self, read: Read[R], **params: Any) -> list[R]:
        """The rows of a compile-once read (`core.persistence.fast_reads.Read`) in this
        transaction, on its own connection: what it locked and wrote is seen. Rows the session
        still holds unflushed (ORM objects) and rows batched for commit are not."""
        connection = self.connection
        if self._reader is None or self._reader[0] is not connection.connection:
            self._reader = (connection.connection, Snapshot(connection))  # one cursor for the transaction's reads
        return self._reader[1].rows(read, **params)

    def run(self, prepared: Prepared, **params: Any) -> list[tuple[Any, ...]]:
        """A compile-once statement (`Prepared`) in this transaction; the rows it returns."""
        return run(self.connection, prepared, params)

    def lock(self, name: str) -> None:
        """Serialise work on one key (a number, an account, a code) across threads, processes and
        replicas until this transaction ends: a PostgreSQL advisory lock. SQLite writers already
        hold the whole database from their first statement (BEGIN IMMEDIATE)."""
        if self._engine.dialect.name == "postgresql":
            run(self.connection, _LOCK, {"key": _advisory_key(name)})

    def try_lock(self, name: str) -> bool:
        """Like `lock`, but False at once when another transaction holds it (PostgreSQL). On
        SQLite this transaction already holds the whole database, so it is always True."""
        if self._engine.dialect.name == "postgresql":
            return bool(run(self.connection, _TRY_LOCK, {"key": _advisory_key(name)})[0][0])
        return True

    def commit(self) -> None:
        self._write_rows()
        if self._session is not None:
            self._session.commit()
        elif self._connection is not None:
            self._connection.commit()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # Closing rolls back whatever was not committed, and leaves rows already read usable
        # (an explicit rollback would expire them).
        if self._session is not None:
            self._session.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._reader = None


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# --- compile-once statements --------------------------------------------------------------------


class Prepared(Plans[Plan]):
    """An INSERT, UPDATE or DELETE (with RETURNING or not), or a SELECT of what a function
    does (a lock), compiled once per dialect and per
    length of each list parameter, then run by `run` or `run_many` with new parameters.

    Scalar parameters are `bindparam("name")`; a list parameter (`col.in_(bindparam("ids",
    expanding=True))`) is named in `lists` and given as a list. An INSERT names the columns it
    is given (`columns`): every value is the caller's, none comes from a column default. Columns
    a RETURNING clause gives back come as the driver reads them (integers and text need nothing
    more). Module-level `Prepared`s are shared by every thread: a plan, once made, is only read."""

    def __init__(self, statement: Executable, *, lists: Sequence[str] = (), columns: Sequence[str] = ()) -> None:
        super().__init__(lists)
        self._statement = statement
        self._columns = list(columns) or None

    def _compile(self, dialect: Dialect, lengths: Mapping[str, int]) -> Plan:
        plan, compiled = compile_plan(self._statement, dialect, lengths, column_keys=self._columns)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise ValueError("a prepared statement takes every value from its caller, none from a column default")
        return plan


_LOCK = Prepared(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger))))
_TRY_LOCK = Prepared(select(func.pg_try_advisory_xact_lock(bindparam("key", type_=BigInteger))))

_INSERTS: dict[tuple[Table, tuple[str, ...]], Prepared] = {}
_INSERTS_LOCK = threading.Lock()


def inserting(table: Table, row: Mapping[str, Any]) -> Prepared:
    """The INSERT of rows of `table` with the columns of `row`, compiled once (without RETURNING,
    as SQLAlchemy sends an INSERT of many rows)."""
    key = (table, tuple(row))
    found = _INSERTS.get(key)
    if found is None:
        with _INSERTS_LOCK:
            found = _INSERTS.setdefault(key, Prepared(insert(table).inline(), columns=key[1]))
    return found


def run(connection: Connection | KeptWrite, prepared: Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """`prepared` once on `connection`'s transaction, with `params`; the rows it returns."""
    plan = prepared.plan(connection.dialect, params)
    return _execute(connection, plan.sql, plan.values(params), many=False)


def run_many(connection: Connection | KeptWrite, prepared: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
    """`prepared` for each of `rows` on `connection`'s transaction (the driver's executemany)."""
    if not rows:
        return
    plan = prepared.plan(connection.dialect, rows[0])
    if len(rows) == 1:
        _execute(connection, plan.sql, plan.values(rows[0]), many=False)
        return
    _execute(connection, plan.sql, [plan.values(row) for row in rows], many=True)


def _execute(connection: Connection | KeptWrite, sql: str, values: Any, *, many: bool) -> list[tuple[Any, ...]]:
    """One statement on a cursor of its own on the connection's transaction (`compiled.execute`)."""
    if not connection.in_transaction():
        raise RuntimeError("a prepared statement runs in a transaction that has begun")
    cursor = cursor_of(connection)
    try:
        return execute(connection, cursor, sql, values, many=many, around=listeners(connection))
    finally:
        if not connection.invalidated:
            cursor.close()
