"""Sign in: consumers with a mobile number and an SMS code, staff with a password.

The built-in provider is registered once per portal language (see `login_name`): signing in
through the one for the current language carries it to the provider as OIDC `ui_locales`, so
its sign-in page speaks the portal's language, not the browser's."""

import streamlit as st

from core.services.openid_provider import login_name
from pages._ui.session import language, services, translator

t = translator()
st.title(t("auth.title"))
st.markdown(t("auth.intro"))
if st.button(t("auth.sign_in"), type="primary", icon=":material/login:"):
    if services().settings.external_auth:
        st.login()  # the operator's provider, as configured
    else:
        st.login(login_name(language()))
if services().sandbox_sms is not None:
    st.info(t("auth.sandbox_hint"), icon=":material/sms:")
