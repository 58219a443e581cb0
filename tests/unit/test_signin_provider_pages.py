"""The built-in provider's sign-in pages over HTTP: the portal's language (OIDC `ui_locales`),
a styled page for a sign-in link that is not valid, and post/redirect/get for every form."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from core.adapters.sms import SmsGateway
from core.bootstrap import streamlit_auth_secrets
from core.config import Settings
from core.services.identity import IdentityService
from core.services.openid_models import Client
from core.services.openid_provider import LOGIN_NAME, PORTAL_CLIENT_ID, OpenIDProvider
from tests.support import oidc
from tests.support.db import sqlite_engine
from tests.support.keys import rsa_key
from tests.support.oidc import BASE, REDIRECT, csrf_of, provider_client
from tests.support.people import last_code

PHONE = "13800138000"
MASKED = "138****8000"
EN_TITLE = "Sign in to the balance recovery portal"
ZH_TITLE = "登录话费回收比价"

CHALLENGE = oidc.challenge_of("v" * 50)


@pytest.fixture
def services(tmp_path, keys, sms):
    engine = sqlite_engine(tmp_path / "portal.sqlite3")
    sms_http = httpx.Client(transport=httpx.MockTransport(sms), base_url="http://sms.test/")
    identity = IdentityService(engine, keys, SmsGateway(sms_http))
    client = Client(PORTAL_CLIENT_ID, "test-client-secret", (REDIRECT,))
    provider = OpenIDProvider(engine, rsa_key("test"), issuer=f"{BASE}/idp", client=client)
    yield SimpleNamespace(provider=provider, keys=keys, identity=identity)  # what the routes need
    engine.dispose()


@pytest.fixture
def browser(services):
    with provider_client(services) as client:
        yield client


def authorize_query(**extra: str) -> str:
    return oidc.authorize_query(CHALLENGE, **extra)


def text_of(page: str) -> str:
    """What a reader sees: the page without its tags, styles and attribute values."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def open_page(browser, query: str, **headers: str):
    page = browser.get(f"/idp/authorize?{query}", headers=headers)
    assert page.status_code == 200, page.text
    return page


