"""The sandbox partners' own books. A partner is another company: what it did (a debit, a refund,
a payout) it records in its own store, not in the portal's database, and its settlement
statement is produced from there — so reconciliation compares two independent records.

One SQLite file holds every sandbox partner's book (by default beside the portal's SQLite
database, `var/partners.sqlite3` for `make run`; `SANDBOX_BOOKS` names another file). The file
outlives a restart, and every process that mounts a sandbox (portal replicas, workers, the
sandbox server) writes to the same book. `:memory:` gives a book of this process only (tests on
PostgreSQL, benchmarks).

A partner records an operation once, when it accepts it, with the moment it takes effect
(`at`: a payout's settlement, a debit's or refund's moment) and how it ends (`success` or
`failed`); a later request with the same reference is answered from the record and changes
nothing. Statements list the operations that took effect during one Asia/Shanghai day, up to
the moment they are asked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from core.config import SANDBOX, Settings
from core.domain.calendar import SHANGHAI, day_start
from core.domain.statements import StatementRow

MEMORY = ":memory:"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    partner     TEXT NOT NULL,
    reference   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    partner_ref TEXT NOT NULL,
    amount_fen  INTEGER NOT NULL,
    fee_fen     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (partner, kind, reference)
);
CREATE INDEX IF NOT EXISTS operations_day ON operations (partner, at);
CREATE TABLE IF NOT EXISTS balances (
    account     TEXT PRIMARY KEY,   -- SHA-256 of the number: the book keeps no number in the clear
    balance_fen INTEGER NOT NULL
);
"""


def partner_ref(partner: str, kind: str, reference: str) -> str:
    """The partner's own order id for an operation (its 平台订单号): 28 digits, stable."""
    digest = hashlib.sha256(f"{partner}:{kind}:{reference}".encode()).digest()
    return "42" + str(int.from_bytes(digest[:12], "big")).zfill(26)[-26:]


def _account(msisdn: str) -> str:
    return hashlib.sha256(f"sandbox-balance:{msisdn}".encode()).hexdigest()


def day_bounds(day: dt.date) -> tuple[float, float]:
    """[start, end) of an Asia/Shanghai day, as epoch seconds."""
    start = day_start(day)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


class PartnerBook:
    def __init__(self, path: str | Path = MEMORY) -> None:
        self.path = str(path)
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if self.path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # a sandbox: durable enough, and cheap per call
            self._db.executescript(_SCHEMA)

    def record(
        self, partner: str, kind: str, reference: str, amount_fen: int, status: str, at: float, fee_fen: int = 0
    ) -> None:
        """The partner's record of one operation; the first one for a reference stands."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO operations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (partner, reference, kind, partner_ref(partner, kind, reference), amount_fen, fee_fen, status, at),
            )

    def balance(self, msisdn: str) -> int | None:
        """A number's balance as this book last kept it (None: never kept here)."""
        with self._lock:
            row = self._db.execute("SELECT balance_fen FROM balances WHERE account = ?", (_account(msisdn),)).fetchone()
        return int(row[0]) if row is not None else None

    def keep_balance(self, msisdn: str, balance_fen: int) -> None:
        """A number's balance now: the sandbox's processes, and the next start, read it here."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO balances VALUES (?, ?)",
                (_account(msisdn), balance_fen),
            )

    def get(self, partner: str, kind: str, reference: str) -> StatementRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM operations WHERE partner = ? AND kind = ? AND reference = ?", (partner, kind, reference)
            ).fetchone()
        return _row(row) if row is not None else None

    def statement_rows(self, partner: str, day: dt.date, *, until: float) -> list[StatementRow]:
        """The operations of `partner` that took effect on Shanghai day `day`, before `until`,
        in the order they took effect."""
        start, end = day_bounds(day)
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM operations WHERE partner = ? AND at >= ? AND at < ? AND at <= ? ORDER BY at, reference",
                (partner, start, end, until),
            ).fetchall()
        return [_row(row) for row in rows]

    def days(self) -> dict[str, set[dt.date]]:
        """Each partner's Shanghai days with an operation in the book."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT partner, CAST(at AS INTEGER) FROM operations").fetchall()
        out: dict[str, set[dt.date]] = {}
        for partner, at in rows:
            out.setdefault(partner, set()).add(dt.datetime.fromtimestamp(at, SHANGHAI).date())
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(row: tuple[Any, ...]) -> StatementRow:
    _, reference, kind, their_ref, amount, fee, status, at = row
    moment = dt.datetime.fromtimestamp(float(at), SHANGHAI).replace(microsecond=0)  # statements keep seconds
    return StatementRow(
        at=moment,
        partner_ref=str(their_ref),
        reference=str(reference),
        kind=str(kind),
        status=str(status),
        amount_fen=int(amount),
        fee_fen=int(fee),
    )


def sandbox_book(settings: Settings, database_url: str) -> PartnerBook | None:
    """The sandbox partners' books as configured: `SANDBOX_BOOKS`, else a file beside the
    portal's SQLite database (every process on that database shares it), else one of this
    process (PostgreSQL without `SANDBOX_BOOKS`); None when no partner is in-process and
    `SANDBOX_BOOKS` is not set (the sandbox server's own process keeps them then)."""
    if settings.sandbox_books:
        return PartnerBook(settings.sandbox_books)
    if SANDBOX not in (settings.carrier_api_url, settings.payout_api_url):
        return None
    url = make_url(database_url)
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        return PartnerBook()
    return PartnerBook(Path(database).with_name("partners.sqlite3"))
