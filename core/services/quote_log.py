"""The anonymous log of the quotes the portal serves, for the pricing lab's replays.

Each quote a person is shown (Compare, the Recover page's check) is kept as its balance in whole
yuan, its carrier, the priority the person put first and the hour it was asked — never the
number, the account, the device or anything else that points at someone; coarse on purpose, so
that a line cannot be joined back to a person's exact quote lock. Lines older than a year (the
lab replays at most that) are deleted by the background upkeep (`prune`, hourly). Lines wait in memory and are
written together by a background thread (when `batch` lines wait or `every_s` seconds have
passed, whichever comes first) and before every read, so a quote never waits for the database;
lines still waiting when a process stops are lost, which an estimate of the market can afford.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import delete, func, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from core.domain.quotes import QuoteRequest
from core.persistence.tables import QuoteRequestLog
from core.persistence.uow import UnitOfWork

log = logging.getLogger(__name__)
KEEP_DAYS = 366  # the lab replays at most a year


class QuoteLog:
    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 200,
        every_s: float = 5.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine, self._batch, self._every_s, self._clock = engine, batch, every_s, clock
        self._waiting: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._flushing = False

    def record(self, request: QuoteRequest) -> None:
        """Keep one served quote (anonymously); write the waiting ones when due."""
        at = self._clock().astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        line = {
            "at": at,
            "balance_fen": request.balance_fen - request.balance_fen % 100,  # whole yuan
            "carrier": request.carrier.value,
            "priority": request.priorities[0].value,
        }
        with self._lock:
            self._waiting.append(line)
            due = len(self._waiting) >= self._batch or time.monotonic() - self._last_flush >= self._every_s
            if due and not self._flushing:
                self._flushing = True
                threading.Thread(target=self._flush_in_background, name="quote-log", daemon=True).start()

    def _flush_in_background(self) -> None:
        """Off the quoting thread: a quote served inside other work never waits for the
        database (nor, on SQLite, for a write lock its own thread may hold)."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._flushing = False

    def flush(self) -> int:
        """Write what waits; a database that cannot take it now keeps it for the next time."""
        with self._lock:
            lines, self._waiting = self._waiting, []
            self._last_flush = time.monotonic()
        if not lines:
            return 0
        try:
            with UnitOfWork(self._engine) as uow:
                uow.session.execute(insert(QuoteRequestLog), lines)
                uow.commit()
        except SQLAlchemyError as exc:  # never the quote's problem
            log.warning("quote log not written (%d lines kept): %s", len(lines), type(exc).__name__)
            with self._lock:
                self._waiting[:0] = lines[-10_000:]
            return 0
        return len(lines)

    def prune(self) -> int:
        """Delete the lines older than `KEEP_DAYS` (the background upkeep does, hourly); how many."""
        cutoff = self._clock() - dt.timedelta(days=KEEP_DAYS)
        with UnitOfWork(self._engine) as uow:
            result = uow.session.execute(delete(QuoteRequestLog).where(col(QuoteRequestLog.at) < cutoff))
            gone = getattr(result, "rowcount", 0)  # a DELETE's result counts its rows
            uow.commit()
        return int(gone or 0)

    def since(self, start: dt.datetime, *, most: int = 200_000) -> tuple[list[int], list[str], list[str]]:
        """The logged quotes from `start` on, as columns: balances, carriers, priorities — a
        random sample of at most `most` of them, drawn by the database."""
        self.flush()
        with UnitOfWork(self._engine) as uow:
            query = (
                select(QuoteRequestLog.balance_fen, QuoteRequestLog.carrier, QuoteRequestLog.priority)
                .where(col(QuoteRequestLog.at) >= start)
                .order_by(func.random())
                .limit(most)
            )
            rows = uow.session.exec(query).all()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


__all__ = ["QuoteLog"]
