"""Staff accounts (admins): who they are, create one (its holder sets their own password through a
one-time link shown here once), a new link while an account still waits for its password, reset a
second factor, disable and enable."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.domain.access import Role
from core.i18n import local_time
from core.services.console.staff import SetupLink
from pages._ui import actions
from pages._ui.auth import console_page
from pages._ui.plain_text import plain

LINK = "staff_link"
ROLES = [Role.ANALYST.value, Role.OPERATOR.value, Role.ADMIN.value]

svc, t, who = console_page("staff.title", lambda w: w.role is Role.ADMIN, notice=True)


def act(action: Callable[[], object], done: str) -> None:
    """A new setup link is kept for the next run only: it is shown once."""
    result = actions.act(t, action, done)
    if isinstance(result, SetupLink):
        st.session_state[LINK] = result


link = st.session_state.pop(LINK, None)
if link is not None:
    with st.container(border=True):
        st.markdown(t("staff.link_for", username=plain(link.username), until=local_time(link.expires_at)))
        st.code(f"{svc.settings.public_url}/staff-setup?token={link.token}", language=None)
        st.caption(t("staff.link_once"))

accounts = svc.staff.staff(who)
st.dataframe(
    [
        {
            t("staff.col.username"): a.username,
            t("staff.col.role"): t(f"role.{a.role.value}"),
            t("staff.col.totp"): t("staff.on") if a.totp else t("staff.off"),
            t("staff.col.state"): t("staff.disabled")
            if a.disabled
            else t("staff.awaiting")
            if a.awaiting_setup
            else t("staff.enabled"),
            t("staff.col.created"): local_time(a.created_at),
        }
        for a in accounts
    ],
    hide_index=True,
    width="stretch",
)

with st.form("staff_create", clear_on_submit=True):
    st.markdown(f"**{t('staff.create_title')}**")
    left, right = st.columns(2)
    role = left.selectbox(t("staff.role"), ROLES, index=1, format_func=lambda r: t(f"role.{r}"))
    username = right.text_input(t("staff.username"), max_chars=64, help=t("staff.username_help"))
    created = st.form_submit_button(t("staff.create"), type="primary")
if created:
    act(lambda: svc.staff.create(who, role, username), "staff.created")
    st.rerun()

st.subheader(t("staff.manage"))
choices = accounts
picked = st.selectbox(
    t("staff.account"),
    range(len(choices)),
    format_func=lambda i: f"{choices[i].username} · {t(f'role.{choices[i].role.value}')}",
)
if picked is not None:
    account = choices[picked]
    columns = st.columns(4)
    columns[0].button(
        t("staff.reset_totp"),
        key=f"totp_{account.user_id}",
        disabled=not account.totp,
        on_click=act,
        args=(lambda a=account: svc.staff.reset_totp(who, a.user_id), "staff.totp_reset"),
    )
    if account.disabled:
        columns[1].button(
            t("staff.enable"),
            key=f"enable_{account.user_id}",
            on_click=act,
            args=(lambda a=account: svc.staff.enable(who, a.user_id), "staff.enabled_now"),
        )
    else:
        columns[1].button(
            t("staff.disable"),
            key=f"disable_{account.user_id}",
            disabled=account.user_id == who.user_id,
            on_click=act,
            args=(lambda a=account: svc.staff.disable(who, a.user_id), "staff.disabled_now"),
        )
    if account.awaiting_setup:
        columns[2].button(
            t("staff.new_link"),
            key=f"link_{account.user_id}",
            on_click=act,
            args=(lambda a=account: svc.staff.new_setup_link(who, a.user_id), "staff.link_made"),
        )
