"""The review queue (operators): cases oldest first with what it takes to decide; claim one,
decide with a reason the owner reads in their language; requests waiting for a second operator."""

from __future__ import annotations

import streamlit as st

from pages._ui import actions, console_view
from pages._ui.auth import console_page
from pages._ui.plain_text import plain
from pages._ui.session import channel_names

svc, t, who = console_page("queue.title", notice=True)
overview = svc.queue.overview(who)
cases, requests = overview.cases, overview.requests
st.caption(console_view.queue_summary(cases, overview.waiting, requests, overview.service_s, t))

waiting_for_me = [r for r in requests if r.requested_by_id != who.user_id]
if waiting_for_me:
    st.subheader(t("queue.requests"))
    for request in waiting_for_me:
        with st.container(border=True):
            st.markdown(console_view.request_line(request, t))
            actions.agree_or_refuse(
                t,
                request.id,
                lambda r=request: svc.approvals.agree(who, r.id),
                lambda r=request: svc.approvals.refuse(who, r.id),
                ("queue.agree", "queue.refuse"),
                ("queue.agreed", "queue.refused"),
            )

st.subheader(t("queue.cases", count=len(cases)))
if not cases:
    st.info(t("queue.empty"), icon=":material/task_alt:")
names = channel_names(t)
for case in cases:
    with st.container(border=True):
        st.markdown(console_view.case_heading(case, names, t))
        st.markdown(console_view.case_details(case, t))
        if case.same_number:
            st.warning(console_view.same_number_warning(case, names, t), icon=":material/warning:")
        if case.request is not None:
            st.info(t("queue.awaiting_second", name=plain(case.request.requested_by)), icon=":material/group:")
        elif case.claim is not None and not case.claim.mine:
            until = console_view.clock_time(case.claim.expires_at)
            st.caption(t("queue.held_by", name=plain(case.claim.holder), until=until))
        elif case.claim is None:
            st.button(
                t("queue.claim"),
                key=f"claim_{case.view.id}",
                on_click=actions.act,
                args=(t, lambda c=case: svc.queue.claim(who, c.view.id), "queue.claimed"),
            )
        else:
            with st.form(f"decide_{case.view.id}", border=False):
                choice = st.selectbox(
                    t("queue.decision"), console_view.DECISIONS, format_func=lambda d: console_view.decision_label(d, t)
                )
                note = st.text_area(t("queue.note"), max_chars=300, height=68)
                decided = st.form_submit_button(t("queue.decide"), type="primary")
            if decided:
                approve, reason = choice
                actions.act(
                    t,
                    lambda c=case, a=approve, r=reason, n=note: console_view.decision_message(
                        svc.queue.decide(who, c.view.id, approve=a, reason=r, note=n)
                    ),
                    "queue.decided",
                )
                st.rerun()
            st.button(
                t("queue.release"),
                key=f"release_{case.view.id}",
                on_click=actions.act,
                args=(t, lambda c=case: svc.queue.release(who, c.view.id), "queue.released"),
            )
