"""The console's forms against generated input (1,000 per form), on SQLite and PostgreSQL: the
search filters as a link or the form brings them, the reasons and notes of a review decision,
the note of a manual resolution. Each input is taken or refused with a PortalError (a message in
the user's language), never anything else, and a refused one changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.review import APPROVE_REASONS, REJECT_REASONS, FourEyesAction
from core.errors import PortalError
from core.persistence.tables import ApprovalRequest, AuditRecord, Recovery, RecoveryTransition
from core.services.console.recoveries import Cursor, RecoveryFilter
from pages._ui.recoveries_view import URL_FIELDS, cursor_from_url, filter_from_url
from tests.support.db import count
from tests.support.portal import in_review

pytestmark = pytest.mark.slow  # 1,000 generated inputs per form
FORM = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
typed = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            *("", " ", "rcv-", "rcv-" + "0" * 32 + "-p", "13800138000", "1e9", "-5", "0.001", "2026-13-40"),
            *("0001-01-01", "9999-12-31", "1999-12-31", "2026-11-20T00:00:00|x", "2026-11-20T00:00:00+08:00|x"),
        ]
    ),
)
URL_KEYS = [*URL_FIELDS, "min", "max", "from", "to", "after"]


def once(portal, name: str, make):
    """The same thing across one test's examples (one portal, one database per test)."""
    if name not in portal.__dict__:
        portal.__dict__[name] = make()
    return portal.__dict__[name]


def snapshot(portal) -> tuple[int, ...]:
    return tuple(count(portal.engine, table) for table in (Recovery, RecoveryTransition, AuditRecord, ApprovalRequest))


@FORM
@given(params=st.dictionaries(st.sampled_from(URL_KEYS), typed, max_size=6), phone=typed)
def test_any_search_a_link_or_the_form_brings_is_answered_or_refused_cleanly(portal, params, phone):
    op = once(portal, "_op", lambda: portal.operator("op.generated.search"))
    before = snapshot(portal)
    wanted = filter_from_url(params)  # a link never fails to read: what cannot be read is dropped
    try:
        if phone.strip():
            portal.search.number_index(op, phone)
        portal.search.search(op, wanted, after=cursor_from_url(params.get("after", "")))
    except PortalError:
        pass
    assert snapshot(portal) == before


@FORM
@given(
    approve=st.booleans(),
    reason=st.one_of(st.text(max_size=220), st.sampled_from(APPROVE_REASONS + REJECT_REASONS)),
    note=st.one_of(st.text(max_size=400), st.just("")),
)
def test_any_review_reason_or_note_is_taken_or_refused_cleanly(portal, approve, reason, note):
    if "_case" not in portal.__dict__:
        portal.__dict__["_op"] = portal.operator("op.generated.review")
        portal.__dict__["_case"] = in_review(portal, 1)[1]
        portal.recoveries.four_eyes_above_fen = 10**9
    op, case = portal.__dict__["_op"], portal.__dict__["_case"]
    if portal.recoveries.get(op, case.id).state.value != "review":
        return  # decided by an earlier example: nothing left to decide
    portal.queue.claim(op, case.id)
    before = snapshot(portal)
    try:
        portal.queue.decide(op, case.id, approve=approve, reason=reason, note=note)
    except PortalError:
        assert snapshot(portal)[:2] == before[:2]  # the recovery and its timeline did not move
        assert portal.recoveries.get(op, case.id).state.value == "review"


@FORM
@given(note=st.one_of(st.text(max_size=260), st.sampled_from(["", "  ", "ok", "x" * 201])), action=st.text(max_size=20))
def test_any_manual_resolution_note_or_action_is_taken_or_refused_cleanly(portal, note, action):
    op = once(portal, "_op", lambda: portal.operator("op.generated.stuck"))
    if "_paying" not in portal.__dict__:
        portal.rig.payouts.settle_s = 10 * 86_400
        alice = portal.consumer(2, balance_fen=20_000)
        portal.__dict__["_paying"] = portal.recover(alice).id
        portal.rig.worker().run_until_idle()
        portal.advance(hours=1)
    part = portal.__dict__["_paying"]
    before = snapshot(portal)
    try:
        chosen = FourEyesAction(action) if action in {a.value for a in FourEyesAction} else action
        request = portal.stuck.request_resolution(op, part, chosen, note)  # type: ignore[arg-type]
    except PortalError:
        assert snapshot(portal) == before
    else:
        portal.approvals.refuse(op, request.id)  # withdraw it, so the next example may ask again


def test_a_search_for_a_day_beyond_the_calendar_or_from_a_place_without_a_time_zone_is_refused(portal):
    """Days a link may carry that Python's calendar cannot take to UTC, and a page cursor edited
    to a moment without its offset, are refused with a message (they raised an OverflowError
    and a ValueError before)."""
    op = portal.operator("op.days")
    for wanted in (RecoveryFilter(date_from=dt.date(1, 1, 1)), RecoveryFilter(date_to=dt.date(9999, 12, 31))):
        with pytest.raises(PortalError) as refused:
            portal.search.search(op, wanted)
        assert refused.value.key == "error.search.day_range"
    with pytest.raises(PortalError) as refused:
        portal.search.search(op, RecoveryFilter(), after=Cursor(dt.datetime(2026, 11, 20), "x"))
    assert refused.value.key == "error.search.cursor"
    assert cursor_from_url("2026-11-20T00:00:00|x") is None  # a link's naive place: the first page
