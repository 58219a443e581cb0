"""What our ledger booked for a partner's calls, as reconciliation compares it with the
partner's statement: per (kind, reference), the amount the partner moved by our books (the
booking's postings on the partner's account and any correcting entries since) and the business
day it was booked on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from core.domain.calendar import day_start
from core.domain.ledger import CORRECTION_EVENT
from core.domain.reconciliation import ACCOUNT_OF, EVENT_OF, Ours
from core.persistence.tables import LedgerPosting, Recovery
from core.persistence.uow import UnitOfWork
from core.services.console.metrics_sql import shanghai_day_sql
from core.services.recovery_worker import recovery_of, reference

#: A statement's kind of operation -> the kind of partner call our reference names.
CALL_OF = {"payout": "payout", "debit": "carrier_debit", "refund": "carrier_refund"}
_CHUNK = 2_000


def call_kind(ref: str) -> str | None:
    """The statement kind (payout, debit, refund) a reference of ours is for, or None."""
    for kind, call in CALL_OF.items():
        if recovery_of(ref, call) is not None:
            return kind
    return None


def kinds_of(partner: str) -> tuple[str, ...]:
    return ("debit", "refund") if partner == "carrier" else ("payout",)


def our_bookings(
    uow: UnitOfWork, partner: str, *, day: dt.date | None = None, keys: Iterable[tuple[str, str]] = ()
) -> dict[tuple[str, str], Ours]:
    """Our bookings of `partner`'s calls: those booked on Shanghai day `day` (one range of
    `ix_ledger_postings_event_at`), or those `keys` (kind, reference) name, whatever day they
    were booked."""
    kinds = kinds_of(partner)
    if day is not None:
        start = day_start(day).astimezone(dt.UTC)
        on_day = and_(col(LedgerPosting.at) >= start, col(LedgerPosting.at) < start + dt.timedelta(days=1))
        return _bookings(uow, partner, [on_day], day=day)
    ids = sorted({rid for kind, ref in keys if kind in kinds and (rid := recovery_of(ref, CALL_OF[kind]))})
    scopes = [col(LedgerPosting.recovery_id).in_(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK)]
    return _bookings(uow, partner, scopes)


def _bookings(
    uow: UnitOfWork, partner: str, scopes: Sequence[ColumnElement[bool]], *, day: dt.date | None = None
) -> dict[tuple[str, str], Ours]:
    """The bookings (on the partner's accounts, by the booking events) each scope selects, and
    the correcting entries since on the same recoveries, added up. `day`: every scope is that
    Shanghai day's range (nothing to work out per row)."""
    kinds = kinds_of(partner)
    accounts = {ACCOUNT_OF[k][0].value: (k, ACCOUNT_OF[k][1]) for k in kinds}  # -> (kind, sign)
    # exactly the booking postings: each kind's event on that kind's account
    booked = or_(
        *(
            and_(col(LedgerPosting.event) == EVENT_OF[k], col(LedgerPosting.account) == ACCOUNT_OF[k][0].value)
            for k in kinds
        )
    )
    sums: dict[tuple[str, str], int] = {}
    days: dict[tuple[str, str], str] = {}
    conn = uow.session.connection()  # plain rows: no ORM work for a day's hundreds of thousands
    # the booking's Shanghai day as text (no datetime per row); a constant when the scope is one day
    day_of = literal(day.isoformat()) if day else shanghai_day_sql(col(LedgerPosting.at), conn.dialect.name)
    columns = (col(LedgerPosting.recovery_id), col(LedgerPosting.account), col(LedgerPosting.amount_fen), day_of)
    for scope in scopes:
        query = sa_select(*columns).where(scope, booked)
        if partner != "carrier":  # a payout partner's: the recoveries through its channel
            query = query.join(Recovery, col(Recovery.id) == col(LedgerPosting.recovery_id)).where(
                col(Recovery.channel_id) == partner
            )
        for rid, account, amount, at in conn.execute(query).all():
            kind, sign = accounts[account]
            key = (rid, kind)
            sums[key] = sums.get(key, 0) + sign * amount
            days[key] = at
    corrections = sa_select(*columns).where(
        col(LedgerPosting.event) == CORRECTION_EVENT, col(LedgerPosting.account).in_(list(accounts))
    )  # few: every one on these accounts, kept to the bookings read
    for rid, account, amount, _ in conn.execute(corrections):
        kind, sign = accounts[account]
        if (rid, kind) in sums:
            sums[(rid, kind)] += sign * amount
    dates = {text: dt.date.fromisoformat(text) for text in set(days.values())}
    out: dict[tuple[str, str], Ours] = {}
    for (rid, kind), text in days.items():  # booked (a correction alone is not a booking)
        ref = reference(rid, CALL_OF[kind])
        out[(kind, ref)] = Ours(ref, rid, kind, sums[(rid, kind)], dates[text])
    return out
