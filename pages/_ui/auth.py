"""Who is signed in, checked against the database on every run (not only the login cookie):
the account must exist and the portal's idle (30 min) and absolute (12 h) limits hold; and the
opening every console page shares."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from core.domain.access import Principal
from core.i18n import Translator
from core.phones import mask
from pages._ui import actions
from pages._ui.session import Services, services, translator  # the one page module that knows core.bootstrap


def auth_time() -> int:
    return int(st.user.get("auth_time") or st.user.get("iat") or 0)


T = TypeVar("T")
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


def _session_holds(*, touch: bool = True) -> Principal | None:
    """Who the signed-in browser session is now, if its sign-in still holds (the account
    exists and is not disabled, the idle and absolute limits hold); None otherwise."""
    if not st.user.get("is_logged_in", False):
        return None
    return _holds(services(), *_claims(), touch=touch)


def _claims() -> tuple[str, str, int]:
    """The sign-in's subject, issuer and time, as the provider vouched for them."""
    return str(st.user.get("sub") or ""), str(st.user.get("iss", "")), auth_time()


def _holds(built: Services, subject: str, issuer: str, signed_in_at: int, *, touch: bool = True) -> Principal | None:
    """`_session_holds` for the sign-in these claims name (read from `st.user` beforehand: this
    reads no Streamlit state, so it may run outside a page run)."""
    identity = built.identity
    if not subject:
        return None
    if built.settings.external_auth:  # the provider vouches for (issuer, subject), not our user id
        return identity.check_session(identity.account_for_external(issuer, subject), signed_in_at, touch=touch)
    if built.provider is not None and issuer == built.provider.issuer:
        return identity.check_session(subject, signed_in_at, touch=touch)
    return None


def still_signed_in(*, touch: bool = True) -> bool:
    """Checked when a button's callback runs: a callback runs before the page runs again, so
    before the frame checks the sign-in, with the principal the page was drawn for. It acts
    only if that principal is still who the session is now (an account disabled, a sign-in
    ended or timed out since the page was drawn: nothing is done)."""
    drawn_for = signed_in()
    return drawn_for is not None and _session_holds(touch=touch) == drawn_for


def fragment_signed_in() -> None:
    """The first call of every fragment on a page for the signed in. A fragment reruns alone (on
    its timer, or for a widget inside it) and the frame, which checks the sign-in, does not run:
    so it checks here, before it shows or does anything, that the principal the page was drawn
    for is still who is signed in. If not, the whole app runs again and the frame ends the
    sign-in. The check does not count as a use of the sign-in: a tab left open on a page that
    refreshes itself still times out."""
    if not still_signed_in(touch=False):
        st.rerun(scope="app")


def while_signed_in(make: Callable[[], T]) -> Callable[[], T | str]:
    """`make`, to be called later outside any page run (a download's data, made when the
    button is clicked), made to give the reader's "sign-in ended" text in its place unless the
    sign-in this run was drawn for still holds. It answers rather than raises: Streamlit logs a
    download whose making raised with its traceback, and tells the browser only, in English,
    that the file could not be made."""
    drawn_for, built, claims = signed_in(), services(), _claims()
    refused = translator()("error.session.ended")

    def checked() -> T | str:
        if drawn_for is None or _holds(built, *claims) != drawn_for:
            return refused
        return make()

    return checked


def display_name() -> str:
    """The name claim, with anything that looks like a mobile number masked."""
    return re.sub(r"1\d{10}", lambda m: mask(m.group(0)), str(st.user.get("name") or ""))


def sign_out(who: Principal | None = None) -> None:
    identity = services().identity
    if who is not None:
        identity.end_session(who.user_id, auth_time())
    st.logout()
    st.stop()
