"""The books: the double-entry ledger (`ledger_postings`, one balanced entry per transition that
moves money: core.domain.ledger) as an accountant reads it.

    trial_balance        every account's debits, credits and balance up to the end of a Shanghai
                         day (or everything); the balances add up to zero
    balances_over_time   every account's closing balance on each Shanghai day of a period
    export               a period as beancount (balances before it carried in, one transaction per
                         entry, the closing balances asserted) or CSV (a row per posting):
                         core.services.books_formats
    filing               the money flow and the information flow of a period filed together
                         (资金流-信息流), ending with the audit chain's head:
                         core.services.books_filing

Who: every staff role reads the trial balance and the balances over time (analysts too: figures,
read-only, like the operations metrics); only operators and admins export or file, since both
take the books out of the portal and a filing carries who decided what on each recovery. Every
export and filing is written to the audit chain with its period and format, never a figure.

The database adds up (SUM ... GROUP BY account, and per Shanghai day and account); postings are
loaded only to be written out. Accounts and events are whatever strings the ledger holds, so an
account or an event added later (reconciliation differences, a correction) shows as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel, col
from sqlmodel import select as select_rows

from core.domain.access import Principal, require_operator, require_staff
from core.domain.calendar import day_start, shanghai_period
from core.errors import InputError, PortalError
from core.persistence.tables import AuditRecord
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog, chain_pending
from core.services.books_filing import groups_in_period, line, recovery_lines
from core.services.books_formats import PostingRow, beancount_text, csv_text, event_rank
from core.services.console.metrics_sql import shanghai_day_sql

#: The longest period one request reads (a leap year's days).
MAX_PERIOD_DAYS = 366
#: The earliest day the books answer for (the portal kept no books before; it also keeps the day
#: before a period, where beancount opens the accounts, a real date).
FIRST_DAY = dt.date(2000, 1, 1)
FORMATS = ("beancount", "csv")
_P = SQLModel.metadata.tables["ledger_postings"]


@dataclass(frozen=True)
class AccountTotals:
    """One account in the trial balance: debits (positive postings) and credits (negative
    postings, shown positive), in fen."""

    account: str
    debits_fen: int
    credits_fen: int

    @property
    def balance_fen(self) -> int:
        return self.debits_fen - self.credits_fen

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "debits_fen": self.debits_fen,
            "credits_fen": self.credits_fen,
            "balance_fen": self.balance_fen,
        }


@dataclass(frozen=True)
class TrialBalance:
    at: dt.date | None  # up to the end of this Shanghai day; None: everything
    accounts: tuple[AccountTotals, ...]  # by account name

    @property
    def total_fen(self) -> int:
        """The balances added up: zero, as every entry is balanced."""
        return sum(a.balance_fen for a in self.accounts)

    def balances(self) -> dict[str, int]:
        return {a.account: a.balance_fen for a in self.accounts}

    def as_dict(self) -> dict[str, Any]:
        """As `ledger trial-balance --json` prints it."""
        return {
            "at": self.at.isoformat() if self.at is not None else None,
            "accounts": [a.as_dict() for a in self.accounts],
            "total_fen": self.total_fen,
        }


@dataclass(frozen=True)
class BalancesOverTime:
    start: dt.date
    end: dt.date
    days: tuple[dt.date, ...]  # every day of the period, in order
    balances: Mapping[str, tuple[int, ...]]  # account -> its balance at the end of each day, in fen

    def closing(self) -> dict[str, int]:
        """Each account's balance at the end of the period."""
        return {account: values[-1] for account, values in self.balances.items()}


