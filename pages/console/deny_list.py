"""The deny list (operators): what is on it, shown masked; add an entry; ask for one to come off,
which a second operator agrees to (here, in the review queue, or on the command line)."""

from __future__ import annotations

import streamlit as st

from core.i18n import local_time
from core.services.risk import DENY_KINDS
from pages._ui import actions
from pages._ui.auth import console_page
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


def add_entry() -> None:
    """The Add button's callback: it runs before the page, whole, so a second click while the page
    is drawn again cannot cut it short; the fields empty only once the entry is on the list."""
    state = st.session_state

    def add() -> str:
        entry = svc.deny_list.add(who, state["deny_kind"], state["deny_value"], state["deny_reason"])
        return "deny.already" if entry.was_listed else "deny.added"

    if actions.act(t, add, "deny.added") is not None:
        state["deny_value"] = state["deny_reason"] = ""


with st.form("deny_add"):
    st.markdown(f"**{t('deny.add_title')}**")
    st.selectbox(t("deny.kind"), DENY_KINDS, format_func=lambda k: t(f"deny.kind.{k}"), key="deny_kind")
    st.text_input(t("deny.value"), max_chars=200, help=t("deny.value_help"), key="deny_value")
    st.text_input(t("deny.reason"), max_chars=200, key="deny_reason")
    st.form_submit_button(t("deny.add"), type="primary", on_click=add_entry)

removable = {e.key: e for e in entries if e.removal is None}


def entry_label(key: str) -> str:
    entry = removable.get(key)
    return " · ".join((entry.ref[:8], t(f"deny.kind.{entry.kind}"), entry.display)) if entry else key[:12]


def request_removal() -> None:
    """The removal button's callback (as `add_entry`); the entry is named by its key, which stays
    the same whatever the list holds when the click arrives."""
    state = st.session_state
    key, why = str(state.get("deny_pick") or ""), state["deny_why"]
    asked = actions.act(t, lambda: svc.deny_list.request_removal(who, key, why), "deny.requested")
    if asked is not None:
        state["deny_why"] = ""


if removable:
    with st.form("deny_remove"):
        st.markdown(f"**{t('deny.remove_title')}**")
        st.selectbox(
            t("deny.entry"),
            list(removable),
            format_func=entry_label,
            key="deny_pick",
        )
        st.text_input(t("deny.remove_reason"), max_chars=200, key="deny_why")
        st.form_submit_button(t("deny.request_removal"), on_click=request_removal)
