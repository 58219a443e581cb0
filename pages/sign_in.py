"""Sign in: consumers with a mobile number and an SMS code, staff with a password."""

import streamlit as st

from pages._ui.auth import sign_in
from pages._ui.state import services, translator

t = translator()
st.title(t("auth.title"))
st.markdown(t("auth.intro"))
if st.button(t("auth.sign_in"), type="primary", icon=":material/login:"):
    sign_in()
if services().sandbox_sms is not None:
    st.info(t("auth.sandbox_hint"), icon=":material/sms:")
