"""The audit trail (operators and admins): verify the hash chain on demand (naming the first
broken record), search by subject and/or actor a page at a time, newest first, and export the
search as CSV (the export itself is audited)."""

from __future__ import annotations

import json

import streamlit as st

from core.errors import PortalError
from core.i18n import local_time
from pages._ui.auth import console_page
from pages._ui.plain_text import plain

SEARCH, PAGE, EXPORT = "audit_query", "audit_page", "audit_csv"

svc, t, who = console_page("audit.title")

st.caption(t("audit.intro"))
if st.button(t("audit.verify"), icon=":material/verified:"):
    check = svc.audit.verify(who)
    if check.broken is None:
        st.success(t("audit.verified", count=check.checked))
    else:
        st.error(t("audit.broken", seq=check.broken, count=check.checked))

with st.form("audit_search"):
    left, right = st.columns(2)
    subject = left.text_input(t("audit.subject"), max_chars=80, help=t("audit.subject_help"))
    actor = right.text_input(t("audit.actor"), max_chars=80, help=t("audit.actor_help"))
    searched = st.form_submit_button(t("audit.search"), type="primary")
if searched:
    st.session_state[SEARCH] = (subject, actor)
    st.session_state[PAGE] = 0
    st.session_state.pop(EXPORT, None)

subject, actor = st.session_state.get(SEARCH, ("", ""))
page_number = st.session_state.get(PAGE, 0)
try:
    page = svc.audit.search(who, subject=subject, actor=actor, page=page_number)
except PortalError as error:
    st.error(t(error.key, **error.params))
    st.stop()

if subject or actor:
    st.caption(t("audit.searching", subject=plain(subject) if subject else "—", actor=plain(actor) if actor else "—"))
if not page.entries:
    st.info(t("audit.none"), icon=":material/search_off:")
else:
    st.dataframe(
        [
            {
                t("audit.col.seq"): e.seq,
                t("audit.col.at"): local_time(e.at),
                t("audit.col.actor"): e.actor,
                t("audit.col.action"): e.action,
                t("audit.col.subject"): e.subject,
                t("audit.col.detail"): json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else "",
            }
            for e in page.entries
        ],
        hide_index=True,
        width="stretch",
    )
    earlier, later, where = st.columns([1, 1, 4])
    if page.page > 0 and earlier.button(t("audit.newer")):
        st.session_state[PAGE] = page.page - 1
        st.rerun()
    if page.has_next and later.button(t("audit.older")):
        st.session_state[PAGE] = page.page + 1
        st.rerun()
    where.caption(t("audit.page", page=page.page + 1))
    if st.button(t("audit.export"), icon=":material/download:"):
        try:
            st.session_state[EXPORT] = svc.audit.export(who, subject=subject, actor=actor)
        except PortalError as error:
            st.error(t(error.key, **error.params))
    if EXPORT in st.session_state:
        st.download_button(t("audit.download"), st.session_state[EXPORT], "audit.csv", "text/csv")