def follow(browser, answer):
    """The GET a browser makes after a 303 (post/redirect/get)."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    location = answer.headers["location"]
    assert PHONE not in location
    return browser.get(location)


# --- 1. the portal's language, carried as OIDC ui_locales ---------------------------------------------


@pytest.mark.parametrize(
    ("extra", "accept", "title"),
    [
        ({"ui_locales": "en"}, "zh-CN,zh;q=0.9", EN_TITLE),
        ({"ui_locales": "zh-CN"}, "en-US,en;q=0.9", ZH_TITLE),
        ({"ui_locales": "fr en"}, "zh-CN", EN_TITLE),  # the first language the page speaks
        ({"ui_locales": "en-GB"}, "zh-CN", EN_TITLE),
        ({"ui_locales": "zh-Hans", "lang": "en"}, "en", ZH_TITLE),  # ui_locales before ?lang
        ({"lang": "en"}, "zh-CN", EN_TITLE),  # then ?lang
        ({}, "en-US,en;q=0.9", EN_TITLE),  # then the browser's Accept-Language
        ({}, "fr-FR, en;q=0.5, zh-CN;q=0.8", ZH_TITLE),  # by preference, not by position
    ],
)
def test_the_sign_in_page_speaks_ui_locales_then_lang_then_accept_language(browser, extra, accept, title):
    page = open_page(browser, authorize_query(**extra), **{"accept-language": accept})
    assert title in page.text
    assert f'lang="{"en" if title == EN_TITLE else "zh-CN"}"' in page.text


def test_discovery_lists_the_languages_the_provider_speaks(browser):
    meta = browser.get("/idp/.well-known/openid-configuration").json()
    assert meta["ui_locales_supported"] == ["zh-CN", "en"]


def test_the_auth_secrets_name_one_provider_per_portal_language(services):
    from core.services.openid_provider import login_name

    auth = streamlit_auth_secrets(Settings(public_url=BASE), services.keys, services.provider, env={})
    assert login_name("zh-CN") == LOGIN_NAME  # the name st.login uses for the default language
    names = {language: login_name(language) for language in ("zh-CN", "en")}
    assert len(set(names.values())) == 2 and not any("_" in n for n in names.values())  # st.login refuses "_"
    for language, name in names.items():
        section = auth[name]
        assert section["authorize_params"] == {"ui_locales": language}
        assert section["client_id"] == PORTAL_CLIENT_ID and section["client_secret"] == "test-client-secret"
        assert section["server_metadata_url"] == f"{BASE}/idp/.well-known/openid-configuration"
    assert auth["redirect_uri"] == REDIRECT


def test_external_auth_is_left_as_it_was(services):
    env = {"AUTH_SERVER_METADATA_URL": "https://idp.example/.well-known/openid-configuration", "AUTH_CLIENT_ID": "x"}
    auth = streamlit_auth_secrets(Settings(public_url=BASE, external_auth=True), services.keys, None, env=env)
    assert auth["server_metadata_url"] == env["AUTH_SERVER_METADATA_URL"] and "authorize_params" not in auth
    assert not [k for k, v in auth.items() if isinstance(v, dict) and "server_metadata_url" in v]


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_streamlits_oauth_client_really_sends_ui_locales(services, language):
    """Authlib forwards only some client_kwargs; `authorize_params` reaches the authorize URL."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from authlib.integrations import starlette_client
    from streamlit.web.server.starlette.starlette_auth_routes import _AuthlibConfig, _create_streamlit_oauth_class

    from core.services.openid_provider import login_name

    name = login_name(language)
    secrets = streamlit_auth_secrets(Settings(public_url=BASE), services.keys, services.provider, {})
    oauth = _create_streamlit_oauth_class(starlette_client)(config=_AuthlibConfig(secrets))
    oauth.register(name)
    client = oauth.create_client(name)

    async def metadata() -> dict:
        return services.provider.discovery(authorize_url=f"{BASE}/idp/authorize")

    client.load_server_metadata = metadata
    # A thread of its own: a browser test's Playwright may already run an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        url = pool.submit(asyncio.run, client.create_authorization_url(REDIRECT)).result()["url"]
    assert parse_qs(urlparse(url).query)["ui_locales"] == [language]


def test_the_language_survives_every_step_of_a_failed_and_a_good_sign_in(browser, sms):
    query = authorize_query(ui_locales="en")
    headers = {"accept-language": "zh-CN"}  # a Chinese browser, an English portal
    page = open_page(browser, query, **headers)
    form = {"phone": PHONE, "continue": query, "csrf": csrf_of(page.text)}
    sent = follow(browser, browser.post("/idp/sms/send", data=form, headers=headers))
    assert EN_TITLE in sent.text and f"A code was sent to {MASKED}" in sent.text
    wrong = f"{(int(last_code(sms)) + 1) % 10**6:06d}"
    failed = follow(browser, browser.post("/idp/sms/verify", data={**form, "code": wrong}, headers=headers))
    assert EN_TITLE in failed.text and "Wrong code; 4 tries left." in failed.text, text_of(failed.text)
    assert 'name="continue" value="' in failed.text and "ui_locales=en" in failed.text
    done = browser.post("/idp/sms/verify", data={**form, "code": last_code(sms)}, headers=headers)
    assert done.status_code == 303
    callback = browser.get(done.headers["location"])
    assert callback.status_code == 302 and callback.headers["location"].startswith(REDIRECT)


# --- 2. a sign-in link that is not valid --------------------------------------------------------------


