"""The built-in OpenID provider over HTTP: code flow with PKCE, signed ID tokens, sign-out.
Driven the way st.login drives it, on SQLite and PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from core.services.openid_models import Client
from core.services.openid_provider import PORTAL_CLIENT_ID, OpenIDProvider
from tests.support.keys import rsa_key
from tests.support.oidc import BASE, REDIRECT, authorize_query, csrf_of, pkce, provider_client
from tests.support.people import last_code

SECRET = "test-client-secret"


@pytest.fixture
def provider(engine):
    client = Client(PORTAL_CLIENT_ID, SECRET, (REDIRECT,))
    return OpenIDProvider(engine, rsa_key("test"), issuer=f"{BASE}/idp", client=client)


@pytest.fixture
def browser(provider, identity, keys):
    services = SimpleNamespace(provider=provider, keys=keys, identity=identity)  # what the routes need
    with provider_client(services) as client:
        yield client


def sign_in_by_sms(browser, sms, query: str, phone: str = "13800138000") -> str:
    page = browser.get(f"/idp/authorize?{query}")
    assert page.status_code == 200 and 'name="phone"' in page.text
    form = {"phone": phone, "continue": query, "csrf": csrf_of(page.text)}
    posted = browser.post("/idp/sms/send", data=form)
    assert posted.status_code == 303 and phone not in posted.headers["location"]  # post/redirect/get
    sent = browser.get(posted.headers["location"])
    assert "138****8000" in sent.text and phone not in sent.text.replace(f'value="{phone}"', "")
    done = browser.post("/idp/sms/verify", data={**form, "code": last_code(sms)})
    assert done.status_code == 303
    back = browser.get(done.headers["location"])
    assert back.status_code == 302
    location = urlparse(back.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    answer = parse_qs(location.query)
    assert answer["state"] == ["st-1"]
    return answer["code"][0]


def exchange(browser, code: str, verifier: str):
    return browser.post(
        "/idp/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        auth=(PORTAL_CLIENT_ID, SECRET),
    )


def test_discovery_and_keys_are_published(browser):
    meta = browser.get("/idp/.well-known/openid-configuration").json()
    assert meta["issuer"] == f"{BASE}/idp" and meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["end_session_endpoint"] == f"{BASE}/idp/logout"
    assert browser.get("/idp/jwks").json()["keys"][0]["kty"] == "RSA"


def test_a_consumer_signs_in_by_sms_and_receives_a_signed_id_token(browser, sms):
    verifier, challenge = pkce()
    code = sign_in_by_sms(browser, sms, authorize_query(challenge, nonce="n-123"))
    answer = exchange(browser, code, verifier)
    assert answer.status_code == 200, answer.text
    keys = KeySet.import_key_set(browser.get("/idp/jwks").json())
    token = jwt.decode(answer.json()["id_token"], keys)
    claims = token.claims
    assert claims["iss"] == f"{BASE}/idp" and claims["aud"] == [PORTAL_CLIENT_ID]
    assert claims["nonce"] == "n-123" and claims["role"] == "consumer"
    assert "13800138000" not in str(claims)
    assert "name" not in claims  # none in one language: the Account page names them in the reader's


def test_a_code_is_single_use_and_bound_to_its_pkce_verifier(browser, sms):
    _verifier, challenge = pkce()
    code = sign_in_by_sms(browser, sms, authorize_query(challenge))
    assert exchange(browser, code, "a-different-verifier-" + "x" * 30).json()["error"] == "invalid_grant"
    verifier2, challenge2 = pkce()
    code2 = browser.get(f"/idp/authorize?{authorize_query(challenge2)}")  # still signed in at the provider
    code2 = parse_qs(urlparse(code2.headers["location"]).query)["code"][0]
    assert exchange(browser, code2, verifier2).status_code == 200
    assert exchange(browser, code2, verifier2).json()["error"] == "invalid_grant"


def test_pkce_is_required(browser):
    page = browser.get(f"/idp/authorize?{authorize_query(None)}")
    assert page.status_code == 400


def test_an_unknown_redirect_uri_is_refused(browser):
    _, challenge = pkce()
    query = authorize_query(challenge).replace("oauth2callback", "elsewhere")
    assert browser.get(f"/idp/authorize?{query}").status_code == 400


def test_a_form_without_its_csrf_token_changes_nothing(browser, sms):
    _, challenge = pkce()
    query = authorize_query(challenge)
    browser.get(f"/idp/authorize?{query}")
    posted = browser.post("/idp/sms/send", data={"phone": "13800138000", "continue": query, "csrf": "forged"})
    assert posted.status_code == 303
    assert "表单已过期" in browser.get(posted.headers["location"]).text and not sms.sent


def test_a_wrong_code_shows_a_clear_message(browser, sms):
    _, challenge = pkce()
    query = authorize_query(challenge)
    page = browser.get(f"/idp/authorize?{query}")
    form = {"phone": "13800138000", "continue": query, "csrf": csrf_of(page.text)}
    browser.post("/idp/sms/send", data=form)
    wrong = f"{(int(last_code(sms)) + 1) % 10**6:06d}"
    answer = browser.post("/idp/sms/verify", data={**form, "code": wrong})
    assert answer.status_code == 303 and "还可以再试 4 次" in browser.get(answer.headers["location"]).text


def test_signing_out_ends_the_session_at_the_provider(browser, sms):
    _, challenge = pkce()
    sign_in_by_sms(browser, sms, authorize_query(challenge))
    out = browser.get(f"/idp/logout?post_logout_redirect_uri={BASE}/")
    assert out.status_code == 303 and out.headers["location"] == f"{BASE}/"
    again = browser.get(f"/idp/authorize?{authorize_query(challenge)}")
    assert again.status_code == 200 and 'name="phone"' in again.text  # asked to sign in again


def test_staff_sign_in_with_a_password(browser, identity):
    identity.create_staff("operator", "ops.li", "correct horse battery staple")
    verifier, challenge = pkce()
    query = authorize_query(challenge)
    page = browser.get(f"/idp/authorize?{query}")
    done = browser.post(
        "/idp/password",
        data={
            "username": "ops.li",
            "password": "correct horse battery staple",
            "continue": query,
            "csrf": csrf_of(page.text),
        },
    )
    assert done.status_code == 303
    code = parse_qs(urlparse(browser.get(done.headers["location"]).headers["location"]).query)["code"][0]
    claims = jwt.decode(
        exchange(browser, code, verifier).json()["id_token"], KeySet.import_key_set(browser.get("/idp/jwks").json())
    ).claims
    assert claims["role"] == "operator" and claims["name"] == "ops.li"


def refused(answer) -> bool:
    """No code: a 400 page, or (still signed in at the provider, e.g. Back after a sign-in) the portal."""
    return answer.status_code == 400 or (answer.status_code == 303 and answer.headers["location"] == f"{BASE}/")


def test_a_replayed_nonce_is_refused(browser, sms):
    _, challenge = pkce()
    sign_in_by_sms(browser, sms, authorize_query(challenge, nonce="once"))
    assert refused(browser.get(f"/idp/authorize?{authorize_query(challenge, nonce='once')}"))
    browser.get("/idp/logout")
    assert browser.get(f"/idp/authorize?{authorize_query(challenge, nonce='once')}").status_code == 400


@pytest.mark.parametrize(
    "target",
    ["http://localhost.evil.example/x", "http://localhost@evil.example/", "https://evil.example/", "//evil.example/"],
)
def test_sign_out_never_redirects_elsewhere(browser, target):
    out = browser.get("/idp/logout", params={"post_logout_redirect_uri": target})
    assert out.status_code == 303 and out.headers["location"] == f"{BASE}/"


def test_an_overlong_nonce_is_refused(browser):
    _, challenge = pkce()
    assert browser.get(f"/idp/authorize?{authorize_query(challenge, nonce='n' * 300)}").status_code == 400


def test_a_nonce_is_refused_after_its_code_was_exchanged(browser, sms):
    verifier, challenge = pkce()
    code = sign_in_by_sms(browser, sms, authorize_query(challenge, nonce="once-only"))
    assert exchange(browser, code, verifier).status_code == 200
    assert refused(browser.get(f"/idp/authorize?{authorize_query(challenge, nonce='once-only')}"))
