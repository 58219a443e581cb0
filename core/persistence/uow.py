"""A unit of work: one transaction that rolls back unless told to commit.

Rows that are only ever added (transitions, ledger postings, outbox messages, audit records; a
submission's new recoveries) go in by `write(table, row)`: a plain INSERT at once, or, in a unit
of work opened with `batched=True`, kept and sent at commit as one multi-row INSERT per table
(after the ORM's own changes, so their foreign keys hold). A batched unit of work must not read
back, before it commits, rows it wrote this way — the engine's hot path (`Transitions.settle`) is
written so.
"""

from __future__ import annotations

import hashlib
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Table, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.persistence.fast_reads import Read, Snapshot

R = TypeVar("R", bound=tuple[Any, ...])


class UnitOfWork:
    def __init__(self, engine: Engine, *, batched: bool = False) -> None:
        self._engine = engine
        self._batched = batched
        self.session: Session
        self.memo: dict[str, object] = {}
        self._rows: dict[Table, list[dict[str, Any]]] = {}

    def __enter__(self) -> UnitOfWork:
        self.session = Session(self._engine, expire_on_commit=False)
        self.memo = {}  # what this transaction already read under its locks
        self._rows = {}
        return self

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
        if self.session.new or self.session.dirty:
            self.session.flush()  # the rows it refers to first
        self.session.connection().execute(insert(table), [row])

    def _write_rows(self) -> None:
        if not self._rows:
            return
        self.session.flush()
        connection = self.session.connection()
        for table, rows in self._rows.items():  # in the order first written: parents before children
            connection.execute(insert(table), rows)
        self._rows = {}

    def rows(self, read: Read[R], **params: Any) -> list[R]:
        """The rows of a compile-once read (`core.persistence.fast_reads.Read`) in this
        transaction, on its own connection: what it locked and wrote is seen. Rows the session
        still holds unflushed (ORM objects) and rows batched for commit are not."""
        return Snapshot(self.session.connection()).rows(read, **params)

    def lock(self, name: str) -> None:
        """Serialise work on one key (a number, an account, a code) across threads, processes and
        replicas until this transaction ends: a PostgreSQL advisory lock. SQLite writers already
        hold the whole database from their first statement (BEGIN IMMEDIATE)."""
        if self._engine.dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(name)})

    def try_lock(self, name: str) -> bool:
        """Like `lock`, but False at once when another transaction holds it (PostgreSQL). On
        SQLite this transaction already holds the whole database, so it is always True."""
        if self._engine.dialect.name == "postgresql":
            query = text("SELECT pg_try_advisory_xact_lock(:key)")
            return bool(self.session.execute(query, {"key": _advisory_key(name)}).scalar())
        return True

    def commit(self) -> None:
        self._write_rows()
        self.session.commit()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # Closing rolls back whatever was not committed, and leaves rows already read usable
        # (an explicit rollback would expire them).
        self.session.close()


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
