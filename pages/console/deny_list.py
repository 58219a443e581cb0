"""The deny list (operators): what is on it, shown masked; add an entry; ask for one to come off,
which a second operator agrees to (here, in the review queue, or on the command line)."""

from __future__ import annotations

import streamlit as st

from core.services.risk import DENY_KINDS
from pages._ui import actions
from pages._ui.auth import console_page
from pages._ui.footer import local_time
from pages._ui.plain_text import plain

svc, t, who = console_page("deny.title", notice=True)

st.caption(t("deny.intro"))
entries = svc.deny_list.entries(who)
# The removals waiting for a second operator (each entry carries its own), oldest request first.
removals = sorted(
    ((e.removal, e) for e in entries if e.removal is not None), key=lambda pending: pending[0].requested_at
)

if removals:
    st.subheader(t("deny.removals", count=len(removals)))
    for request, entry in removals:
        with st.container(border=True):
            st.markdown(
                t(
                    "deny.removal_line",
                    ref=request.subject[:8],
                    kind=t(f"deny.kind.{request.detail.get('kind', 'user')}"),
                    display=plain(request.detail.get("display", entry.display)),
                    name=plain(request.requested_by),
                    note=plain(request.detail.get("note", "—")),
                    until=local_time(request.expires_at),
                )
            )
            if request.requested_by_id == who.user_id:
                st.caption(t("deny.removal_mine"))
                st.button(
                    t("deny.withdraw"),
                    key=f"withdraw_{request.id}",
                    on_click=actions.act,
                    args=(t, lambda r=request: svc.deny_list.refuse(who, r.id), "deny.withdrawn"),
                )
            else:
                actions.agree_or_refuse(
                    t,
                    request.id,
                    lambda r=request: svc.deny_list.agree(who, r.id),
                    lambda r=request: svc.deny_list.refuse(who, r.id),
                    ("deny.agree", "deny.refuse"),
                    ("deny.removed", "deny.refused"),
                )

st.subheader(t("deny.entries", count=len(entries)))
if not entries:
    st.info(t("deny.empty"), icon=":material/check_circle:")
else:
    st.dataframe(
        [
            {
                t("deny.col.ref"): e.ref[:8],
                t("deny.col.kind"): t(f"deny.kind.{e.kind}"),
                t("deny.col.display"): e.display,
                t("deny.col.reason"): e.reason,
                t("deny.col.added_by"): e.added_by,
                t("deny.col.added_at"): local_time(e.added_at),
                t("deny.col.removal"): t("deny.removal_pending", name=e.removal.requested_by) if e.removal else "",
            }
            for e in entries
        ],
        hide_index=True,
        width="stretch",
    )

with st.form("deny_add", clear_on_submit=True):
    st.markdown(f"**{t('deny.add_title')}**")
    kind = st.selectbox(t("deny.kind"), DENY_KINDS, format_func=lambda k: t(f"deny.kind.{k}"))
    value = st.text_input(t("deny.value"), max_chars=200, help=t("deny.value_help"))
    reason = st.text_input(t("deny.reason"), max_chars=200)
    added = st.form_submit_button(t("deny.add"), type="primary")
if added:
    actions.act(t, lambda: svc.deny_list.add(who, kind, value, reason), "deny.added")
    st.rerun()

removable = [e for e in entries if e.removal is None]
if removable:
    with st.form("deny_remove", clear_on_submit=True):
        st.markdown(f"**{t('deny.remove_title')}**")
        picked = st.selectbox(
            t("deny.entry"),
            range(len(removable)),
            format_func=lambda i: (
                f"{removable[i].ref[:8]} · {t(f'deny.kind.{removable[i].kind}')} · {removable[i].display}"
            ),
        )
        why = st.text_input(t("deny.remove_reason"), max_chars=200)
        asked = st.form_submit_button(t("deny.request_removal"))
    if asked and picked is not None:
        actions.act(t, lambda: svc.deny_list.request_removal(who, removable[picked].key, why), "deny.requested")
        st.rerun()
