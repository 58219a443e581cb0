"""Who is signed in, checked against the database on every run (not only the login cookie):
the account must exist and the portal's idle (30 min) and absolute (12 h) limits hold; and the
opening every console page shares."""

from __future__ import annotations

import re
from collections.abc import Callable

import streamlit as st

from core.domain.access import Principal
from core.i18n import Translator
from core.phones import mask
from pages._ui import actions
from pages._ui.session import Services, services, translator  # the one page module that knows core.bootstrap


def auth_time() -> int:
    return int(st.user.get("auth_time") or st.user.get("iat") or 0)


PRINCIPAL_KEY = "_principal"  # set by the frame on every run, read by the pages


def signed_in() -> Principal | None:
    """Who the frame found signed in on this run (checked once per run, not once per page)."""
    return st.session_state.get(PRINCIPAL_KEY)


def console_page(
    title_key: str, may: Callable[[Principal], bool] = lambda w: w.is_operator, *, notice: bool = False
) -> tuple[Services, Translator, Principal]:
    """A console page's opening: its title, and nothing more unless whoever is signed in `may`
    use it (the menu hides it; the services refuse it anyway); then, with `notice`, what the last
    button's call said."""
    svc = services()
    t = translator()
    who = signed_in()
    st.title(t(title_key))
    if who is None or not may(who):
        st.stop()
    if notice:
        actions.show_notice()
    return svc, t, who


def current_principal() -> Principal | None:
    if not st.user.get("is_logged_in", False):
        return None
    who = _session_holds()
    if who is None:
        st.logout()  # expired, deleted or from another issuer: end it here and at the provider
        st.stop()
    return who


def _session_holds() -> Principal | None:
    """Who the signed-in browser session is now, if its sign-in still holds (the account
    exists and is not disabled, the idle and absolute limits hold); None otherwise."""
    built = services()
    identity, subject = built.identity, st.user.get("sub")
    if not subject or not st.user.get("is_logged_in", False):
        return None
    user_id, issuer = str(subject), str(st.user.get("iss", ""))
    if built.settings.external_auth:  # the provider vouches for (issuer, subject), not our user id
        return identity.check_session(identity.account_for_external(issuer, user_id), auth_time())
    if built.provider is not None and issuer == built.provider.issuer:
        return identity.check_session(user_id, auth_time())
    return None


def still_signed_in() -> bool:
    """Checked when a button's callback runs: a callback runs before the page runs again, so
    before the frame checks the sign-in, with the principal the page was drawn for. It acts
    only if that principal is still who the session is now (an account disabled, a sign-in
    ended or timed out since the page was drawn: nothing is done)."""
    drawn_for = signed_in()
    return drawn_for is not None and _session_holds() == drawn_for


def display_name() -> str:
    """The name claim, with anything that looks like a mobile number masked."""
    return re.sub(r"1\d{10}", lambda m: mask(m.group(0)), str(st.user.get("name", "")))


def sign_out(who: Principal | None = None) -> None:
    identity = services().identity
    if who is not None:
        identity.end_session(who.user_id, auth_time())
    st.logout()
    st.stop()
