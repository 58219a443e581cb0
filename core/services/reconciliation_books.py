"""What our ledger booked for a partner's calls, as reconciliation compares it with the
partner's statement: per (kind, reference), the amount the partner moved by our books (the
booking's postings on the partner's account and any correcting entries since) and the business
day it was booked on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select as sa_select
from sqlmodel import col, select

from core.domain.calendar import day_start, shanghai_day
from core.domain.reconciliation import ACCOUNT_OF, CORRECTION_EVENT, EVENT_OF, Ours
from core.persistence.tables import LedgerPosting, Recovery
from core.persistence.uow import UnitOfWork
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
    """Our bookings of `partner`'s calls: those booked on Shanghai day `day`, or those `keys`
    (kind, reference) name, whatever day they were booked."""
    kinds = kinds_of(partner)
    if day is not None:
        start = day_start(day).astimezone(dt.UTC)
        end = start + dt.timedelta(days=1)
        query = select(LedgerPosting.recovery_id).where(
            col(LedgerPosting.event).in_([EVENT_OF[k] for k in kinds]),
            LedgerPosting.at >= start,
            LedgerPosting.at < end,
        )
        ids = set(uow.session.exec(query).all())
    else:
        ids = set()
        for kind, ref in keys:
            if kind in kinds and (rid := recovery_of(ref, CALL_OF[kind])) is not None:
                ids.add(rid)
    return _bookings(uow, partner, sorted(ids))


def _bookings(uow: UnitOfWork, partner: str, ids: list[str]) -> dict[tuple[str, str], Ours]:
    kinds = kinds_of(partner)
    accounts = {ACCOUNT_OF[k][0].value: k for k in kinds}
    events = {EVENT_OF[k]: k for k in kinds}
    out: dict[tuple[str, str], Ours] = {}
    sums: dict[tuple[str, str], int] = {}
    days: dict[tuple[str, str], dt.date] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            sa_select(
                col(LedgerPosting.recovery_id),
                col(LedgerPosting.event),
                col(LedgerPosting.account),
                col(LedgerPosting.amount_fen),
                col(LedgerPosting.at),
            )
            .join(Recovery, col(Recovery.id) == col(LedgerPosting.recovery_id))
            .where(
                col(LedgerPosting.recovery_id).in_(ids[start : start + _CHUNK]),
                col(LedgerPosting.account).in_(list(accounts)),
                col(LedgerPosting.event).in_([*events, CORRECTION_EVENT]),
            )
        )
        if partner != "carrier":
            query = query.where(col(Recovery.channel_id) == partner)
        for rid, event, account, amount, at in uow.session.execute(query).all():
            kind = accounts[account]
            if event != CORRECTION_EVENT and events.get(event) != kind:
                continue  # another event's posting on the same account
            sums[(rid, kind)] = sums.get((rid, kind), 0) + ACCOUNT_OF[kind][1] * amount
            if event == EVENT_OF[kind]:
                days[(rid, kind)] = shanghai_day(at)
    for (rid, kind), amount in sums.items():
        if (rid, kind) in days:  # booked (a correction alone is not a booking)
            ref = reference(rid, CALL_OF[kind])
            out[(kind, ref)] = Ours(ref, rid, kind, amount, days[(rid, kind)])
    return out
