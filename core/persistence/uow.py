"""A unit of work: one transaction that rolls back unless told to commit."""

from __future__ import annotations

import hashlib
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.session: Session
        self.memo: dict[str, object] = {}

    def __enter__(self) -> UnitOfWork:
        self.session = Session(self._engine, expire_on_commit=False)
        self.memo = {}  # what this transaction already read under its locks
        return self

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
        self.session.commit()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # Closing rolls back whatever was not committed, and leaves rows already read usable
        # (an explicit rollback would expire them).
        self.session.close()


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
