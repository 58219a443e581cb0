"""Sign-up and sign-in rules, on SQLite and PostgreSQL: SMS codes, passwords, throttling,
encryption at rest, and who may touch whose data."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.domain.access import NotAllowed, Principal, Role
from core.errors import InputError
from core.persistence.tables import AuthEvent, SmsCode, User, VerifiedNumber
from core.security.passwords import WeakPassword
from core.services.identity.sms_sign_in import CodeRefused
from core.services.identity.staff_sign_in import SignInRefused
from core.services.identity.throttles import Throttled
from tests.support.db import sqlite_engine
from tests.support.people import last_code

NUMBER = "13800138000"
OTHER = "13912345678"
GOOD_PASSWORD = "correct horse battery staple"


def test_a_consumer_signs_up_with_a_six_digit_code_and_gets_a_verified_number(identity, sms, engine):
    assert identity.request_code(NUMBER, "10.0.0.1") == "138****8000"
    code = last_code(sms)
    assert re.fullmatch(r"\d{6}", code)
    who = identity.verify_code(NUMBER, code, "10.0.0.1")
    assert who.role == "consumer"
    assert identity.verified_numbers(who, who.user_id)[0][1] == "138****8000"
    with Session(engine) as session:
        assert session.exec(select(AuthEvent).where(AuthEvent.kind == "signup")).one().user_id == who.user_id


def test_a_number_that_begins_as_an_international_prefix_is_refused_with_the_forms_message(identity, sms, engine):
    """11187009999 reads to phonenumbers as a call abroad (1XX XX00 dialling): its parse error
    reached the sign-in form as a crash; it is refused as any number outside the mobile segments."""
    with pytest.raises(InputError) as refused:
        identity.request_code("11187009999", "10.0.0.1")
    assert refused.value.key == "error.phone.segment"
    assert sms.latest(1) == []  # no message sent
    with Session(engine) as session:
        assert session.exec(select(SmsCode)).all() == []


def test_signing_in_again_with_the_same_number_finds_the_same_account(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    first = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    clock.advance(minutes=2)
    identity.request_code(NUMBER, "10.0.0.1")
    assert identity.verify_code(NUMBER, last_code(sms), "10.0.0.1") == first


def test_a_code_is_single_use(identity, sms):
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    identity.verify_code(NUMBER, code, "10.0.0.1")
    with pytest.raises(CodeRefused):
        identity.verify_code(NUMBER, code, "10.0.0.1")


def test_a_code_expires_after_ten_minutes(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(CodeRefused) as caught:
        identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    assert caught.value.key == "error.sms.expired"


def test_five_wrong_codes_make_that_address_wait_without_spoiling_the_code_for_its_owner(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(CodeRefused) as caught:
            identity.verify_code(NUMBER, wrong, "203.0.113.9")
        assert caught.value.params["left"] == left
    with pytest.raises(Throttled):  # that address now waits, even with the right code
        identity.verify_code(NUMBER, code, "203.0.113.9")
    assert identity.verify_code(NUMBER, code, "10.0.0.1").role == "consumer"  # the owner's code still works


def test_twenty_wrong_tries_in_all_kill_a_code(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attacker in range(4):
        for _ in range(5):
            with pytest.raises(CodeRefused):
                identity.verify_code(NUMBER, wrong, f"203.0.113.{attacker}")
    with pytest.raises(CodeRefused) as caught:
        identity.verify_code(NUMBER, code, "10.0.0.1")
    assert caught.value.key == "error.sms.expired"


def test_a_staff_number_never_signs_in_by_sms(identity, sms, clock):
    identity.create_staff("admin", "root.admin", GOOD_PASSWORD, phone=NUMBER)
    identity.request_code(NUMBER, "10.0.0.1")
    with pytest.raises(SignInRefused):
        identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")


def test_resends_are_throttled(identity, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    with pytest.raises(Throttled):
        identity.request_code(NUMBER, "10.0.0.1")
    for _ in range(4):
        clock.advance(seconds=61)
        identity.request_code(NUMBER, "10.0.0.1")
    clock.advance(seconds=61)
    with pytest.raises(Throttled) as caught:  # five an hour per number
        identity.request_code(NUMBER, "10.0.0.1")
    assert caught.value.key == "error.sms.too_many"
    clock.advance(hours=1)
    identity.request_code(NUMBER, "10.0.0.1")


def test_the_database_holds_no_phone_number_or_code_in_the_clear(identity, sms, engine, caplog):
    caplog.set_level(logging.DEBUG)
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    identity.verify_code(NUMBER, code, "10.0.0.1")
    dump = []
    with engine.connect() as connection:
        for table in ("users", "verified_numbers", "sms_codes", "auth_events", "throttles"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 (fixed table names)
                dump.append(repr(tuple(row)))
    everything = "\n".join(dump)
    assert NUMBER not in everything and code not in everything
    assert NUMBER not in caplog.text


def test_a_number_ciphertext_is_bound_to_its_row(identity, sms, engine, keys):
    from core.security.fields import DecryptionFailed, FieldCipher

    for number in (NUMBER, OTHER):
        identity.request_code(number, "10.0.0.1")
        identity.verify_code(number, last_code(sms), "10.0.0.1")
    with Session(engine) as session:
        first, second = session.exec(select(VerifiedNumber)).all()
    cipher = FieldCipher(keys.data_key)
    assert cipher.decrypt(first.number_cipher, table="verified_numbers", column="number", row_id=first.id) in (
        NUMBER,
        OTHER,
    )
    with pytest.raises(DecryptionFailed):  # copied into another row, it does not open
        cipher.decrypt(first.number_cipher, table="verified_numbers", column="number", row_id=second.id)


def test_staff_passwords_are_argon2id_at_owasp_strength(identity, engine):
    identity.create_staff("operator", "ops.li", GOOD_PASSWORD)
    with Session(engine) as session:
        stored = session.exec(select(User).where(User.username == "ops.li")).one().password_hash
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
    assert match
    memory, time_cost, parallelism = map(int, match.groups())
    assert memory >= 19 * 1024 and time_cost >= 2 and parallelism >= 1


@pytest.mark.parametrize(
    ("password", "key"),
    [
        ("short1!", "error.password.length"),
        ("x" * 129, "error.password.length"),
        ("password123", "error.password.common"),
        ("woaini1314", "error.password.common"),
        ("qwertyuiop", "error.password.common"),
        ("ops.li-secret-2026", "error.password.common"),
    ],
)
def test_weak_staff_passwords_are_refused(identity, password, key):
    with pytest.raises(WeakPassword) as caught:
        identity.create_staff("operator", "ops.li", password)
    assert caught.value.key == key


def test_only_staff_roles_are_created_from_the_command_line(identity):
    with pytest.raises(InputError):
        identity.create_staff("consumer", "someone", GOOD_PASSWORD)


def test_500_wrong_passwords_are_throttled_and_the_owner_still_gets_in(identity, clock):
    identity.create_staff("operator", "victim", GOOD_PASSWORD)
    refused = throttled = 0
    for _ in range(500):
        try:
            identity.sign_in_with_password("victim", "not-the-password", "203.0.113.9")
        except Throttled:
            throttled += 1
        except SignInRefused:
            refused += 1
        clock.advance(seconds=1)
    assert throttled > 400 and refused < 100  # most guesses never reached the password check
    # the owner, from their own address, a few minutes later
    clock.advance(minutes=3)
    assert identity.sign_in_with_password("victim", GOOD_PASSWORD, "198.51.100.7").role == "operator"


@pytest.mark.slow  # ~3 s a database
def test_a_spray_over_100_accounts_from_one_address_is_throttled(identity, clock):
    for i in range(100):
        identity.create_staff("analyst", f"analyst{i:03d}", GOOD_PASSWORD)
    outcomes = []
    for i in range(100):
        try:
            identity.sign_in_with_password(f"analyst{i:03d}", "Spring2026!", "203.0.113.9")
        except Throttled:
            outcomes.append("throttled")
        except SignInRefused:
            outcomes.append("refused")
        clock.advance(seconds=1)
    assert outcomes.count("throttled") > 60
    assert identity.sign_in_with_password("analyst050", GOOD_PASSWORD, "198.51.100.7").role == "analyst"


def test_a_second_factor_is_checked_when_set_up(identity, clock):
    import pyotp

    user_id = identity.create_staff("admin", "root.admin", GOOD_PASSWORD)
    secret = identity.enable_totp(user_id)
    with pytest.raises(SignInRefused):
        identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp="000000")
    code = pyotp.TOTP(secret).at(clock())
    assert identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=code).role == "admin"


def test_an_unknown_user_name_is_refused_like_a_wrong_password(identity):
    with pytest.raises(SignInRefused) as caught:
        identity.sign_in_with_password("nobody", GOOD_PASSWORD, "10.0.0.1")
    assert caught.value.key == "error.signin.refused"


@pytest.mark.parametrize(
    ("caller_role", "own", "read_allowed", "delete_allowed"),
    [
        ("consumer", True, True, True),
        ("consumer", False, False, False),
        ("analyst", False, False, False),
        ("operator", False, True, False),
        ("admin", False, True, True),
    ],
)
def test_who_may_read_and_delete_an_account(identity, sms, clock, caller_role, own, read_allowed, delete_allowed):
    identity.request_code(NUMBER, "10.0.0.1")
    owner = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    caller = owner if own else Principal("someone-else", caller_role)
    if read_allowed:
        assert identity.verified_numbers(caller, owner.user_id)
    else:
        with pytest.raises(NotAllowed):
            identity.verified_numbers(caller, owner.user_id)
    if delete_allowed:
        identity.delete_account(caller, owner.user_id, signed_in_at=int(clock().timestamp()))
        assert identity.role_of(owner.user_id) is None
    else:
        with pytest.raises(NotAllowed):
            identity.delete_account(caller, owner.user_id)
        assert identity.role_of(owner.user_id) == "consumer"


def test_deleting_an_account_deletes_its_numbers_and_frees_them(identity, sms, clock, engine):
    identity.request_code(NUMBER, "10.0.0.1")
    owner = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    identity.delete_account(owner, owner.user_id, signed_in_at=int(clock().timestamp()))
    with Session(engine) as session:
        assert session.exec(select(VerifiedNumber)).all() == []
        assert session.exec(select(SmsCode)).all() == []
    clock.advance(minutes=2)
    identity.request_code(NUMBER, "10.0.0.1")
    assert identity.verify_code(NUMBER, last_code(sms), "10.0.0.1") != owner


def test_a_check_that_is_no_use_leaves_the_idle_limit_running(identity, sms, clock):
    """A part of a page refreshing itself on a timer checks the sign-in without using it: a tab
    left open still times out after 30 idle minutes."""
    identity.request_code(NUMBER, "10.0.0.1")
    who = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    started = int(clock().timestamp())
    assert identity.check_session(who.user_id, started) == who
    for _ in range(29):
        clock.advance(minutes=1)
        assert identity.check_session(who.user_id, started, touch=False) == who
    clock.advance(minutes=1, seconds=1)
    assert identity.check_session(who.user_id, started, touch=False) is None
    assert identity.check_session(who.user_id, started) is None  # ended, for a use too


def test_a_sign_in_ends_after_30_idle_minutes_or_12_hours_whatever_the_activity(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    who = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    started = int(clock().timestamp())
    assert identity.check_session(who.user_id, started) == who
    clock.advance(minutes=29)
    assert identity.check_session(who.user_id, started) == who  # used again: the idle clock restarts
    clock.advance(minutes=31)
    assert identity.check_session(who.user_id, started) is None  # idle too long
    assert identity.check_session(who.user_id, started) is None  # and it stays ended

    fresh = int(clock().timestamp())
    for _ in range(36):  # active every 20 minutes for 12 hours
        assert identity.check_session(who.user_id, fresh) == who
        clock.advance(minutes=20)
    clock.advance(minutes=1)
    assert identity.check_session(who.user_id, fresh) is None  # past the absolute limit


def test_signing_out_ends_the_portal_session(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    who = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    started = int(clock().timestamp())
    assert identity.check_session(who.user_id, started) == who
    identity.end_session(who.user_id, started)
    assert identity.check_session(who.user_id, started) is None


def test_the_sqlite_file_itself_holds_no_phone_number(tmp_path, keys, sms, clock):
    import httpx

    from core.adapters.sms import SmsGateway
    from core.services.identity import IdentityService

    engine = sqlite_engine(tmp_path / "file.sqlite3")
    client = httpx.Client(transport=httpx.MockTransport(sms), base_url="http://sms.test/")
    service = IdentityService(engine, keys, SmsGateway(client), clock=clock)
    service.request_code(NUMBER, "10.0.0.1")
    service.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    service.create_staff("operator", "ops.li", GOOD_PASSWORD, phone=OTHER)
    engine.dispose()
    content = b"".join(p.read_bytes() for p in tmp_path.glob("file.sqlite3*"))
    for number in (NUMBER, OTHER):
        assert number.encode() not in content and number.encode("utf-16-le") not in content


def test_the_sandbox_gateway_logs_the_code_for_developers_with_the_number_masked(identity, sms, caplog):
    caplog.set_level(logging.INFO, logger="sandbox.sms")
    identity.request_code(NUMBER, "10.0.0.1")
    assert last_code(sms) in caplog.text and "138****8000" in caplog.text
    assert NUMBER not in caplog.text


def test_deleting_my_account_needs_a_sign_in_from_the_last_ten_minutes(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    owner = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    signed_in = int(clock().timestamp())
    clock.advance(minutes=11)
    with pytest.raises(NotAllowed):
        identity.delete_account(owner, owner.user_id, signed_in_at=signed_in)
    assert identity.role_of(owner.user_id) == "consumer"


@pytest.mark.parametrize("role", ["operator", "admin", "analyst"])
def test_a_staff_account_is_not_deleted_by_its_holder_nor_by_another_admin(identity, clock, role):
    """Staff are disabled by an admin: their names stand in four-eyes requests and the audit
    chain (deleting one raised a foreign key error and logged a deletion that never happened)."""
    staff_id = identity.create_staff(role, f"{role}.self", GOOD_PASSWORD)
    holder = Principal(staff_id, Role(role))
    with pytest.raises(NotAllowed) as refused:
        identity.delete_account(holder, staff_id, signed_in_at=int(clock().timestamp()))
    assert refused.value.key == "error.account.staff"
    other_admin = Principal(identity.create_staff("admin", "other.admin", GOOD_PASSWORD), Role.ADMIN)
    with pytest.raises(NotAllowed):
        identity.delete_account(other_admin, staff_id)
    assert identity.role_of(staff_id) == role


def test_a_staff_number_already_held_by_a_consumer_is_refused(identity, sms):
    identity.request_code(NUMBER, "10.0.0.1")
    identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    with pytest.raises(InputError) as caught:
        identity.create_staff("operator", "ops.li", GOOD_PASSWORD, phone=NUMBER)
    assert caught.value.key == "error.phone.taken"


def test_a_totp_code_is_good_once(identity, clock):
    import pyotp

    user_id = identity.create_staff("admin", "root.admin", GOOD_PASSWORD)
    code = pyotp.TOTP(identity.enable_totp(user_id)).at(clock())
    identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=code)
    with pytest.raises(SignInRefused):
        identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=code)
    with pytest.raises(NotAllowed):  # and the secret is not silently replaced
        identity.enable_totp(user_id)
