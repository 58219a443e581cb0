"""Statements compiled once: a Core statement rendered for one dialect (and one length of each
list parameter, rounded up to a power of two) into the SQL its driver takes with positional
placeholders, and where each placeholder's value comes from. `fast_reads.Read` (selects) and
`uow.Prepared` (inserts, updates) are built on it; what runs the SQL lives with each."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import exc
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import BindParameter
from sqlmodel.sql.sqltypes import UTCDateTime

if TYPE_CHECKING:
    from core.persistence.kept_writes import KeptWrite

#: Plans kept per statement (one per dialect and combination of list lengths) before starting over.
MAX_PLANS = 256


def planned_length(length: int) -> int:
    """The length a list parameter's plan is made for: the next power of two (0 and 1 as they
    are). A list is only ever the right side of `IN` or `NOT IN`, where an item given twice
    changes nothing, so a shorter list fills the plan's placeholders past its end with its last
    item. The worker's claim, whose list (the messages it is still on) takes any length up to
    twice its concurrency, was compiled once per length, each time in a claim's transaction
    (a twentieth of a run's CPU after a warm-up, in a profile); now once per power of two.
    A list may thus take up to twice its placeholders: PostgreSQL takes 65,535 parameters in a
    statement, so more than 32,768 items no longer fit (the longest list any caller passes is
    the worker's, at most 512; the console's are capped at a page or a period's days)."""
    return length if length <= 1 else 1 << (length - 1).bit_length()


P = TypeVar("P")

_PYFORMAT = re.compile(r"%%|%\(([^)]+)\)s")


@dataclass(frozen=True)
class Plan:
    """A statement's SQL for one dialect with positional placeholders, and per placeholder where
    its value comes from and how it goes in: (parameter name, list index or None, bind processor
    or None), or for a value the statement itself holds (None, None, the value as the driver
    takes it). A list shorter than the plan's (`planned_length`) gives its last item to the
    placeholders past its end."""

    sql: str
    params: tuple[tuple[str | None, int | None, Any], ...]

    def values(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        """The placeholders' values from `given` (lists for list parameters), converted by their
        columns' types as SQLAlchemy converts them."""
        values = []
        for name, index, bind in self.params:
            if name is None:
                values.append(bind)  # the statement's own value, ready
                continue
            if index is None:
                value = given[name]
            else:
                items = given[name]
                value = items[index] if index < len(items) else items[-1]
            values.append(value if bind is None else bind(value))
        return tuple(values)


def compile_plan(
    statement: Executable, dialect: Dialect, lengths: Mapping[str, int], *, column_keys: list[str] | None = None
) -> tuple[Plan, Any]:
    """`statement` compiled for `dialect` with each list parameter (an expanding bind) of the
    length given; the plan and SQLAlchemy's compiled form (for what else a caller reads of it).

    Every bound value is a placeholder of its own, a value bound twice included (psycopg would
    send a name twice as one): where PostgreSQL must find two expressions the same (a GROUP BY
    of an expression selected), write their constants in the SQL (`literal_column`)."""
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
    supplied = {name for name, bind in compiled.binds.items() if bind.required}  # by the caller
    # the SQL as SQLAlchemy renders it for one execution: a list as one placeholder per item, a
    # list the statement holds (values written in it) in place
    stand_ins = {name: [None] * lengths[name] if name in lengths else None for name in supplied}
    expanded = compiled.construct_expanded_state(stand_ins)
    if dialect.paramstyle == "qmark":
        sql, names = expanded.statement, list(expanded.positiontup or ())
    elif dialect.paramstyle == "pyformat":
        sql, names = _positional(expanded.statement)
        unescaped = {escaped: name for name, escaped in (compiled.escaped_bind_names or {}).items()}
        names = [unescaped.get(name, name) for name in names]
    else:
        raise NotImplementedError(f"compiled statements know qmark and pyformat drivers, not {dialect.paramstyle}")
    origin = {item: (name, i) for name, items in expanded.parameter_expansion.items() for i, item in enumerate(items)}
    params: list[tuple[str | None, int | None, Any]] = []
    for name in names:
        source, index = origin.get(name, (name, None))
        bind: BindParameter[Any] = compiled.binds[source]
        process = bind_processor(bind.type, dialect)
        if source in supplied:
            params.append((source, index if source in lengths else None, process))
        else:  # a value written in the statement
            value = expanded.parameters[name]
            params.append((None, None, value if process is None else process(value)))
    return Plan(sql, tuple(params)), compiled


def bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What makes the driver's value from ours for a column of `type_`, as SQLAlchemy makes it
    (None: the value as it is)."""
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return _utc_to_text
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _utc_to_text(value: Any) -> Any:
    """An aware datetime as SQLite keeps a `UTCDateTime`: its UTC time as text, without the
    offset ("2026-11-30 04:00:00.000000"), in one step where SQLAlchemy takes two (sqlmodel's
    conversion to UTC, then the dialect's format string), with the same result and errors."""
    if type(value) is not dt.datetime:  # None, a subclass, or what only the two steps refuse
        return _SQLITE_UTC_BIND(value)
    if value.tzinfo is not dt.UTC:
        if value.utcoffset() is None:
            return _SQLITE_UTC_BIND(value)  # refused there, with sqlmodel's message
        value = value.astimezone(dt.UTC)
    return value.isoformat(" ", "microseconds")[:26]


_SQLITE_UTC_BIND: Callable[[Any], Any] = UTCDateTime().dialect_impl(SQLiteDialect()).bind_processor(SQLiteDialect())  # type: ignore[assignment]


def _positional(sql: str) -> tuple[str, list[str]]:
    """pyformat SQL (`%(name)s`) as format SQL (`%s`) and the names in placeholder order."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)  # an escaped percent sign stays escaped
        names.append(match.group(1))
        return "%s"

    return _PYFORMAT.sub(placeholder, sql), names


class Plans(Generic[P]):
    """One statement's compiled forms (`P`), one per dialect and combination of list lengths
    (each rounded up by `planned_length`), made on first use by `_compile` and then only read
    (threads making the same one at once make equal ones)."""

    def __init__(self, lists: Sequence[str] = ()) -> None:
        self._lists = tuple(lists)
        self._plans: dict[tuple[Any, ...], P] = {}  # by dialect name, driver and each list's length

    def plan(self, dialect: Dialect, params: Mapping[str, Any]) -> P:
        lists = self._lists
        if not lists:  # most statements: one plan per dialect, looked up with no key to build
            key: tuple[Any, ...] = (dialect.name, dialect.driver)
        elif len(lists) == 1:
            key = (dialect.name, dialect.driver, planned_length(len(params[lists[0]])))
        else:
            key = (dialect.name, dialect.driver, *(planned_length(len(params[name])) for name in lists))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = self._compile(dialect, dict(zip(lists, key[2:], strict=True)))
        return plan

    def _compile(self, dialect: Dialect, lengths: Mapping[str, int]) -> P:
        raise NotImplementedError


def listeners(connection: Connection | KeptWrite) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The engine's and connection's `before_cursor_execute` and `after_cursor_execute`
    listeners (a profiler, the benchmarks' capture), looked up as `Connection` looks them up.
    The engine's own are asked first: it has events of other kinds (SQLite's write turn), so
    `_has_events` alone would send every statement through the joined look-up (4 µs; the
    engine's two, 0.8 µs)."""
    if not connection._has_events:  # no listener of the connection's own: the engine's alone
        engine = connection.engine.dispatch
        if not (engine.before_cursor_execute or engine.after_cursor_execute):
            return NO_LISTENERS
    dispatch = connection.dispatch
    return tuple(dispatch.before_cursor_execute), tuple(dispatch.after_cursor_execute)


NO_LISTENERS: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ())


def cursor_of(connection: Connection | KeptWrite) -> Any:
    """A DBAPI cursor of `connection`; the driver's error in making one (a connection closed
    under us) raised as SQLAlchemy's, and a lost connection discarded, as `execute` does."""
    dbapi = connection.connection
    try:
        return dbapi.cursor()
    except connection.dialect.loaded_dbapi.Error as error:
        dialect = connection.dialect
        lost = dialect.is_disconnect(error, dbapi, None)
        if lost:
            _lost(connection, error)
        raise exc.DBAPIError.instance(
            None, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from error


def execute(
    connection: Connection | KeptWrite,
    cursor: Any,
    sql: str,
    values: Any,
    *,
    many: bool = False,
    around: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ()),
) -> list[Any]:
    """One statement on a DBAPI `cursor` of `connection` (the driver's executemany when `many`),
    every row it returns fetched; seen by the cursor listeners `around` (`listeners`, with no
    execution context: there is none), a driver error raised as SQLAlchemy's (and a lost
    connection invalidated)."""
    before, after = around
    for listener in before:
        sql, values = listener(connection, cursor, sql, values, None, many)
    dialect = connection.dialect
    try:
        (cursor.executemany if many else cursor.execute)(sql, values)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, connection.connection, cursor)
        if lost:
            _lost(connection, error)
        raise exc.DBAPIError.instance(
            sql, values, error, dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from error
    for listener in after:
        listener(connection, cursor, sql, values, None, many)
    return rows


@contextlib.contextmanager
def pipelined(connection: Connection | KeptWrite) -> Iterator[None]:
    """The statements run on `connection` in the block are sent without waiting for each one's
    answer, and the answers are waited for once, at the end of the block (psycopg's pipeline
    mode on PostgreSQL: one round trip for all of them instead of one each; elsewhere they run
    one by one, as always). Only for statements whose rows nobody reads in the block (INSERTs,
    UPDATEs without RETURNING). An error in any of them is raised at the end of the block, as
    SQLAlchemy's, and the transaction is then failed as after any error."""
    if connection.dialect.driver != "psycopg":
        yield
        return
    dialect = connection.dialect
    try:
        with connection.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            yield
    except dialect.loaded_dbapi.Error as error:  # which statement failed is in the driver's message
        lost = dialect.is_disconnect(error, connection.connection, None)
        if lost:
            _lost(connection, error)
        raise exc.DBAPIError.instance(
            "(statements sent together)", None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from error


def _lost(connection: Connection | KeptWrite, error: BaseException) -> None:
    """The server is gone (a restart, a failover): this connection is discarded, and so is every
    other the pool holds, as SQLAlchemy does for a statement of its own (they would each fail
    once): the pool starts again with new ones, those in use are dropped as they come back."""
    connection.invalidate(error)
    connection.engine.dispose(close=False)
