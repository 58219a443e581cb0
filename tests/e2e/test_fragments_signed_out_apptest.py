"""A part of a page that reruns alone (a fragment: on its timer, or for a button inside it) runs
without the frame, which checks the sign-in on every whole run. Each checks it itself: once the
sign-in has ended (signed out in another tab, timed out, the account disabled), it shows and
does nothing, and the whole app runs again and ends the sign-in."""

from __future__ import annotations

from unittest import mock

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from core.bootstrap import shared
from core.domain.access import Principal, Role
from core.domain.recovery import RecoveryState
from core.i18n import Translator
from tests.support.apptest import open_page, rerun_fragments, signed_in_as, submitted_recovery, user_of

T = Translator("zh-CN")  # the pages' language unless the reader chose another


def test_a_recovery_cannot_be_cancelled_from_a_tab_whose_sign_in_ended_elsewhere():
    who, view = submitted_recovery(120_000)
    assert view.state is RecoveryState.REVIEW
    user = user_of(who.user_id)
    at = open_page("pages/my_recoveries.py", user)
    at.button(key=f"cancel-{view.id}").click()
    at = rerun_fragments(at)  # the click reruns the fragment alone: it asks first
    assert [b.key for b in at.button] == [f"cancel-yes-{view.id}", f"cancel-no-{view.id}"]

    shared().identity.end_session(who.user_id, user["auth_time"])  # signed out in another tab
    at.button(key=f"cancel-yes-{view.id}").click()
    at = rerun_fragments(at)
    assert not at.exception
    assert shared().recoveries.get(who, view.id).state is RecoveryState.REVIEW
    assert not at.user.get("is_logged_in")  # the whole app ran again, and signed out
    assert f"cancel-{view.id}" not in [b.key for b in at.button]


def test_the_self_refreshing_status_stops_showing_once_the_sign_in_ended():
    who, _ = submitted_recovery(120_000)
    user = user_of(who.user_id)
    at = open_page("pages/my_recoveries.py", user)
    assert at.table  # the timeline
    shared().identity.end_session(who.user_id, user["auth_time"])
    at = rerun_fragments(at)  # the two-second timer
    assert not at.exception
    assert not at.table
    assert not at.user.get("is_logged_in")


def test_a_receipt_is_not_made_for_a_tab_whose_sign_in_ended():
    """The receipt's download is made when its button is clicked, outside any page run."""
    who, _ = submitted_recovery(120_000)
    user = user_of(who.user_id)
    made: list = []
    with mock.patch.object(MediaFileManager, "add_deferred", lambda _, data, *a, **k: made.append(data) or "id"):
        open_page("pages/my_recoveries.py", user)
    receipt = made[-1]
    assert receipt().count(".") == 2  # a JWS while signed in
    shared().identity.end_session(who.user_id, user["auth_time"])
    assert receipt() == T("error.session.ended")  # what to read in its place; nothing raised to log


@pytest.mark.parametrize("page", ["pages/console/metrics.py", "pages/console/pricing.py"])
def test_a_console_fragment_shows_nothing_once_the_account_is_disabled(page):
    user = signed_in_as("analyst")
    at = open_page(page, user)
    admin = Principal(signed_in_as("admin")["sub"], Role.ADMIN)
    shared().staff.disable(admin, user["sub"])
    with (
        mock.patch.object(type(shared().metrics), "metrics", side_effect=AssertionError("read")),
        mock.patch.object(type(shared().pricing), "simulate", side_effect=AssertionError("read")),
    ):
        at = rerun_fragments(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.user.get("is_logged_in")


@pytest.mark.parametrize("button", ["ask", "retry"])
def test_the_stuck_pages_buttons_do_nothing_once_the_account_is_disabled(button):
    """Its buttons are drawn in the page itself, not in a fragment nor with a callback: a click
    runs the whole app, whose frame checks the sign-in before the page acts."""
    import datetime as dt

    from core.domain.stuck import StuckReason
    from core.services.console.stuck import StuckCase, StuckPart

    _, view = submitted_recovery(10_000)
    part = StuckPart(view.id, 1, RecoveryState.PAYING, StuckReason.PAST_PROMISE, dt.datetime.now(dt.UTC), 1, "", 60.0)
    case = StuckCase(view, "china_mobile", (part,))
    service = type(shared().stuck)
    operator = signed_in_as("operator")
    with (
        mock.patch.object(service, "stuck", return_value=[case]),
        mock.patch.object(service, "ask_partner") as ask,
        mock.patch.object(service, "retry_now") as retry,
    ):
        at = open_page("pages/console/stuck.py", operator)
        admin = Principal(signed_in_as("admin")["sub"], Role.ADMIN)
        shared().staff.disable(admin, operator["sub"])
        at.button(key=f"{button}_{view.id}").click().run()
    assert not at.exception
    assert ask.call_count == retry.call_count == 0
    assert not at.user.get("is_logged_in")


def test_the_books_are_not_exported_for_a_tab_whose_account_was_disabled():
    """The export is made when its button is clicked, outside any page run (as the receipt)."""
    operator = signed_in_as("operator")
    made: list = []
    with mock.patch.object(MediaFileManager, "add_deferred", lambda _, data, *a, **k: made.append(data) or "id"):
        open_page("pages/console/books.py", operator)
    assert len(made) == 2  # beancount and CSV
    assert made[-1]().startswith("date,")  # the CSV, while signed in
    admin = Principal(signed_in_as("admin")["sub"], Role.ADMIN)
    shared().staff.disable(admin, operator["sub"])
    for export in made:
        assert export() == T("error.session.ended")
