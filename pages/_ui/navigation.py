"""Which pages a visitor is offered, and what a page they may not open says instead."""

from __future__ import annotations

import streamlit as st

from core.i18n import Translator

MENU_KEY = "_menu"  # the titles of this run's menu, in order


def access_notice(t: Translator, what: str, page_title: str) -> None:
    """What a page the visitor may not open says instead of its content: sign in first, or this
    page is for another kind of account. Nothing of the page itself is read or shown."""
    st.title(page_title)
    st.info(t(f"access.needs_{what}", page=page_title), icon=":material/lock:")
    if what == "sign_in":
        st.page_link("pages/sign_in.py", label=t("nav.sign_in"), icon=":material/login:")
    st.page_link("pages/compare.py", label=t("nav.compare"), icon=":material/compare_arrows:")
