"""Codes typed with a Chinese input method (full-width digits, ideographic spaces) are the same
codes; anything else in a code field is an ordinary wrong try, never a crash. On SQLite and
PostgreSQL, at the service level (the sign-in routes and pages call these methods)."""

from __future__ import annotations

import pyotp
import pytest

from core.services.identity.sms_sign_in import CodeRefused
from core.services.identity.staff_sign_in import SignInRefused
from tests.support.people import last_code

NUMBER = "13800138000"
GOOD_PASSWORD = "correct horse battery staple"
FULL_WIDTH = {ord("0") + i: 0xFF10 + i for i in range(10)}
ARABIC_INDIC = {ord("0") + i: 0x0660 + i for i in range(10)}
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def full_width(code: str) -> str:
    return code.translate(FULL_WIDTH)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def staff_totp(identity, clock):
    """(the admin's current TOTP code, the admin's TOTP) for `root.admin`."""
    user_id = identity.create_staff("admin", "root.admin", GOOD_PASSWORD)
    totp = pyotp.TOTP(identity.enable_totp(user_id))
    return totp.at(clock()), totp


# --- TOTP -------------------------------------------------------------------------------------


def test_the_right_totp_code_in_full_width_digits_signs_staff_in(identity, staff_totp):
    code, _ = staff_totp
    who = identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=full_width(code))
    assert who.role == "admin"


def test_the_right_totp_code_with_ideographic_and_ordinary_spaces_signs_staff_in(identity, staff_totp):
    code, _ = staff_totp
    typed = f"\u3000{full_width(code[:3])} {code[3:]}\u3000"
    assert identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=typed).role == "admin"


def test_a_full_width_totp_code_is_still_good_only_once(identity, staff_totp):
    code, _ = staff_totp
    identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=code)
    with pytest.raises(SignInRefused):
        identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=full_width(code))


def test_a_wrong_totp_code_in_full_width_digits_is_an_ordinary_refusal(identity, staff_totp):
    code, _ = staff_totp
    with pytest.raises(SignInRefused) as caught:
        identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=full_width(wrong(code)))
    assert caught.value.key == "error.signin.refused"


@pytest.mark.parametrize(
    "junk",
    [
        lambda code: "abcdef",
        lambda code: code + "7",  # seven digits
        lambda code: code[:5],
        lambda code: code.translate(SUPERSCRIPT),  # the right code's look-alike: NFKC read it as the code
        lambda code: "🔢" * 6,
        lambda code: code[:3] + "\x00" + code[3:],
        lambda code: "",
        lambda code: "1" * 1_000_000,
    ],
    ids=["letters", "seven_digits", "five_digits", "superscript", "emoji", "nul", "empty", "a_megabyte"],
)
def test_junk_in_the_totp_field_is_an_ordinary_refusal(identity, staff_totp, junk):
    code, _ = staff_totp
    with pytest.raises(SignInRefused) as caught:
        identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=junk(code))
    assert caught.value.key == "error.signin.refused"
    # and the right code still works afterwards
    assert identity.sign_in_with_password("root.admin", GOOD_PASSWORD, "10.0.0.1", totp=code).role == "admin"


# --- SMS codes ----------------------------------------------------------------------------------


def test_the_right_sms_code_in_full_width_digits_signs_in(identity, sms):
    identity.request_code(NUMBER, "10.0.0.1")
    assert identity.verify_code(NUMBER, full_width(last_code(sms)), "10.0.0.1").role == "consumer"


def test_the_right_sms_code_in_another_scripts_digits_signs_in(identity, sms):
    """A decimal digit is a digit in any script, as in numbers and amounts (`typed_text`)."""
    identity.request_code(NUMBER, "10.0.0.1")
    assert identity.verify_code(NUMBER, last_code(sms).translate(ARABIC_INDIC), "10.0.0.1").role == "consumer"


def test_a_wrong_sms_code_in_full_width_digits_is_an_ordinary_wrong_try(identity, sms):
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    with pytest.raises(CodeRefused) as caught:
        identity.verify_code(NUMBER, full_width(wrong(code)), "10.0.0.1")
    assert caught.value.key == "error.sms.wrong" and caught.value.params["left"] == 4
    assert identity.verify_code(NUMBER, code, "10.0.0.1").role == "consumer"


def test_a_full_width_sms_code_proves_another_number_too(identity, sms, clock):
    identity.request_code(NUMBER, "10.0.0.1")
    who = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    clock.advance(minutes=2)
    identity.request_code("13912345678", "10.0.0.1")
    assert identity.add_number(who, "13912345678", full_width(last_code(sms)), "10.0.0.1") == "139****5678"


@pytest.mark.parametrize(
    "junk",
    [
        lambda code: "abcdef",
        lambda code: code + "7",
        lambda code: code.translate(SUPERSCRIPT),  # only looks like the code: NFKC read it as the code
        lambda code: "🔢" * 6,
        lambda code: "1" * 1_000_000,
    ],
    ids=["letters", "seven_digits", "superscript", "emoji", "a_megabyte"],
)
def test_junk_in_the_sms_code_field_is_an_ordinary_wrong_try(identity, sms, junk):
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    with pytest.raises(CodeRefused) as caught:
        identity.verify_code(NUMBER, junk(code), "10.0.0.1")
    assert caught.value.key == "error.sms.wrong"
    assert identity.verify_code(NUMBER, code, "10.0.0.1").role == "consumer"
