"""Sandbox SMS: the codes the sandbox gateway 'sent' (exists only in sandbox mode)."""

import streamlit as st

from pages._ui.session import services, translator

t = translator()
sandbox = services().sandbox_sms
st.title(t("sandbox.title"))
if sandbox is None:
    st.stop()
st.caption(t("sandbox.intro"))
if st.button(t("sandbox.refresh"), icon=":material/refresh:"):
    st.rerun()
messages = sandbox.latest(20)
st.table([{t("sandbox.to"): m.to_masked, t("sandbox.text"): m.text} for m in messages]) if messages else st.info(
    t("sandbox.none")
)
