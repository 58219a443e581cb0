"""Tables for the pages: quotes as rows in the user's language."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from core.domain.quotes import ChannelQuote, Comparison, transaction_size
from core.i18n import Translator
from core.money import PPM, format_fen, format_ppm_percent
from core.services.quoting import LiveTerms
from pages._ui.frame import local_time

#: Column order: what a reader needs first (what they get, when, and why not) on the left.
COLUMNS = (
    "rank",
    "channel",
    "net",
    "eta",
    "note",
    "form",
    "fee",
    "hidden",
    "rate",
    "recoverable",
    "transactions",
    "terms",
)


def eta_text(quote: ChannelQuote, t: Translator) -> str:
    if quote.eta_earliest is None or quote.eta_latest is None:
        return ""
    text = t.date(quote.eta_earliest)
    if quote.eta_latest != quote.eta_earliest:
        text = t("eta.range", first=text, last=t.date(quote.eta_latest))
    return text + (" *" if quote.eta_estimated else "")


def limits_note(quote: ChannelQuote, comparison: Comparison, t: Translator) -> str:
    """Which limits shaped this quote: a split into several transactions, balance left behind."""
    request = comparison.request
    notes = []
    if quote.transactions > 1:
        size = transaction_size(quote.channel, request.credit_limit_fen)
        notes.append(t("note.split", count=quote.transactions, size_fen=size))
    if quote.recoverable_fen < request.balance_fen:
        notes.append(t("note.kept", kept_fen=request.balance_fen - quote.recoverable_fen))
    return "; ".join(notes)


def _row(quote: ChannelQuote, comparison: Comparison, t: Translator, confirmed: str) -> dict[str, str]:
    form = t(f"payout_form.{quote.channel.payout_form.value}")
    row = {"channel": quote.channel.display_name(t.language), "form": form, "terms": confirmed}
    if not quote.eligible:
        return {**row, "rank": "—", "net": "—", "note": t.reason(quote.reason)}
    if quote.payout_value_ppm != PPM:
        row["form"] = f"{form} ({format_ppm_percent(quote.payout_value_ppm)})"
    return {
        **row,
        "rank": str(quote.rank),
        "net": format_fen(quote.net_fen),
        "eta": eta_text(quote, t),
        "note": limits_note(quote, comparison, t),
        "fee": format_fen(quote.fee_fen),
        "hidden": format_fen(quote.hidden_cost_fen),
        "rate": format_ppm_percent(quote.effective_rate_ppm or 0),
        "recoverable": format_fen(quote.recoverable_fen),
        "transactions": str(quote.transactions),
    }


def comparison_table(comparison: Comparison, t: Translator, terms: LiveTerms) -> pd.DataFrame:
    """One row per channel; the last column says when that channel's terms were last confirmed."""
    confirmed = {ct.channel.id: local_time(ct.confirmed_at) for ct in terms.by_channel}
    rows = [_row(q, comparison, t, confirmed[q.channel.id]) for q in comparison.quotes]
    frame = pd.DataFrame(rows, columns=list(COLUMNS)).fillna("")
    return frame.rename(columns={c: t(f"col.{c}") for c in COLUMNS})


def grey_out_ineligible(frame: pd.DataFrame, comparison: Comparison) -> Styler:
    eligible = [q.eligible for q in comparison.quotes]

    def style(row: pd.Series) -> list[str]:
        return [""] * len(row) if eligible[row.name] else ["color: #a0a0a0"] * len(row)

    return frame.style.apply(style, axis=1)


def column_widths(t: Translator) -> dict[str, st.column_config.Column]:
    """Room for the columns a reader needs whole: the arrival window and why a channel is out."""
    return {
        t("col.rank"): st.column_config.TextColumn(width="small"),
        t("col.eta"): st.column_config.TextColumn(width="medium"),
        t("col.note"): st.column_config.TextColumn(width="large"),
    }
