"""Reconciliation of the partners' settlement statements with our books (operators and admins).

`reconcile` reads a statement in its partner's dialect (nothing is stored if it does not parse),
stores it once — the same bytes again (by SHA-256) give back the first import's report and
change nothing — and matches it against what our ledger booked for that partner on the day
(`core.domain.reconciliation` says how, and names the breaks). Each import clears what it
settles: a timing break once the other day's statement is in, a row missing from one day's
statement once another day's statement brings it.

Resolving a break is an operator's act with a reason; a break that needs money to move is put
right by a correcting ledger entry a second operator agrees to (four eyes), never by changing
an entry. Imports, resolutions and corrections go into the audit chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.access import Principal, require_operator
from core.domain.calendar import FIRST_BUSINESS_DAY, shanghai_day
from core.domain.ledger import CORRECTION_EVENT
from core.domain.notes import kept_words
from core.domain.reconciliation import (
    CORRECTED,
    RESOLUTIONS,
    Break,
    BreakKind,
    BreakStatus,
    Matching,
    correction,
    match,
)
from core.domain.review import FourEyesAction
from core.domain.statements import Statement, check_days, check_kinds, parse_statement
from core.errors import InputError, PortalError
from core.gc_pause import collector_paused
from core.persistence.tables import LedgerPosting, ReconciliationBreak, StatementImport, StatementLine, new_id
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.console.approvals import ApprovalView, FourEyesService
from core.services.reconciliation_books import call_kind, kinds_of, our_bookings
from core.services.reconciliation_views import BreakView, Report, break_view, report_of
from core.statement_dialect_files import dialect_for

_NOTE_MAX = 200
#: How far past today (Beijing) a statement's rows and business day may be: a partner's day may
#: close after ours, and a row just past midnight belongs to a timing break, never further.
DAYS_AHEAD = 1


class BreakClosed(PortalError):
    key = "error.reconcile.break_closed"


class ReconciliationService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        approvals: FourEyesService,
        partners: Callable[[], Iterable[str]],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._approvals = approvals
        self._partners = partners
        self._clock = clock
        approvals.handle(FourEyesAction.CORRECT_BREAK, self._correct_agreed)

    def statement_days(self) -> tuple[dt.date, dt.date]:
        """The Beijing days a statement's rows and business day may be: from the portal's first
        business day to tomorrow."""
        return FIRST_BUSINESS_DAY, shanghai_day(self._clock()) + dt.timedelta(days=DAYS_AHEAD)

    def partners(self) -> list[str]:
        """Whose statements can be reconciled: the carrier and every payout channel."""
        return ["carrier", *sorted(set(self._partners()) - {"carrier"})]

    # --- importing ------------------------------------------------------------------------------

    def reconcile(
        self, caller: Principal, partner: str, data: bytes, *, day: dt.date | None = None, filename: str = ""
    ) -> Report:
        require_operator(caller)
        if partner not in self.partners():
            raise InputError(f"no partner {partner!r}", key="error.reconcile.partner", partner=partner[:32])
        first, last = self.statement_days()
        if day is not None and not first <= day <= last:
            raise InputError(
                "a business day out of range", key="error.reconcile.day_range", first=str(first), last=str(last)
            )
        statement = read_statement(partner, data)
        check_days(statement, first, last)  # before anything turns a row's time into UTC
        check_kinds(statement, kinds_of(partner), dialect_for(partner))  # not another partner's file
        day = day or _day_of(statement)
        digest = hashlib.sha256(data).hexdigest()
        with UnitOfWork(self._engine) as uow, collector_paused():
            uow.lock(f"statement:{digest}")  # the same file imported twice at once: the second finds the first
            earlier = uow.session.exec(select(StatementImport).where(StatementImport.sha256 == digest)).first()
            if earlier is not None:
                if (earlier.partner, earlier.business_day) != (partner, day.isoformat()):
                    # the same bytes again, said to be another partner's or another day's: the
                    # earlier report would answer a question not asked
                    raise InputError(
                        "this file was imported before, for another partner or day",
                        key="error.reconcile.imported_as_other",
                        partner=earlier.partner,
                        day=earlier.business_day,
                    )
                return report_of(uow, earlier, stored=False)
            result = compare(uow, partner, statement, day)
            row = self._store(uow, caller, partner, day, statement, digest, filename, result)
            cleared = _clear(uow, partner, day, statement, row.id)
            self._audit.append(
                uow,
                caller.user_id,
                "statement_import",
                row.id,
                {
                    "partner": partner,
                    "day": day.isoformat(),
                    "sha256": digest,
                    "rows": str(len(statement.rows)),
                    "matched": str(result.matched),
                    "breaks": str(len(result.breaks)),
                    "cleared": str(cleared),
                },
            )
            uow.commit()
            return report_of(uow, row, stored=True)

    def _store(
        self,
        uow: UnitOfWork,
        caller: Principal,
        partner: str,
        day: dt.date,
        statement: Statement,
        digest: str,
        filename: str,
        result: Any,
    ) -> StatementImport:
        row = StatementImport(
            sha256=digest,
            partner=partner,
            business_day=day.isoformat(),
            dialect=statement.dialect,
            filename=filename[:200],
            rows=len(statement.rows),
            matched=result.matched,
            ours_fen=result.ours_fen,
            theirs_fen=result.theirs_fen,
            summary_count=statement.summary.count,
            summary_amount_fen=statement.summary.amount_fen,
            summary_fee_fen=statement.summary.fee_fen,
            imported_by=caller.user_id,
            imported_at=self._clock(),
        )
        uow.session.add(row)
        uow.session.flush()
        lines = [
            {
                "import_id": row.id,
                "line": r.line,
                "partner": partner,
                "business_day": shanghai_day(r.at).isoformat(),
                "at": r.at.astimezone(dt.UTC),
                "partner_ref": r.partner_ref[:64],
                "reference": r.reference[:100],
                "kind": r.kind,
                "status": r.status,
                "amount_fen": r.amount_fen,
                "fee_fen": r.fee_fen,
            }
            for r in statement.rows
        ]
        for start in range(0, len(lines), 5_000):
            uow.session.execute(insert(StatementLine), lines[start : start + 5_000])
        imported = _imported_days(uow, partner)
        breaks = [_break_row(b, row.id, partner, day, imported) for b in result.breaks]
        for start in range(0, len(breaks), 5_000):
            uow.session.execute(insert(ReconciliationBreak), breaks[start : start + 5_000])
        return row

    # --- reading --------------------------------------------------------------------------------

    def report(self, caller: Principal, import_id: str) -> Report:
        require_operator(caller)
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(StatementImport, import_id)
            if row is None:
                raise InputError("no such statement import", key="error.reconcile.no_import")
            return report_of(uow, row, stored=False)

    def imports(self, caller: Principal, limit: int = 50) -> list[StatementImport]:
        require_operator(caller)
        with UnitOfWork(self._engine) as uow:
            query = select(StatementImport).order_by(col(StatementImport.imported_at).desc()).limit(limit)
            return list(uow.session.exec(query).all())

    def open_breaks(self, caller: Principal, partner: str | None = None) -> list[BreakView]:
        require_operator(caller)
        with UnitOfWork(self._engine) as uow:
            query = select(ReconciliationBreak).where(ReconciliationBreak.status == BreakStatus.OPEN.value)
            if partner:
                query = query.where(ReconciliationBreak.partner == partner)
            query = query.order_by(col(ReconciliationBreak.business_day), col(ReconciliationBreak.reference))
            return [break_view(row) for row in uow.session.exec(query.limit(1_000)).all()]

    def pending_corrections(self, caller: Principal) -> list[ApprovalView]:
        """Correcting entries asked for, waiting for a second operator."""
        require_operator(caller)
        return [r for r in self._approvals.pending(caller) if r.action is FourEyesAction.CORRECT_BREAK]

    # --- resolving ------------------------------------------------------------------------------

    def resolve(self, caller: Principal, break_id: str, resolution: str, note: str = "") -> BreakView:
        """An operator's resolution of a break that moves no money, with a reason."""
        require_operator(caller)
        if resolution not in RESOLUTIONS:
            raise InputError("choose a reason", key="error.reconcile.resolution", resolution=resolution[:24])
        note = _note(note, required=resolution == "other")
        with UnitOfWork(self._engine) as uow:
            row = _open_break(uow, break_id)
            self._close(uow, row, caller, resolution, note)
            uow.commit()
            uow.session.refresh(row)
            return break_view(row)

    def request_correction(self, caller: Principal, break_id: str, note: str) -> ApprovalView:
        """Ask for the correcting entry a break needs (a second operator agrees to it)."""
        require_operator(caller)
        note = _note(note, required=True)
        with UnitOfWork(self._engine) as uow:
            row = _open_break(uow, break_id)
            if row.recovery_id is None or row.kind not in _CORRECTABLE:
                raise InputError("this break moves no money of ours", key="error.reconcile.not_correctable")
        return self._approvals.request(caller, FourEyesAction.CORRECT_BREAK, break_id, {"note": note})

    def _correct_agreed(self, checker: Principal, maker: Principal, subject: str, detail: Any) -> None:
        """Post the correcting entry: the difference between what the partner moved and what our
        books say *now* (another statement's correction may have put it right already)."""
        require_operator(checker)
        with UnitOfWork(self._engine) as uow:
            row = _open_break(uow, subject)
            kind = call_kind(row.reference)
            if kind is None or row.recovery_id is None or row.theirs_fen is None:
                raise InputError("this break moves no money of ours", key="error.reconcile.not_correctable")
            booked = our_bookings(uow, row.partner, keys=[(kind, row.reference)])
            ours = next(iter(booked.values())).amount_fen if booked else (row.ours_fen or 0)
            entry: dict[str, str] = {}
            if ours != row.theirs_fen:
                now, entry_id = self._clock(), new_id()
                postings = correction(kind, ours, row.theirs_fen)
                for posting in postings:
                    uow.session.add(
                        LedgerPosting(
                            entry_id=entry_id,
                            recovery_id=row.recovery_id,
                            event=CORRECTION_EVENT,
                            account=posting.account.value,
                            amount_fen=posting.amount_fen,
                            at=now,
                        )
                    )
                entry = {
                    "entry_id": entry_id,
                    "amount_fen": str(row.theirs_fen - ours),
                    "accounts": ", ".join(f"{p.account.value} {p.amount_fen:+d}" for p in postings),
                }
                # on the recovery itself (its record's audit view), with the money it moved
                self._audit.append(
                    uow,
                    checker.user_id,
                    "ledger.correction",
                    row.recovery_id,
                    {
                        **entry,
                        "break": row.id,
                        "reference": row.reference,
                        "ours_fen": str(ours),
                        "theirs_fen": str(row.theirs_fen),
                        "requested_by": maker.user_id,
                    },
                )
            self._close(uow, row, checker, CORRECTED, str(detail.get("note", "")), maker=maker, entry=entry)
            uow.commit()

    def _close(
        self,
        uow: UnitOfWork,
        row: ReconciliationBreak,
        actor: Principal,
        resolution: str,
        note: str,
        maker: Principal | None = None,
        entry: dict[str, str] | None = None,
    ) -> None:
        row.status, row.resolution, row.note = BreakStatus.RESOLVED.value, resolution, note
        row.resolved_by, row.resolved_at = actor.user_id, self._clock()
        uow.session.add(row)
        detail = {
            "kind": row.kind,
            "reference": row.reference,
            "before": BreakStatus.OPEN.value,
            "after": BreakStatus.RESOLVED.value,
            "resolution": resolution,
            "note": note,
        }
        if maker is not None:
            detail["requested_by"] = maker.user_id
        if row.recovery_id is not None:
            detail["recovery_id"] = row.recovery_id
        detail |= entry or {}  # the correcting entry it booked: its id, the amount and the accounts
        self._audit.append(uow, actor.user_id, "break_resolved", row.id, detail)


