"""How the Reconciliation page shows an import's report and the breaks (amounts in yuan)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.i18n import Translator
from core.money import format_fen
from core.services.reconciliation_views import BreakView, Report


def _yuan(fen: int | None) -> str:
    return format_fen(fen) if fen is not None else "—"


def report_summary(report: Report, t: Translator) -> list[tuple[str, str]]:
    return [
        (t("recon.rows"), str(report.rows)),
        (t("recon.matched"), str(report.matched)),
        (t("recon.breaks"), str(len(report.breaks))),
        (t("recon.ours"), _yuan(report.ours_fen)),
        (t("recon.theirs"), _yuan(report.theirs_fen)),
    ]


def break_rows(breaks: Iterable[BreakView], t: Translator) -> list[dict[str, Any]]:
    return [
        {
            t("recon.col.kind"): t(f"break.{b.kind}"),
            t("recon.col.reference"): t("recon.summary_rows") if b.kind == "summary_mismatch" else b.reference or "—",
            t("recon.col.ours"): _yuan(b.ours_fen),
            t("recon.col.theirs"): _yuan(b.theirs_fen),
            t("recon.col.our_day"): b.our_day or "—",
            t("recon.col.their_day"): b.their_day or "—",
            t("recon.col.status"): t(f"recon.status.{b.status}"),
        }
        for b in breaks
    ]
