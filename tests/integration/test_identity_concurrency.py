"""Many requests at once, on SQLite and PostgreSQL: codes are used once, limits hold."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlmodel import Session, select

from core.persistence.tables import AuthEvent
from core.services.identity.sms_sign_in import CodeRefused
from core.services.identity.staff_sign_in import SignInRefused
from core.services.identity.throttles import Throttled
from core.services.openid_models import Client, ProviderRequest
from core.services.openid_provider import PORTAL_CLIENT_ID, OpenIDProvider, SignedInPerson
from tests.support.keys import rsa_key
from tests.support.oidc import BASE, REDIRECT, pkce
from tests.support.people import last_code

NUMBER = "13800138000"
PASSWORD = "correct horse battery staple"


def attempt(fn, *args):
    try:
        return fn(*args)
    except (CodeRefused, SignInRefused, Throttled) as error:
        return type(error).__name__


def test_one_authorization_code_is_exchanged_once_however_many_try_at_once(engine, identity, sms):
    client = Client(PORTAL_CLIENT_ID, "secret", (REDIRECT,))
    provider = OpenIDProvider(engine, rsa_key("k"), issuer=f"{BASE}/idp", client=client)
    identity.request_code(NUMBER, "10.0.0.1")
    who = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": PORTAL_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s",
        "nonce": secrets.token_hex(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    request = ProviderRequest("GET", f"{BASE}/idp/authorize?{urlencode(query)}", query, {}, {})
    _, _, headers = provider.authorize(request, SignedInPerson(who.user_id, who.role, 0))
    code = parse_qs(urlparse(dict(headers)["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": PORTAL_CLIENT_ID,
        "client_secret": "secret",
    }

    def exchange(_):
        return provider.token(ProviderRequest("POST", f"{BASE}/idp/token", {}, dict(form), {}))[0]

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(exchange, range(6)))
    assert statuses.count(200) == 1 and statuses.count(400) == 5


def test_parallel_guesses_of_an_sms_code_are_counted_and_the_code_works_once(identity, sms):
    identity.request_code(NUMBER, "10.0.0.1")
    code = last_code(sms)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: attempt(identity.verify_code, NUMBER, wrong, "203.0.113.9"), range(30)))
    assert outcomes.count("CodeRefused") <= 5 and outcomes.count("Throttled") >= 25
    with ThreadPoolExecutor(6) as pool:
        signins = list(pool.map(lambda _: attempt(identity.verify_code, NUMBER, code, "10.0.0.1"), range(6)))
    assert sum(1 for s in signins if not isinstance(s, str)) == 1


def test_parallel_sms_requests_send_one_text(identity, sms):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: attempt(identity.request_code, NUMBER, "10.0.0.1"), range(8)))
    assert len(sms.sent) == 1


def test_parallel_wrong_passwords_reach_the_password_check_at_most_five_times(identity, engine):
    identity.create_staff("operator", "ops.li", PASSWORD)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(
            pool.map(
                lambda _: attempt(identity.sign_in_with_password, "ops.li", "wrong-password-1", "203.0.113.9"),
                range(40),
            )
        )
    assert outcomes.count("SignInRefused") <= 5
    with Session(engine) as session:
        failures = session.exec(select(AuthEvent).where(AuthEvent.outcome == "failure")).all()
    assert len(failures) <= 5


@pytest.mark.slow  # ~3-4 s a database
def test_an_attacker_who_keeps_guessing_never_locks_the_owner_out(identity, clock):
    identity.create_staff("operator", "victim", PASSWORD)
    assert identity.sign_in_with_password("victim", PASSWORD, "198.51.100.7")  # the owner's usual address
    owner_in = 0
    for minute in range(120):
        for i in range(3):  # three guesses a minute, each from a fresh address
            attempt(identity.sign_in_with_password, "victim", "guess", f"2001:db8:{minute}:{i}::1")
        if minute % 10 == 0:
            owner_in += not isinstance(attempt(identity.sign_in_with_password, "victim", PASSWORD, "198.51.100.7"), str)
        clock.advance(minutes=1)
    assert owner_in == 12


@pytest.mark.parametrize("n", [6])
def test_first_uses_of_a_session_at_once_do_not_fail(identity, sms, clock, n):
    identity.request_code(NUMBER, "10.0.0.1")
    who = identity.verify_code(NUMBER, last_code(sms), "10.0.0.1")
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: identity.check_session(who.user_id, int(clock().timestamp())), range(n)))
    assert all(r == who for r in results)


def test_first_sign_ins_of_one_external_subject_at_once_make_one_account(identity):
    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(lambda _: identity.account_for_external("https://idp.example", "alice"), range(6)))
    assert len(ids) == 1
