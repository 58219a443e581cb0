"""Engines for SQLite (the embedded default, a file outside git) and PostgreSQL (DATABASE_URL).

SQLite writers take the write lock when their transaction begins (`BEGIN IMMEDIATE`), so two
writers queue instead of failing half-way; foreign keys are on; WAL lets readers proceed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine

from core.config import ConfigError
from core.persistence.compiled import execute, listeners

log = logging.getLogger(__name__)

PRIVATE = 0o600  # like the key files: the database holds encrypted numbers, hashes and the ledger
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")  # SQLite gives these its database file's mode


def engine_for(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            _private_sqlite_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _sqlite_discipline(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


@contextlib.contextmanager
def scratch_schema(url: str, *, prefix: str = "scratch", **kwargs: Any) -> Iterator[Engine]:
    """An engine on a new, empty schema of a PostgreSQL server, dropped with everything in it
    on exit: tests and benchmarks that must not touch what is already there."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = engine_for(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = engine_for(url, connect_args={"options": f"-csearch_path={schema}"}, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _private_sqlite_file(path: Path) -> None:
    """Create the database file readable by its owner alone before SQLite opens it (SQLite
    would create it 0644 under the usual umask, and makes its -wal and -shm files with the
    database file's mode); tighten an existing one, and its companions, with a warning. A
    device, a pipe or a directory named as the database is refused before SQLite opens it:
    it was made private (`/dev/zero`, for a mistyped URL, run as root), and SQLite then wrote
    its journal beside it."""
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} is not a regular file", key="error.config.database_not_a_file", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # an empty file is an empty SQLite database
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            found = companion.stat()  # a link to the database: the file it points to
        except FileNotFoundError:
            continue
        current = stat.S_IMODE(found.st_mode)
        if not stat.S_ISREG(found.st_mode) or current & 0o077 == 0:  # a companion as odd: not ours
            continue
        try:
            os.chmod(companion, PRIVATE)
        except OSError as exc:
            log.warning(
                "database file readable by others (%04o), could not change it (%s): %s",
                current,
                exc.strerror,
                companion,
            )
        else:
            log.warning(
                "database file was readable by others: mode %04o changed to %04o: %s", current, PRIVATE, companion
            )


#: A pooled server connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """What `pool_pre_ping` does, for connections that sat idle: a server restart or a dropped
    connection is found before a transaction meets it, and a fresh connection is made instead.
    A connection given back moments ago (a worker's, between one step and the next) is not
    asked again: pre-pinging every checkout cost each partner answer's transaction a round trip
    of its own. One that broke within those moments fails its next statement; SQLAlchemy and
    the compile-once statements then discard it and the pool's other connections with it (as
    SQLAlchemy does on a lost connection), and the worker tries that step again later."""

    @event.listens_for(engine, "checkin")
    def _given_back(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # new, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # the server went away (a restart, a failover): as `pool_pre_ping` does, every
            # connection of the pool is replaced, not only this one, and a new one is handed out
            raise exc.InvalidatePoolError("a pooled connection no longer answers") from error


def _sqlite_discipline(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    writer = _TURNS[engine] = _WriteTurn()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        writer.take(dbapi_connection)
        try:
            # straight on the driver's cursor, seen by the cursor listeners and failing as
            # SQLAlchemy's error, without an execution of Core's own for one fixed statement
            cursor = dbapi_connection.cursor()
            try:
                execute(connection, cursor, "BEGIN IMMEDIATE", (), around=listeners(connection))
            finally:
                cursor.close()
        except BaseException:
            writer.give_back(dbapi_connection)
            raise

    # SQLAlchemy tells of a commit or rollback before it asks the driver: end the transaction
    # here, then give the turn back, so the next writer's BEGIN IMMEDIATE never meets the lock
    # still held (the driver's own commit or rollback that follows finds nothing to do)
    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        _end_turn(connection, writer, "commit")

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        _end_turn(connection, writer, "rollback")

    # a connection that goes back to the pool, or away, mid-transaction gives its turn back too
    for name in ("checkin", "close", "invalidate", "reset"):
        event.listen(engine.pool, name, lambda dbapi_connection, *_: writer.give_back(dbapi_connection))


def _end_turn(connection: Any, writer: _WriteTurn, how: str) -> None:
    if connection.invalidated:
        return  # the pool's invalidate event gives the turn back
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and writer.holds(dbapi_connection):
        try:
            getattr(dbapi_connection, how)()
        finally:
            writer.give_back(dbapi_connection)


def write_turn(engine: Engine) -> _WriteTurn | None:
    """The write turn of a SQLite engine's process (None for another database): what its
    `begin` event takes, for the transactions that begin without it
    (`core.persistence.kept_writes`)."""
    return _TURNS.get(engine)


class _WriteTurn:
    """Writers of one process queue on a lock before `BEGIN IMMEDIATE`. SQLite's own busy
    handler makes a waiting writer sleep and poll (1, 2, 5 … 100 ms at a time), so threads that
    contend for its write lock spend most of their time asleep while it is free; in a queue,
    each takes it the moment the last one is done. Writers of other processes still meet at
    SQLite's lock (busy_timeout). A turn not taken in 30 s fails as SQLite would."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def take(self, dbapi_connection: Any) -> None:
        if not self._lock.acquire(timeout=30):
            raise sqlite3.OperationalError("database is locked (no write turn in 30 s)")
        self._holder = id(dbapi_connection)

    def holds(self, dbapi_connection: Any) -> bool:
        return self._holder == id(dbapi_connection)

    def give_back(self, dbapi_connection: Any) -> None:
        if dbapi_connection is not None:
            self.give_back_for(id(dbapi_connection))

    def give_back_for(self, holder: int) -> None:
        """The turn given back by the holder of that identity (the turn of a holder collected
        while holding it: `core.persistence.kept_writes`)."""
        if self._holder == holder:
            self._holder = None
            self._lock.release()


_TURNS: weakref.WeakKeyDictionary[Engine, _WriteTurn] = weakref.WeakKeyDictionary()