GOOD = parse_qs(authorize_query())
BAD_LINKS = {
    "unknown client": authorize_query(client_id="somebody-else"),
    "no redirect_uri": urlencode({k: v[0] for k, v in GOOD.items() if k != "redirect_uri"}),
    "garbled redirect_uri": authorize_query(redirect_uri="http://localhost/oauth2callback%00x"),
    "foreign redirect_uri": authorize_query(redirect_uri="https://evil.example/oauth2callback"),
    "no response_type": urlencode({k: v[0] for k, v in GOOD.items() if k != "response_type"}),
    "unsupported response_type": authorize_query(response_type="token"),
    "no PKCE": urlencode({k: v[0] for k, v in GOOD.items() if not k.startswith("code_challenge")}),
    "plain PKCE": authorize_query(code_challenge_method="plain"),
    "nothing at all": "",
    "not a query": "%ff%fe=%00&&&=",
}


@pytest.mark.parametrize("query", list(BAD_LINKS.values()), ids=list(BAD_LINKS))
def test_a_sign_in_link_that_is_not_valid_gets_a_clear_page_in_chinese(browser, query, caplog):
    with caplog.at_level(logging.INFO, logger="core.web.auth_routes"):
        page = browser.get(f"/idp/authorize?{query}", headers={"accept-language": "zh-CN"})
    assert page.status_code == 400
    assert "text/html" in page.headers["content-type"]
    shown = text_of(page.text)
    assert "登录链接无效" in shown and "话费余额回收比价" in shown
    assert f'href="{BASE}/sign-in"' in page.text
    for raw in ("invalid_client", "invalid_request", "unsupported_response_type", "does not exist", "redirect_uri"):
        assert raw not in shown
    logged = [r for r in caplog.records if r.name == "core.web.auth_routes" and r.levelno >= logging.INFO]
    assert logged and re.search(r"invalid_\w+|unsupported_\w+", logged[-1].getMessage())
    assert "test-client-secret" not in caplog.text


def test_a_sign_in_link_that_is_not_valid_gets_a_clear_page_in_english(browser, caplog):
    query = authorize_query(client_id="somebody-else", ui_locales="en")
    with caplog.at_level(logging.INFO, logger="core.web.auth_routes"):
        page = browser.get(f"/idp/authorize?{query}", headers={"accept-language": "zh-CN"})
    assert page.status_code == 400
    shown = text_of(page.text)
    assert "This sign-in link is not valid" in shown and "Phone-balance recovery compared" in shown
    assert f'href="{BASE}/sign-in?lang=en"' in page.text
    assert "invalid_client" not in shown and "does not exist" not in shown
    assert "invalid_client" in caplog.text and "The client does not exist" in caplog.text


def test_back_to_a_used_sign_in_link_when_signed_in_goes_to_the_portal(browser, sms):
    query = authorize_query(ui_locales="en")
    page = open_page(browser, query)
    form = {"phone": PHONE, "continue": query, "csrf": csrf_of(page.text)}
    browser.post("/idp/sms/send", data=form)
    code = browser.get(browser.post("/idp/sms/verify", data={**form, "code": last_code(sms)}).headers["location"])
    assert code.status_code == 302 and code.headers["cache-control"] == "no-store"  # Back must ask again
    again = browser.get(f"/idp/authorize?{query}")  # Back: the same request, its nonce already used
    assert again.status_code == 303 and again.headers["location"] == f"{BASE}/?lang=en"


# --- 3. post/redirect/get -----------------------------------------------------------------------------


def test_sending_a_code_answers_with_a_redirect_to_a_page_that_says_so(browser, sms):
    query = authorize_query()
    page = open_page(browser, query)
    answer = browser.post("/idp/sms/send", data={"phone": PHONE, "continue": query, "csrf": csrf_of(page.text)})
    after = follow(browser, answer)
    assert after.status_code == 200 and f"验证码已发送至 {MASKED}" in after.text
    assert f'value="{PHONE}"' in after.text  # the number already typed, kept for the code form
    assert sms.sent
    reload = browser.get(answer.headers["location"])  # reload: harmless, sends nothing, keeps the number
    assert reload.status_code == 200 and f'value="{PHONE}"' in reload.text and len(sms.sent) == 1


