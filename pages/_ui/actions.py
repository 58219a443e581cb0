"""A console button's service call and what it said: the result's message, or the error in the
reader's language, shown at the top of the page on the next run (a button's callback runs before
the page is drawn again)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.errors import PortalError
from core.i18n import Translator
from pages._ui import auth

NOTICE = "_console_notice"


def act(t: Translator, action: Callable[[], object], done: str) -> object | None:
    """Run `action`; remember `done` (or the message key the action returned) to show next, or
    its error. Returns what the action returned (None when it failed). Nothing is done unless
    the page's principal is still signed in (`auth.still_signed_in`)."""
    if signed_out(t):
        return None
    try:
        said = action()
    except PortalError as error:
        st.session_state[NOTICE] = ("error", t(error.key, **error.params))
        return None
    st.session_state[NOTICE] = ("success", t(said if isinstance(said, str) else done))
    return said


def signed_out(t: Translator) -> bool:
    """Whether a button's callback must not act: the page's principal is no longer who is
    signed in (`auth.still_signed_in`); then the next run says so."""
    if auth.still_signed_in():
        return False
    st.session_state[NOTICE] = ("error", t("error.session.ended"))
    return True


def show_notice() -> None:
    """What the last button's call said, once."""
    notice = st.session_state.pop(NOTICE, None)
    if notice is not None:
        (st.error if notice[0] == "error" else st.success)(notice[1])


def agree_or_refuse(
    t: Translator,
    request_id: str,
    agree: Callable[[], object],
    refuse: Callable[[], object],
    labels: tuple[str, str],
    done: tuple[str, str],
) -> None:
    """A second operator's two buttons on a four-eyes request, side by side."""
    row = st.container(horizontal=True)
    row.button(t(labels[0]), key=f"agree_{request_id}", type="primary", on_click=act, args=(t, agree, done[0]))
    row.button(t(labels[1]), key=f"refuse_{request_id}", on_click=act, args=(t, refuse, done[1]))
