"""The frame around every page: the footer with data freshness, and the notice a page gives
when the visitor may not open it."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core.domain.calendar import SHANGHAI
from core.i18n import Translator
from pages._ui.state import services

MENU_KEY = "_menu"  # the titles of this run's menu, in order


def access_notice(t: Translator, what: str, page_title: str) -> None:
    """What a page the visitor may not open says instead of its content: sign in first, or this
    page is for another kind of account. Nothing of the page itself is read or shown."""
    st.title(page_title)
    st.info(t(f"access.needs_{what}", page=page_title), icon=":material/lock:")
    if what == "sign_in":
        st.page_link("pages/sign_in.py", label=t("nav.sign_in"), icon=":material/login:")
    st.page_link("pages/compare.py", label=t("nav.compare"), icon=":material/compare_arrows:")


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
