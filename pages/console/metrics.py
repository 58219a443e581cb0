"""Operations metrics (staff: analysts, operators, admins): a period of Beijing days (the last 30
by default), the headline figures refreshed every minute, the charts by day, channel and carrier."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core.errors import PortalError
from pages._ui import metrics_view
from pages._ui.auth import console_page, fragment_signed_in
from pages._ui.session import channel_names

REFRESH = dt.timedelta(minutes=1)

svc, t, who = console_page("metrics.title", lambda w: w.is_staff)

first, last = metrics_view.default_period()
period = st.date_input(t("metrics.period"), value=(first, last), max_value=last, key="metrics_period")
if not isinstance(period, tuple) or len(period) != 2:  # the second day not picked yet
    st.info(t("metrics.pick_end"), icon=":material/date_range:")
    st.stop()
start, end = period
names = channel_names(t)


@st.fragment(run_every=REFRESH)
def figures() -> None:
    """The figures, again every minute (the queue and stuck counts move while one watches)."""
    fragment_signed_in()  # reruns alone: the frame does not check the sign-in
    try:
        metrics = svc.metrics.metrics(who, start, end)
    except PortalError as error:
        st.error(t(error.key, **error.params))
        return
    metrics_view.show_headlines(metrics, t)
    metrics_view.show_charts(metrics, names, t)


figures()
