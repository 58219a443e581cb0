"""How the console shows the books, in the reader's language: the trial balance as a table (yuan,
two decimals) with its total, each account's balance day by day as one line each, and the
period's exports as download buttons (each download one audited service call)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.domain.access import Principal
from core.i18n import Translator
from core.money import FEN_PER_YUAN, format_fen
from core.services.books import BalancesOverTime, BooksService, TrialBalance
from pages._ui.auth import while_signed_in
from pages._ui.charts import CHART_CONFIG, CONSOLE_LEGEND, CONSOLE_MARGIN, PALETTE

#: The downloads: format, label key, file suffix, MIME type.
EXPORTS = (
    ("beancount", "books.download_beancount", "beancount", "text/plain"),
    ("csv", "books.download_csv", "csv", "text/csv"),
)


def yuan_text(fen: int) -> str:
    """1,234.50 / -1,234.50: yuan with two decimals."""
    return format_fen(fen, symbol="")


def account_label(account: str, t: Translator) -> str:
    """An account's name in the reader's language, and its ledger name; an account the portal
    has no words for yet shows as the ledger names it."""
    key = f"books.account.{account}"
    return f"{t(key)} ({account})" if key in t.messages else account


def trial_balance_table(trial: TrialBalance, t: Translator) -> pd.DataFrame:
    """One row per account and a last row with the totals (the balances' total is zero)."""
    rows = [
        (account_label(a.account, t), yuan_text(a.debits_fen), yuan_text(a.credits_fen), yuan_text(a.balance_fen))
        for a in trial.accounts
    ]
    debits = sum(a.debits_fen for a in trial.accounts)
    credits = sum(a.credits_fen for a in trial.accounts)
    rows.append((t("books.total"), yuan_text(debits), yuan_text(credits), yuan_text(trial.total_fen)))
    columns = [t("books.col.account"), t("books.col.debits"), t("books.col.credits"), t("books.col.balance")]
    return pd.DataFrame(rows, columns=columns)


def show_trial_balance(trial: TrialBalance, t: Translator) -> None:
    st.subheader(t("books.trial_balance"))
    if not trial.accounts:
        st.info(t("books.empty"), icon=":material/account_balance:")
        return
    st.dataframe(trial_balance_table(trial, t), hide_index=True, width="stretch")
    if trial.total_fen == 0:
        st.success(t("books.total_zero"), icon=":material/balance:")
    else:
        st.error(t("books.total_off", total_fen=trial.total_fen))


def balances_figure(balances: BalancesOverTime, t: Translator) -> go.Figure:
    """Each account's balance at the end of each Beijing day, in yuan: one line per account."""
    days = [day.isoformat() for day in balances.days]
    lines = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": account_label(account, t),
            "x": days,
            "y": [fen / FEN_PER_YUAN for fen in values],  # drawn, never added up
            "line": {"color": PALETTE[i % len(PALETTE)]},
        }
        for i, (account, values) in enumerate(balances.balances.items())
    ]
    return go.Figure(
        {
            "data": lines,
            "layout": {
                "title": {"text": t("books.chart.title"), "font": {"size": 15}},
                "margin": CONSOLE_MARGIN,
                "legend": CONSOLE_LEGEND,
                "xaxis": {"type": "date", "tickformat": "%m-%d"},
                "yaxis": {"title": {"text": t("books.chart.yuan")}, "automargin": True},
                "height": 380,
            },
        }
    )


def show_balances(balances: BalancesOverTime, t: Translator) -> None:
    if not balances.balances:
        st.info(t("books.empty"), icon=":material/show_chart:")
        return
    st.plotly_chart(balances_figure(balances, t), width="stretch", config=CHART_CONFIG)


def export_buttons(books: BooksService, who: Principal, start: dt.date, end: dt.date, t: Translator) -> None:
    """A download button per format: the export is made (and audited) when it is clicked."""
    st.markdown(f"**{t('books.export')}**")
    row = st.container(horizontal=True)
    for fmt, label, suffix, mime in EXPORTS:
        row.download_button(
            t(label),
            while_signed_in(_exporter(books, who, fmt, start, end)),  # made on the click, outside a page run
            f"books-{start.isoformat()}-{end.isoformat()}.{suffix}",
            mime,
            key=f"books_export_{fmt}",
            on_click="ignore",
            icon=":material/download:",
            help=t("books.export_help"),
        )


def _exporter(books: BooksService, who: Principal, fmt: str, start: dt.date, end: dt.date) -> Callable[[], str]:
    def export() -> str:
        return books.export(who, fmt, start, end)

    return export