#: The breaks a correcting entry puts right: both sides booked the call, with different amounts.
#: The others move no money of ours that an entry could fix; an operator resolves them with a reason.
_CORRECTABLE = {BreakKind.AMOUNT_MISMATCH.value}


def _note(note: str, *, required: bool) -> str:
    note = kept_words(note)
    if required and not note:
        raise InputError("say why", key="error.reconcile.note_required")
    if len(note) > _NOTE_MAX:
        raise InputError("the note is too long", key="error.reconcile.note_long", most=str(_NOTE_MAX))
    return note


def _open_break(uow: UnitOfWork, break_id: str) -> ReconciliationBreak:
    row = uow.session.get(ReconciliationBreak, str(break_id)[:36])
    if row is None:
        raise InputError("no such break", key="error.reconcile.no_break")
    if row.status != BreakStatus.OPEN.value:
        raise BreakClosed("this break is no longer open")
    return row


def read_statement(partner: str, data: bytes) -> Statement:
    """A statement in its partner's dialect (StatementError, naming the line, for any bad bytes)."""
    with collector_paused():  # a large file is a million plain objects
        return parse_statement(data, dialect_for(partner))


def compare(uow: UnitOfWork, partner: str, statement: Statement, day: dt.date) -> Matching:
    """`statement` against our books: what we booked on `day` for the partner's calls, what we
    booked on other days for the references it lists, and which of ours it leaves out that an
    earlier statement of the partner listed."""
    with collector_paused():
        ours_on_day = our_bookings(uow, partner, day=day)
        keys = {(r.kind, r.reference) for r in statement.rows}
        elsewhere = our_bookings(uow, partner, keys=keys - ours_on_day.keys())
        stated = _stated_before(uow, partner, {k for k in ours_on_day if k not in keys})
        return match(statement, ours_on_day, elsewhere, stated)