def day_end(day: dt.date) -> dt.datetime:
    """The first moment (UTC) after Shanghai day `day`."""
    _check_day(day)
    return day_start(day + dt.timedelta(days=1)).astimezone(dt.UTC)


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first moment, moment after the last) of Shanghai days start..end, checked."""
    _check_day(start)
    _check_day(end)
    return shanghai_period(start, end, most_days=MAX_PERIOD_DAYS, errors="books")


def _check_day(day: object) -> None:
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime) or not FIRST_DAY <= day < dt.date(9999, 12, 31):
        raise InputError("give a date from 2000-01-01 on (YYYY-MM-DD)", key="error.books.date")


class BooksService:
    """The trial balance, the balances over time, the exports and the filing."""

    def __init__(
        self, engine: Engine, audit: AuditLog, *, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock

    def trial_balance(self, caller: Principal, at: dt.date | None = None) -> TrialBalance:
        """Every account's debits, credits and balance up to the end of Shanghai day `at`."""
        require_staff(caller, "only staff read the books")
        before = day_end(at) if at is not None else None
        debits = func.coalesce(func.sum(case((_P.c.amount_fen > 0, _P.c.amount_fen), else_=0)), 0)
        credits = func.coalesce(func.sum(case((_P.c.amount_fen < 0, -_P.c.amount_fen), else_=0)), 0)
        query = select(_P.c.account, debits, credits).group_by(_P.c.account).order_by(_P.c.account)
        if before is not None:
            query = query.where(_P.c.at < before)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return TrialBalance(at, tuple(AccountTotals(str(a), int(d), int(c)) for a, d, c in rows))

    def balances_over_time(self, caller: Principal, start: dt.date, end: dt.date) -> BalancesOverTime:
        """Each account's balance at the end of each Shanghai day from `start` to `end`: the
        balance before the period, and each day's postings added on."""
        require_staff(caller, "only staff read the books")
        first, after = period_bounds(start, end)
        day = shanghai_day_sql(_P.c.at, self._engine.dialect.name).label("day")
        daily = (
            select(day, _P.c.account, func.sum(_P.c.amount_fen))
            .where(_P.c.at >= first, _P.c.at < after)
            .group_by(day, _P.c.account)
        )
        with self._snapshot() as conn:
            opening = _sums(conn, before=first)
            moves = conn.execute(daily).all()
        days = tuple(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
        index = {d.isoformat(): i for i, d in enumerate(days)}
        changes: dict[str, list[int]] = {a: [0] * len(days) for a in opening}
        for when, account, fen in moves:
            changes.setdefault(str(account), [0] * len(days))[index[str(when)]] += int(fen)
        balances = {}
        for account in sorted(changes):
            running, closing = opening.get(account, 0), []
            for change in changes[account]:
                running += change
                closing.append(running)
            balances[account] = tuple(closing)
        return BalancesOverTime(start, end, days, balances)

    def export(self, caller: Principal, fmt: str, start: dt.date, end: dt.date) -> str:
        """The period as a beancount file or a CSV of its postings (text), audited."""
        require_operator(caller, "only an operator or admin exports the books")
        if fmt not in FORMATS:
            raise InputError("export as beancount or csv", key="error.books.format", format=str(fmt)[:20])
        first, after = period_bounds(start, end)
        with self._snapshot() as conn:
            postings = _postings(conn, first, after)
            opening, closing = (
                (_sums(conn, before=first), _sums(conn, before=after)) if fmt == "beancount" else ({}, {})
            )
        self._write_audit(caller, "ledger.export", start, end, fmt)
        return csv_text(postings) if fmt == "csv" else beancount_text(start, end, opening, postings, closing)

    def filing(self, caller: Principal, start: dt.date, end: dt.date) -> Iterator[str]:
        """The period's dual filing as JSON lines (core.services.books_filing), audited first: its
        last line names the audit chain's head, the filing's own record."""
        require_operator(caller, "only an operator or admin files the books")
        first, after = period_bounds(start, end)
        seq, digest = self._write_audit(caller, "ledger.filing", start, end, "jsonl")
        groups = groups_in_period(self._engine, first, after)
        header = {
            "type": "filing",
            "from": start.isoformat(),
            "to": end.isoformat(),
            "filed_at": self._clock().isoformat(),
            "filed_by": caller.user_id,
            "recoveries": len(groups),
        }

        def lines() -> Iterator[str]:
            yield line(header)
            yield from recovery_lines(self._engine, groups, after, seq)
            yield line({"type": "audit_head", "seq": seq, "hash": digest})

        return lines()

    def _write_audit(self, caller: Principal, action: str, start: dt.date, end: dt.date, fmt: str) -> tuple[int, str]:
        """The export's audit record (its period and format); its sequence number and hash."""
        with UnitOfWork(self._engine) as uow:
            detail = {"from": start.isoformat(), "to": end.isoformat(), "format": fmt}
            seq = self._audit.append_now(uow, caller.user_id, action, "ledger", detail)
            uow.commit()
        chain_pending(self._engine, most=2**62)  # every record before it too: the filing names a chained head
        with UnitOfWork(self._engine) as uow:
            digest = uow.session.exec(select_rows(AuditRecord.hash).where(col(AuditRecord.seq) == seq)).one()
        if digest is None:  # committed before the chainer ran, so chained by it: never expected
            raise PortalError("the filing's audit record could not be chained")
        return seq, digest

    def _snapshot(self) -> Connection:
        """One connection whose reads see one moment (PostgreSQL: repeatable read; SQLite's
        transaction already is one)."""
        conn = self._engine.connect()
        if self._engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn


def _sums(conn: Connection, *, before: dt.datetime) -> dict[str, int]:
    """Each account's balance from every posting before `before`."""
    query = select(_P.c.account, func.sum(_P.c.amount_fen)).where(_P.c.at < before).group_by(_P.c.account)
    return {str(account): int(fen) for account, fen in conn.execute(query).all()}


def _postings(conn: Connection, first: dt.datetime, after: dt.datetime) -> list[PostingRow]:
    """The period's postings, entry by entry in time order (the entries of one moment in the order
    their events happen to a recovery; debits first within an entry)."""
    query = (
        select(_P.c.entry_id, _P.c.recovery_id, _P.c.event, _P.c.account, _P.c.amount_fen, _P.c.at)
        .where(_P.c.at >= first, _P.c.at < after)
        .order_by(_P.c.at, event_rank(_P.c.event), _P.c.entry_id, _P.c.amount_fen.desc(), _P.c.account)
    )
    return [PostingRow(str(e), str(r), str(ev), str(a), int(f), at) for e, r, ev, a, f, at in conn.execute(query)]
