"""The books (operators and admins): the trial balance as at a Beijing day, each account's balance
day by day over a period, and that period's books to download as beancount or CSV (audited)."""

from __future__ import annotations

import streamlit as st

from core.errors import PortalError
from pages._ui import books_view, metrics_view
from pages._ui.auth import console_page

svc, t, who = console_page("books.title")

st.caption(t("books.intro"))
first, last = metrics_view.default_period()
at = st.date_input(t("books.at"), value=last, max_value=last, key="books_at")
try:
    books_view.show_trial_balance(svc.books.trial_balance(who, at), t)
except PortalError as error:
    st.error(t(error.key, **error.params))

st.subheader(t("books.over_time"))
period = st.date_input(t("books.period"), value=(first, last), max_value=last, key="books_period")
if not isinstance(period, tuple) or len(period) != 2:  # the second day not picked yet
    st.info(t("books.pick_end"), icon=":material/date_range:")
    st.stop()
start, end = period
try:
    balances = svc.books.balances_over_time(who, start, end)
except PortalError as error:
    st.error(t(error.key, **error.params))
    st.stop()
books_view.show_balances(balances, t)
books_view.export_buttons(svc.books, who, start, end, t)
