"""Recoveries (operators): search every recovery with filters a link reproduces, page through
them, open one's whole record, ask its partner, export what the filters select."""

from __future__ import annotations

import streamlit as st

from core.domain.carriers import Carrier
from core.domain.recovery import RecoveryState
from core.errors import PortalError
from core.money import parse_amount
from core.services.console.recoveries import RecoveryFilter
from pages._ui import recoveries_view as rv
from pages._ui.auth import console_page
from pages._ui.session import channel_names

svc, t, who = console_page("search.title")

names = channel_names(t)
wanted = rv.filter_from_url(st.query_params)
linked = rv.filter_to_url(wanted)  # the amounts as the link carries them, to fill the form


def amount(text: str) -> int | None:
    return parse_amount(text) if text.strip() else None


with st.form("filters"):
    st.markdown(f"**{t('search.filters')}**")
    a, b, c = st.columns(3)
    rid = a.text_input(t("search.id"), value=wanted.recovery_id, max_chars=36)
    ref = b.text_input(t("search.reference"), value=wanted.reference, max_chars=48)
    phone = c.text_input(t("search.phone"), value="", max_chars=20, placeholder="1xxxxxxxxxx")
    if wanted.number_index:
        st.caption(t("search.number_given"))
    a, b, c = st.columns(3)
    states = ["", *(s.value for s in RecoveryState)]
    state = a.selectbox(
        t("search.state"),
        states,
        index=states.index(wanted.state) if wanted.state in states else 0,
        format_func=lambda s: t(f"state.{s}") if s else t("search.any"),
    )
    channels = ["", *names]
    channel = b.selectbox(
        t("search.channel"),
        channels,
        index=channels.index(wanted.channel) if wanted.channel in channels else 0,
        format_func=lambda c: names.get(c, t("search.any")),
    )
    carriers = ["", *(c.value for c in Carrier)]
    carrier = c.selectbox(
        t("search.carrier"),
        carriers,
        index=carriers.index(wanted.carrier) if wanted.carrier in carriers else 0,
        format_func=lambda c: t(f"carrier.{c}") if c else t("search.any"),
    )
    a, b, c, d = st.columns(4)
    low = a.text_input(t("search.min"), value=linked.get("min", ""))
    high = b.text_input(t("search.max"), value=linked.get("max", ""))
    start = c.date_input(t("search.from"), value=wanted.date_from, format="YYYY-MM-DD")
    end = d.date_input(t("search.to"), value=wanted.date_to, format="YYYY-MM-DD")
    applied = st.form_submit_button(t("search.apply"), type="primary")

if applied:
    try:
        index = svc.recovery_search.number_index(who, phone) if phone.strip() else wanted.number_index
        asked = RecoveryFilter(
            rid.strip(),
            ref.strip(),
            index,
            state,
            channel,
            carrier,
            amount(low),
            amount(high),
            start or None,
            end or None,
        )
        svc.recovery_search.search(who, asked, limit=1)  # refuse unusable filters before they reach the link
    except PortalError as error:  # said once; the results of the address's filters stay below
        st.error(t(error.key, **error.params))
    else:
        st.query_params.from_dict(rv.filter_to_url(asked))
        st.rerun()
if st.button(t("search.clear")):
    st.query_params.clear()
    st.rerun()

try:
    page = svc.recovery_search.search(who, wanted, after=rv.cursor_from_url(st.query_params.get("after", "")))
except PortalError as error:
    st.error(t(error.key, **error.params))
    st.stop()

if not page.views:
    st.info(t("search.none"), icon=":material/search_off:")
else:
    st.caption(t("search.pick"))
    picked = st.dataframe(
        rv.rows(page, names, t),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="results",
    )
    if picked.selection.rows:
        st.query_params["view"] = page.views[picked.selection.rows[0]].id
    first, following, _ = st.columns([1, 1, 4])
    if "after" in st.query_params and first.button(t("search.first")):
        del st.query_params["after"]
        st.rerun()
    if page.next is not None and following.button(t("search.next")):
        st.query_params["after"] = rv.cursor_to_url(page.next)
        st.rerun()
    selection = sorted(rv.filter_to_url(wanted).items())  # an export is of these filters only
    if st.button(t("search.export")):
        st.session_state["export_csv"] = (selection, svc.recovery_search.export_csv(who, wanted))
    made = st.session_state.get("export_csv")
    if made is not None and made[0] == selection:
        st.download_button(t("search.download"), made[1], "recoveries.csv", "text/csv")

shown = st.query_params.get("view", "")
if shown:
    try:
        detail = svc.recovery_search.detail(who, shown[:36])
    except PortalError as error:
        st.error(t(error.key, **error.params))
    else:
        st.divider()
        st.subheader(t("detail.title", id=detail.view.id[:8]))
        st.markdown(rv.summary(detail, names, t))
        for part in detail.view.parts:
            if st.button(t("detail.ask", part=part.part), key=f"ask_{part.id}"):
                try:
                    st.info(rv.answer_line(svc.stuck.ask_partner(who, part.id), part.part, t))
                except PortalError as error:
                    st.warning(t(error.key, **error.params))
        rv.show_tables(rv.record_tables(detail, t), t)
        if st.button(t("detail.close")):
            del st.query_params["view"]
            st.rerun()