def test_a_refused_number_redirects_to_the_page_with_the_message_and_the_number(browser, sms):
    query = authorize_query()
    page = open_page(browser, query)
    answer = browser.post("/idp/sms/send", data={"phone": "12345", "continue": query, "csrf": csrf_of(page.text)})
    after = follow(browser, answer)
    assert 'role="alert"' in after.text and 'value="12345"' in after.text and not sms.sent
    again = browser.get(answer.headers["location"])  # the message was shown once; a reload is quiet
    assert 'role="alert"' not in again.text and 'value="12345"' in again.text


def test_a_wrong_code_redirects_to_the_page_with_the_message(browser, sms):
    query = authorize_query()
    page = open_page(browser, query)
    form = {"phone": PHONE, "continue": query, "csrf": csrf_of(page.text)}
    follow(browser, browser.post("/idp/sms/send", data=form))
    wrong = f"{(int(last_code(sms)) + 1) % 10**6:06d}"
    after = follow(browser, browser.post("/idp/sms/verify", data={**form, "code": wrong}))
    assert "还可以再试 4 次" in after.text and f'value="{PHONE}"' in after.text


def test_a_wrong_password_redirects_to_the_page_with_the_message(browser, services):
    services.identity.create_staff("operator", "ops.li", "correct horse battery staple")
    query = authorize_query(ui_locales="en")
    page = open_page(browser, query)
    form = {"username": "ops.li", "password": "wrong", "continue": query, "csrf": csrf_of(page.text)}
    after = follow(browser, browser.post("/idp/password", data=form))
    assert "Wrong user name, password or code." in after.text and 'value="ops.li"' in after.text
    assert "wrong" not in re.findall(r'value="([^"]*)"', after.text)  # a password is never sent back


def test_good_sign_ins_redirect_to_the_authorization(browser, sms, services):
    services.identity.create_staff("operator", "ops.li", "correct horse battery staple")
    query = authorize_query()
    page = open_page(browser, query)
    form = {"username": "ops.li", "password": "correct horse battery staple", "continue": query}
    done = browser.post("/idp/password", data={**form, "csrf": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == f"{BASE}/idp/authorize?{query}"


def test_a_form_without_its_csrf_token_changes_nothing_and_redirects(browser, sms):
    query = authorize_query(ui_locales="en")
    open_page(browser, query)
    for path, extra in [("/idp/sms/send", {}), ("/idp/sms/verify", {"code": "123456"}), ("/idp/password", {})]:
        form = {"phone": PHONE, "username": "x", "password": "y", "continue": query, "csrf": "forged", **extra}
        after = follow(browser, browser.post(path, data=form))
        assert "The form expired; please try again." in after.text
    assert not sms.sent
    assert browser.get(f"/idp/authorize?{query}").status_code == 200  # not signed in


def test_the_form_state_cookie_is_sealed(browser):
    """The number travels in a cookie only, sealed: neither readable nor changeable by hand."""
    query = authorize_query()
    page = open_page(browser, query)
    answer = browser.post("/idp/sms/send", data={"phone": "12345678901", "continue": query, "csrf": csrf_of(page.text)})
    cookies = answer.headers.get_list("set-cookie")
    state = [c for c in cookies if "12345678901" in c or "idp_form" in c]
    assert state and all("12345678901" not in c and "HttpOnly" in c and "Path=/idp" in c for c in state)
    browser.cookies.set("portal_idp_form", "tampered", path="/idp")
    assert browser.get(f"/idp/authorize?{query}").status_code == 200


# --- 4. looks like the portal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "name"), [("zh-CN", "话费余额回收比价"), ("en", "Phone-balance recovery compared")]
)
def test_the_page_has_the_portals_header_and_two_cards_and_a_strict_policy(browser, language, name):
    page = open_page(browser, authorize_query(ui_locales=language))
    assert re.search(rf"<header[^>]*>.*{re.escape(name)}.*</header>", page.text, flags=re.S)
    assert page.text.count('class="card') >= 2
    assert "#1677ff" in page.text.lower() and "Noto Sans CJK SC" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "form-action 'self'" in policy
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text.replace(f'href="{BASE}/', 'href="/'))
    assert not re.search(r"url\((['\"])?(https?:)?//", page.text)
