"""Stuck recoveries (operators): what is past its channel's promise or waits on a partner call
with an unknown outcome, and what is safe to do — ask the partner, retry now, or ask a second
operator to agree to a manual resolution."""

from __future__ import annotations

import streamlit as st

from core.errors import PortalError
from core.services.console.stuck import ASKS, RESOLUTIONS
from pages._ui import recoveries_view as rv
from pages._ui.auth import console_page
from pages._ui.session import channel_names

svc, t, who = console_page("stuck.title")

names = channel_names(t)
cases = svc.stuck.stuck(who)
if not cases:
    st.info(t("stuck.none"), icon=":material/task_alt:")
else:
    st.caption(t("stuck.count", count=len(cases)))
for case in cases:
    with st.container(border=True):
        st.markdown(rv.stuck_heading(case, names, t))
        for part in case.parts:
            st.markdown(rv.stuck_line(part, t))
            row = st.container(horizontal=True)
            if part.state in ASKS and row.button(t("detail.ask", part=part.part), key=f"ask_{part.id}"):
                try:
                    st.info(rv.answer_line(svc.stuck.ask_partner(who, part.id), part.part, t))
                except PortalError as error:
                    st.warning(t(error.key, **error.params))
            if row.button(t("stuck.retry"), key=f"retry_{part.id}"):
                try:
                    done = svc.stuck.retry_now(who, part.id)
                    (st.success if done else st.info)(t("stuck.retried" if done else "stuck.nothing_to_retry"))
                except PortalError as error:
                    st.error(t(error.key, **error.params))
            fitting = [a for a, (state, _) in RESOLUTIONS.items() if state is part.state]
            if not fitting:
                continue
            with st.expander(t("stuck.resolve")), st.form(f"resolve_{part.id}", border=False):
                action = st.selectbox(
                    t("stuck.action"),
                    fitting,
                    format_func=lambda a: t(f"stuck.action.{a.value}"),
                    help=t("stuck.action_help"),
                )
                note = st.text_input(t("stuck.note"), max_chars=200)
                if st.form_submit_button(t("stuck.request"), type="primary"):
                    try:
                        svc.stuck.request_resolution(who, part.id, action, note)
                    except PortalError as error:
                        st.error(t(error.key, **error.params))
                    else:
                        st.success(t("stuck.requested"))
