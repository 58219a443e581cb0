"""A new staff member sets their own password through the one-time link an admin gave them
(`?token=...`): anyone holding the link may open it; it works once, until it expires."""

from __future__ import annotations

import streamlit as st

from core.errors import PortalError
from pages._ui.session import services, translator

DONE = "staff_setup_done"

svc = services()
t = translator()
st.title(t("setup.title"))

token = str(st.query_params.get("token", ""))
done = st.session_state.get(DONE)
if done is not None and done[0] == token:  # this link was just used, here
    st.success(t("setup.done", username=done[1]), icon=":material/check_circle:")
    st.stop()

try:
    username = svc.staff.setup_account(token)
except PortalError as error:
    st.error(t(error.key, **error.params))
    st.stop()

st.markdown(t("setup.for", username=username))
with st.form("staff_setup"):
    password = st.text_input(t("setup.password"), type="password", max_chars=128, help=t("setup.password_help"))
    again = st.text_input(t("setup.again"), type="password", max_chars=128)
    chosen = st.form_submit_button(t("setup.submit"), type="primary")
if chosen:
    try:
        st.session_state[DONE] = (token, svc.staff.set_password(token, password, again))
    except PortalError as error:
        st.error(t(error.key, **error.params))
    else:
        st.rerun()
