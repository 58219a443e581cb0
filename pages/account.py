"""Account: profile, verified numbers, sign out, delete my account and my data."""

import streamlit as st

from core.domain.access import Role
from core.errors import PortalError
from pages._ui.auth import auth_time, display_name, sign_out, signed_in
from pages._ui.plain_text import plain
from pages._ui.session import services, translator

t = translator()
identity = services().identity
who = signed_in()
st.title(t("account.title"))
if who is None:
    st.stop()

name = display_name() or t("account.unnamed", id=who.user_id[:4])  # the provider names staff only
st.markdown(t("account.profile", name=plain(name), role=t(f"role.{who.role}")))
numbers = identity.verified_numbers(who, who.user_id)
st.subheader(t("account.numbers"))
st.markdown("\n".join(f"- {masked}" for _, masked in numbers) or t("account.no_numbers"))

if st.button(t("account.sign_out"), icon=":material/logout:"):
    sign_out(who)

with st.expander(t("account.delete_title")):
    if who.role is not Role.CONSUMER:
        st.info(t("error.account.staff"), icon=":material/badge:")
    else:
        st.warning(t("account.delete_warning"), icon=":material/warning:")
        if not identity.is_recent(auth_time()):
            st.info(t("account.reauth"))
            if st.button(t("account.reauth_button")):
                sign_out(who)
        else:
            # a form: the word and the click arrive together (a button disabled until the field
            # lost focus took a first click to wake it), and the word is checked on the click
            with st.form("delete_account", border=False, enter_to_submit=False):
                confirm = st.text_input(t("account.delete_confirm"), key="delete_confirm", max_chars=10)
                go = st.form_submit_button(t("account.delete_button"), type="primary")
            if go and confirm.strip().casefold() != t("account.delete_word").casefold():
                st.error(t("account.delete_word_wrong"), icon=":material/error:")
            elif go:
                try:
                    identity.delete_account(who, who.user_id, signed_in_at=auth_time())
                except PortalError as error:
                    st.error(t.error(error))
                else:
                    st.logout()
