"""The footer under every page (how fresh the terms are, what the portal is not), and times
shown the way every page shows them (Asia/Shanghai)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core.domain.calendar import SHANGHAI
from core.i18n import Translator
from pages._ui.session import services


def local_time(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def footer(t: Translator) -> None:
    quotes = services().quotes
    terms = quotes.terms()
    st.divider()
    st.caption(
        t(
            "footer.freshness",
            time=local_time(terms.checked_at or terms.oldest_confirmation()),
            as_of=terms.as_of.isoformat(),
            year=max(quotes.calendar.schedules),
        )
        + "  \n"
        + t("footer.disclaimer")
    )
