"""The footer under every page: how fresh the terms are, what the portal is not."""

from __future__ import annotations

import streamlit as st

from core.i18n import Translator, local_time
from pages._ui.session import services


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