def _day_of(statement: Statement) -> dt.date:
    days = Counter(shanghai_day(r.at) for r in statement.rows)
    if not days:
        raise InputError("the statement has no rows: give its date", key="error.reconcile.date_needed")
    return days.most_common(1)[0][0]


def _stated_before(uow: UnitOfWork, partner: str, keys: set[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """Which of `keys` a statement of this partner imported earlier listed as done."""
    found: set[tuple[str, str]] = set()
    refs = sorted({ref for _, ref in keys})
    for start in range(0, len(refs), 2_000):
        query = select(StatementLine.kind, StatementLine.reference).where(
            StatementLine.partner == partner,
            col(StatementLine.reference).in_(refs[start : start + 2_000]),
            StatementLine.status == "success",
        )
        found.update((k, r) for k, r in uow.session.exec(query).all() if (k, r) in keys)
    return frozenset(found)


def _imported_days(uow: UnitOfWork, partner: str) -> set[str]:
    query = select(StatementImport.business_day).where(StatementImport.partner == partner).distinct()
    return set(uow.session.exec(query).all())


def _break_row(b: Break, import_id: str, partner: str, day: dt.date, imported: set[str]) -> dict[str, Any]:
    status = BreakStatus.OPEN
    if b.kind is BreakKind.TIMING:  # clears once the other day's statement is in (it may be already)
        other = {d.isoformat() for d in (b.our_day, b.their_day) if d is not None} - {day.isoformat()}
        if other & imported:
            status = BreakStatus.CLEARED
    return {
        "id": new_id(),
        "import_id": import_id,
        "partner": partner,
        "business_day": day.isoformat(),
        "kind": b.kind.value,
        "reference": b.reference[:100],
        "recovery_id": b.recovery_id,
        "ours_fen": b.ours_fen,
        "theirs_fen": b.theirs_fen,
        "our_day": b.our_day.isoformat() if b.our_day else None,
        "their_day": b.their_day.isoformat() if b.their_day else None,
        "status": status.value,
        "resolution": "",
        "note": "",
    }


def _clear(uow: UnitOfWork, partner: str, day: dt.date, statement: Statement, import_id: str) -> int:
    """Breaks of earlier imports that this statement settles: timing breaks waiting for this
    day, and rows missing from another day's statement that this one lists."""
    B = ReconciliationBreak
    iso = day.isoformat()
    base = (col(B.partner) == partner, col(B.status) == BreakStatus.OPEN.value, col(B.import_id) != import_id)
    timing = update(B).where(
        *base, col(B.kind) == BreakKind.TIMING.value, (col(B.our_day) == iso) | (col(B.their_day) == iso)
    )
    cleared = uow.session.execute(timing.values(status=BreakStatus.CLEARED.value)).rowcount or 0  # type: ignore[attr-defined]
    refs = sorted({r.reference for r in statement.rows if r.status == "success"})
    for start in range(0, len(refs), 2_000):
        missing = update(B).where(
            *base,
            col(B.kind) == BreakKind.MISSING_IN_STATEMENT.value,
            col(B.reference).in_(refs[start : start + 2_000]),
        )
        cleared += uow.session.execute(missing.values(status=BreakStatus.CLEARED.value)).rowcount or 0  # type: ignore[attr-defined]
    return cleared


__all__ = ["BreakClosed", "ReconciliationService", "Report", "compare", "read_statement"]
