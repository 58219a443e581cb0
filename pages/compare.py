"""Compare: every recovery channel for your number and balance, ranked, in real time."""

from __future__ import annotations

import streamlit as st

from core.errors import InputError
from core.i18n import local_time
from pages._ui import compare_view
from pages._ui.session import services, translator

TERMS_SHOWN = "terms_version"  # the terms version this tab's comparison was drawn with

svc = services()
quotes = svc.quotes
t = translator()

st.title(t("compare.title"))
st.caption(t("compare.intro"))
valuations = compare_view.valuation_defaults(quotes.terms())
compare_view.seed_from_url(valuations)


@st.fragment
def comparison() -> None:
    """Form and result rerun together, and alone: an input change redraws only this part."""
    st.session_state[TERMS_SHOWN] = quotes.terms().version  # even when the input is refused
    entered = compare_view.form(t, valuations)
    try:
        outcome = quotes.compare(entered.given)
    except InputError as error:
        st.error(t.error(error), icon=":material/error:")
        compare_view.forget_stale_link()
        return
    compare_view.render(outcome, entered, quotes, t, valuations)


@st.fragment(run_every=svc.settings.terms_refresh_s)
def live_terms() -> None:
    """Ask the feeds for news; if any channel's terms changed, redraw the comparison (no reload)."""
    quotes.refresh_in_background()
    terms = quotes.terms()
    if terms.version != st.session_state.get(TERMS_SHOWN):
        st.session_state[TERMS_SHOWN] = terms.version  # act once per new version, whatever follows
        st.toast(t("compare.terms_updated"), icon=":material/update:")
        st.rerun(scope="app")
    st.caption(t("compare.terms_checked", time=local_time(terms.checked_at or terms.oldest_confirmation())))


comparison()
live_terms()
