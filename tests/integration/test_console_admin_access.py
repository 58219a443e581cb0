"""Who may call the deny list, the audit trail and staff administration, on SQLite and
PostgreSQL: every call refused for a consumer and an analyst (and, for staff administration, for
an operator), changing nothing. And generated input: whatever text reaches adding to the deny
list or creating a staff account, the call succeeds or raises a PortalError, and a refused one
changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.access import NotAllowed, Principal
from core.errors import PortalError
from core.persistence.tables import AuditRecord, DenyEntry, StaffSetupToken, User
from core.services.risk import DENY_KINDS
from tests.support.console import Console, build_console
from tests.support.db import count
from tests.support.portal import PAYEE

NUMBER = "13800130009"


@pytest.fixture
def console(engine) -> Console:
    return build_console(engine)


def _state(console: Console) -> tuple[int, ...]:
    return tuple(count(console.engine, t) for t in (AuditRecord, DenyEntry, User, StaffSetupToken))


def _calls(
    console: Console, target_id: str, entry_key: str, request_id: str
) -> dict[str, Callable[[Principal], object]]:
    d, a, s = console.deny_list, console.audit, console.staff
    return {
        "deny.entries": lambda who: d.entries(who),
        "deny.add": lambda who: d.add(who, "payee", "someone@example.com", "reported as stolen"),
        "deny.request_removal": lambda who: d.request_removal(who, entry_key, "owner proved it"),
        "deny.request_removal_of": lambda who: d.request_removal_of(who, "payee", PAYEE, "owner proved it"),
        "deny.pending": lambda who: d.pending(who),
        "deny.agree": lambda who: d.agree(who, request_id),
        "deny.refuse": lambda who: d.refuse(who, request_id),
        "audit.verify": lambda who: a.verify(who),
        "audit.search": lambda who: a.search(who, subject="x"),
        "audit.export": lambda who: a.export(who),
        "staff.staff": lambda who: s.staff(who),
        "staff.create": lambda who: s.create(who, "operator", "made.here"),
        "staff.new_setup_link": lambda who: s.new_setup_link(who, target_id),
        "staff.reset_totp": lambda who: s.reset_totp(who, target_id),
        "staff.disable": lambda who: s.disable(who, target_id),
        "staff.enable": lambda who: s.enable(who, target_id),
    }


ACTIONS = [
    *("deny." + a for a in ("entries", "add", "request_removal", "request_removal_of", "pending", "agree", "refuse")),
    *("audit." + a for a in ("verify", "search", "export")),
    *("staff." + a for a in ("staff", "create", "new_setup_link", "reset_totp", "disable", "enable")),
]


#: (role, call): every call for a consumer and an analyst; staff administration for an operator too.
REFUSED = [(role, call) for role in ("consumer", "analyst") for call in ACTIONS] + [
    ("operator", call) for call in ACTIONS if call.startswith("staff.")
]


@pytest.mark.parametrize(("role", "call"), REFUSED)
def test_every_call_is_refused_for_a_role_it_is_not_for(console, role, call):
    admin = console.member("admin", "admin.matrix")
    maker = console.member("operator", "op.matrix")
    target = console.staff.create(admin, "operator", "target.op")
    entry = console.deny_list.add(maker, "payee", PAYEE, "reported as stolen")
    request = console.deny_list.request_removal(maker, entry.key, "owner proved it")
    who = console.portal.consumer(1).who if role == "consumer" else console.member(role, f"{role}.matrix")
    before = _state(console)

    calls = _calls(console, target.user_id, entry.key, request.id)
    assert sorted(calls) == sorted(ACTIONS)  # every call of the three services is in the matrix
    with pytest.raises(NotAllowed):
        calls[call](who)

    assert _state(console) == before
    assert console.deny_list.pending(maker)[0].id == request.id


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.one_of(st.sampled_from(DENY_KINDS), st.text(max_size=12)),
    value=st.one_of(st.text(max_size=300), st.sampled_from([NUMBER, PAYEE, " +86 138 0013 0009 ", "f" * 64])),
    reason=st.one_of(st.text(max_size=260), st.sampled_from(["reported as stolen", "被盗" * 100])),
)
@pytest.mark.slow
def test_any_text_added_to_the_deny_list_is_taken_or_refused_cleanly(console, kind, value, reason):
    op = _one(console, "operator", "op.generated")
    before = _state(console)
    try:
        console.deny_list.add(op, kind, value, reason)
    except PortalError:
        assert _state(console) == before
    else:
        typed = value.strip()
        if kind in ("number", "payee") and len(typed) >= 8 and typed not in reason:
            assert typed not in " ".join(r.detail for r in console.records())  # never the value itself


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    role=st.one_of(st.sampled_from(["analyst", "operator", "admin"]), st.text(max_size=12)),
    username=st.one_of(st.text(max_size=80), st.from_regex(r"[a-z][a-z0-9._-]{2,20}", fullmatch=True)),
)
@pytest.mark.slow
def test_any_text_given_to_create_a_staff_account_is_taken_or_refused_cleanly(console, role, username):
    admin = _one(console, "admin", "admin.generated")
    before = _state(console)
    try:
        link = console.staff.create(admin, role, username)
    except PortalError:
        assert _state(console) == before
    else:
        assert link.username == username.strip() and console.staff.setup_account(link.token) == link.username


def _one(console: Console, role: str, username: str) -> Principal:
    """The same staff account across a property's examples (one database per test)."""
    cached = getattr(console, f"_{role}", None)
    if cached is None:
        cached = console.member(role, username)
        setattr(console, f"_{role}", cached)
    return cached
