"""Staff administration, on SQLite and PostgreSQL: an admin creates an account whose holder sets
their own password through a one-time link (once, within a day); a second factor is reset; a
disabled account cannot sign in and its sign-ins end; nobody disables themselves or the last
enabled admin. Everything is audited."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyotp
import pytest
from sqlmodel import select

from core.domain.access import NotAllowed, Role
from core.domain.review import RequestStatus
from core.errors import InputError
from core.persistence.tables import StaffSetupToken, User
from core.persistence.uow import UnitOfWork
from core.security.passwords import WeakPassword
from core.services.console.approvals import RequestClosed, RequesterDisabled
from core.services.console.staff import LastAdmin, SetupLinkInvalid
from core.services.identity.staff_sign_in import SignInRefused
from tests.support.console import Console, build_console
from tests.support.db import all_rows, count
from tests.support.portal import PASSWORD

NEW_PASSWORD = "violet tractor under seven moons"
CLIENT = "10.0.0.7"


@pytest.fixture
def console(engine) -> Console:
    return build_console(engine)


@pytest.fixture
def admin(console):
    return console.member("admin", "admin.one")


def test_a_new_account_sets_its_own_password_through_its_link_once(console, admin):
    link = console.staff.create(admin, "operator", "  new.operator ")

    assert link.username == "new.operator" and len(link.token) >= 40
    assert link.expires_at == console.portal.clock.now + dt.timedelta(hours=24)
    (row,) = all_rows(console.engine, StaffSetupToken)
    assert row.token_hash == hashlib.sha256(link.token.encode()).hexdigest() and link.token not in str(vars(row))
    listed = {s.username: s for s in console.staff.staff(admin)}
    assert listed["new.operator"].awaiting_setup and listed["new.operator"].role is Role.OPERATOR
    with pytest.raises(SignInRefused):  # no password yet: nothing signs in
        console.portal.identity.sign_in_with_password("new.operator", "", CLIENT)

    assert console.staff.setup_account(link.token) == "new.operator"
    assert console.staff.set_password(link.token, NEW_PASSWORD, NEW_PASSWORD) == "new.operator"

    who = console.portal.identity.sign_in_with_password("new.operator", NEW_PASSWORD, CLIENT)
    assert who.user_id == link.user_id and who.role is Role.OPERATOR
    with pytest.raises(SetupLinkInvalid):
        console.staff.setup_account(link.token)
    with pytest.raises(SetupLinkInvalid):
        console.staff.set_password(link.token, "another fine long phrase", "another fine long phrase")
    assert [r.action for r in console.records() if r.subject == link.user_id] == ["staff.create", "staff.password_set"]
    assert not {s.username: s for s in console.staff.staff(admin)}["new.operator"].awaiting_setup


def test_a_link_expires_after_a_day_and_a_new_one_replaces_it(console, admin):
    link = console.staff.create(admin, "analyst", "late.analyst")
    console.portal.advance(hours=24)
    with pytest.raises(SetupLinkInvalid):
        console.staff.set_password(link.token, NEW_PASSWORD, NEW_PASSWORD)

    fresh = console.staff.new_setup_link(admin, link.user_id)
    second = console.staff.new_setup_link(admin, link.user_id)
    with pytest.raises(SetupLinkInvalid):  # the newest link is the one that works
        console.staff.setup_account(fresh.token)
    console.staff.set_password(second.token, NEW_PASSWORD, NEW_PASSWORD)
    with pytest.raises(InputError):  # set up: no more links
        console.staff.new_setup_link(admin, link.user_id)


def test_a_refused_password_leaves_the_link_usable(console, admin):
    link = console.staff.create(admin, "operator", "careful.op")
    with pytest.raises(InputError):
        console.staff.set_password(link.token, NEW_PASSWORD, NEW_PASSWORD + "!")
    with pytest.raises(WeakPassword):
        console.staff.set_password(link.token, "password", "password")
    with pytest.raises(WeakPassword):
        console.staff.set_password(link.token, "careful.op is me", "careful.op is me")
    assert console.staff.setup_account(link.token) == "careful.op"
    with UnitOfWork(console.engine) as uow:
        assert uow.session.get(User, link.user_id).password_hash is None


@pytest.mark.parametrize("token", ["", "short", "x" * 43, "a\x00" * 30, "ü" * 43])
def test_an_unknown_link_is_refused(console, token):
    with pytest.raises(SetupLinkInvalid):
        console.staff.setup_account(token)


def test_a_taken_or_bad_user_name_or_role_is_refused_and_nothing_is_made(console, admin):
    users = count(console.engine, User)
    for role, name in [("operator", "admin.one"), ("operator", "ab"), ("operator", "has space"), ("root", "fine.name")]:
        with pytest.raises(InputError):
            console.staff.create(admin, role, name)
    with pytest.raises(InputError):
        console.staff.create(admin, "consumer", "consumer.name")
    assert count(console.engine, User) == users and console.records("staff.create") == []


@pytest.mark.parametrize(
    "look_alike",
    ["ADMIN.ONE", "Admin.One", "аdmin.one", "ａｄｍｉｎ.one", "运营小王", "٣٣٣", "admin\u200b.one"],
    ids=["upper", "mixed_case", "cyrillic_a", "full_width", "chinese", "arabic_digits", "zero_width"],
)
def test_a_user_name_that_reads_like_another_or_is_not_plain_ascii_is_refused(console, admin, look_alike):
    """A colleague is known by their user name in four-eyes requests and the audit chain: a
    name in other scripts, or the same letters in another case, was taken as a new one."""
    users = count(console.engine, User)
    with pytest.raises(InputError) as refused:
        console.staff.create(admin, "operator", look_alike)
    assert refused.value.key in ("error.username.invalid", "error.username.taken")
    assert count(console.engine, User) == users


def test_resetting_the_second_factor_makes_the_holder_enrol_again(console, admin):
    op = console.member("operator", "totp.op")
    secret = console.portal.identity.enable_totp(op.user_id)
    code = pyotp.TOTP(secret).at(console.portal.clock.now)
    console.portal.identity.sign_in_with_password("totp.op", PASSWORD, CLIENT, code)
    assert {s.username: s.totp for s in console.staff.staff(admin)}["totp.op"]

    console.staff.reset_totp(admin, op.user_id)

    assert not {s.username: s.totp for s in console.staff.staff(admin)}["totp.op"]
    assert console.portal.identity.sign_in_with_password("totp.op", PASSWORD, CLIENT).user_id == op.user_id
    console.portal.identity.enable_totp(op.user_id)  # enrols again
    (record,) = console.records("staff.reset_totp")
    assert (record.actor, record.subject) == (admin.user_id, op.user_id)


def test_a_disabled_account_cannot_sign_in_and_its_sign_ins_end(console, admin):
    op = console.member("operator", "gone.op")
    identity = console.portal.identity
    identity.sign_in_with_password("gone.op", PASSWORD, CLIENT)
    auth_time = int(console.portal.clock.now.timestamp())
    assert identity.check_session(op.user_id, auth_time) is not None

    console.staff.disable(admin, op.user_id)

    with pytest.raises(SignInRefused):
        identity.sign_in_with_password("gone.op", PASSWORD, CLIENT)
    assert identity.check_session(op.user_id, auth_time) is None
    assert {s.username: s.disabled for s in console.staff.staff(admin)}["gone.op"]

    console.staff.enable(admin, op.user_id)
    assert identity.sign_in_with_password("gone.op", PASSWORD, CLIENT).user_id == op.user_id
    assert [r.action for r in console.records() if r.subject == op.user_id] == ["staff.disable", "staff.enable"]


def test_a_disabled_accounts_setup_link_does_not_work(console, admin):
    link = console.staff.create(admin, "operator", "never.op")
    console.staff.disable(admin, link.user_id)
    with pytest.raises(SetupLinkInvalid):
        console.staff.set_password(link.token, NEW_PASSWORD, NEW_PASSWORD)


def test_an_admin_cannot_disable_themselves_nor_the_last_enabled_admin(console, admin):
    with pytest.raises(NotAllowed):
        console.staff.disable(admin, admin.user_id)
    second = console.member("admin", "admin.two")
    console.staff.disable(admin, second.user_id)

    with pytest.raises(LastAdmin):  # admin.two, disabled, still holds an old page
        console.staff.disable(second, admin.user_id)
    with pytest.raises(NotAllowed):
        console.staff.enable(second, second.user_id)

    with UnitOfWork(console.engine) as uow:
        enabled = uow.session.exec(select(User.username).where(User.role == "admin", User.disabled_at == None)).all()  # noqa: E711
    assert list(enabled) == ["admin.one"]
    assert len(console.records("staff.disable")) == 1


def test_a_disabled_admin_manages_nothing(console, admin):
    second = console.member("admin", "admin.three")
    op = console.member("operator", "some.op")
    console.staff.disable(admin, second.user_id)
    for call in (
        lambda: console.staff.create(second, "operator", "made.by.disabled"),
        lambda: console.staff.reset_totp(second, op.user_id),
        lambda: console.staff.disable(second, op.user_id),
    ):
        with pytest.raises(NotAllowed):
            call()
    assert console.records("staff.create") == []


def test_staff_actions_on_a_consumer_are_refused(console, admin):
    alice = console.portal.consumer(1)
    for call in (console.staff.disable, console.staff.reset_totp, console.staff.new_setup_link):
        with pytest.raises(NotAllowed):
            call(admin, alice.user_id)


def test_disabling_an_operator_withdraws_their_pending_requests_and_nobody_can_agree_to_them(console, admin):
    """A disabled operator's four-eyes requests stayed open, and a colleague could still agree."""
    maker, checker = console.member("operator", "maker.op"), console.member("operator", "checker.op")
    approvals = console.portal.approvals
    console.deny_list.add(maker, "payee", "thief@example.com", "reported stolen")
    request = console.deny_list.request_removal_of(maker, "payee", "thief@example.com", "owner proved it")
    assert [r.id for r in approvals.pending(checker)] == [request.id]

    console.staff.disable(admin, maker.user_id)

    assert approvals.pending(checker) == []
    assert approvals.get(checker, request.id).status is RequestStatus.LAPSED
    (withdrawn,) = console.records("four_eyes.withdraw")
    assert withdrawn.actor == admin.user_id and withdrawn.subject == request.subject
    with pytest.raises(RequestClosed):
        approvals.agree(checker, request.id)


def test_a_request_whose_requester_is_disabled_cannot_be_agreed_to(console, admin):
    """One left pending by an account disabled before requests were withdrawn with it."""
    maker, checker = console.member("operator", "maker2.op"), console.member("operator", "checker2.op")
    console.deny_list.add(maker, "payee", "thief2@example.com", "reported stolen")
    request = console.deny_list.request_removal_of(maker, "payee", "thief2@example.com", "owner proved it")
    with UnitOfWork(console.engine) as uow:  # as a disable before this change left it
        user = uow.session.get(User, maker.user_id)
        user.disabled_at = console.portal.clock.now
        uow.session.add(user)
        uow.commit()
    assert console.portal.approvals.pending(checker) == []
    with pytest.raises(RequesterDisabled):
        console.portal.approvals.agree(checker, request.id)
    assert console.portal.approvals.get(checker, request.id).status is RequestStatus.LAPSED
    assert console.deny_list.entries(checker)  # still on the list
