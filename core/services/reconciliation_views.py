"""What an import of a statement found, as the page, the command line and its JSON show it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from core.persistence.tables import ReconciliationBreak, StatementImport
from core.persistence.uow import UnitOfWork


@dataclass(frozen=True)
class BreakView:
    id: str
    kind: str
    reference: str
    ours_fen: int | None
    theirs_fen: int | None
    our_day: str | None
    their_day: str | None
    status: str
    resolution: str
    resolved_by: str | None = None  # the operator's account id

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "reference": self.reference,
            "ours_fen": self.ours_fen,
            "theirs_fen": self.theirs_fen,
            "our_day": self.our_day,
            "their_day": self.their_day,
            "status": self.status,
            "resolution": self.resolution or None,
        }


@dataclass(frozen=True)
class Report:
    import_id: str
    partner: str
    day: str
    dialect: str
    sha256: str
    stored: bool  # False: these bytes were imported before, and this is that import's report
    rows: int
    matched: int
    ours_fen: int
    theirs_fen: int
    summary_count: int
    summary_amount_fen: int
    summary_fee_fen: int
    breaks: tuple[BreakView, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "partner": self.partner,
            "date": self.day,
            "dialect": self.dialect,
            "sha256": self.sha256,
            "stored": self.stored,
            "rows": self.rows,
            "matched": self.matched,
            "breaks": [b.as_dict() for b in self.breaks],
            "totals": {
                "ours_fen": self.ours_fen,
                "theirs_fen": self.theirs_fen,
                "statement_summary": {
                    "count": self.summary_count,
                    "amount_fen": self.summary_amount_fen,
                    "fee_fen": self.summary_fee_fen,
                },
            },
        }


def break_view(row: ReconciliationBreak) -> BreakView:
    return BreakView(
        row.id,
        row.kind,
        row.reference,
        row.ours_fen,
        row.theirs_fen,
        row.our_day,
        row.their_day,
        row.status,
        row.resolution,
        row.resolved_by,
    )


def report_of(uow: UnitOfWork, row: StatementImport, *, stored: bool) -> Report:
    query = (
        select(ReconciliationBreak)
        .where(ReconciliationBreak.import_id == row.id)
        .order_by(col(ReconciliationBreak.kind), col(ReconciliationBreak.reference))
    )
    breaks = tuple(break_view(b) for b in uow.session.exec(query).all())
    return Report(
        import_id=row.id,
        partner=row.partner,
        day=row.business_day,
        dialect=row.dialect,
        sha256=row.sha256,
        stored=stored,
        rows=row.rows,
        matched=row.matched,
        ours_fen=row.ours_fen,
        theirs_fen=row.theirs_fen,
        summary_count=row.summary_count,
        summary_amount_fen=row.summary_amount_fen,
        summary_fee_fen=row.summary_fee_fen,
        breaks=breaks,
    )
