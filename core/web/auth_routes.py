"""The built-in OpenID provider's HTTP face: discovery, JWKS, authorize (with its sign-in
page: mobile number + SMS code, or staff password), token and end-session.

The provider remembers who signed in with its own signed cookie (path /idp, 12 hours at most),
so `st.login` after a sign-in completes without asking again, and `st.logout` ends it here too.

The sign-in page speaks the portal's language: OIDC `ui_locales` (what `st.login` sends, see
`login_name`), then `?lang=`, then the browser's Accept-Language. Every form post answers with
a 303 redirect (post/redirect/get): to the authorization on success, else back to the sign-in
page, which shows what the post left in a short-lived sealed cookie (the message, the number
typed, the language); so Back and reload never post again. A sign-in link that is not valid
gets a page that says so, in the reader's language; the protocol detail goes to the log.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import OAuth2Error
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core.config import ConfigError
from core.domain.device import client_key
from core.errors import PortalError
from core.i18n import DEFAULT_LANGUAGE, LANGUAGE_COOKIE, LANGUAGES, Translator
from core.security.fields import DecryptionFailed, FieldCipher
from core.security.keys import PortalKeys
from core.services.identity import IdentityService
from core.services.openid_models import ProviderRequest
from core.services.openid_provider import OpenIDProvider, ReplayedRequest, SignedInPerson

log = logging.getLogger(__name__)

SESSION_COOKIE = "portal_idp"
CSRF_COOKIE = "portal_idp_csrf"
FORM_COOKIE = "portal_idp_form"  # what the last form post left for the page after its redirect
SESSION_MAX_AGE_S = 12 * 3600  # the absolute limit of a sign-in
FORM_MAX_AGE_S = 10 * 60  # as long as an SMS code is valid
KEPT_INPUT = 64  # characters of a typed number or user name kept for the page (the inputs take fewer)
POLICY = "default-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
SIGN_IN_PATH = "/sign-in"  # the portal's Sign-in page (streamlit_app.py)


# --- the page's language ------------------------------------------------------------------------


def _supported(tag: str) -> str | None:
    """A language tag as one the pages speak: exact (`zh-CN`), else by its primary subtag
    (`en-GB` -> `en`, `zh-Hans` -> `zh-CN`)."""
    tag = tag.strip().lower()
    if not tag:
        return None
    for language in LANGUAGES:
        if tag == language.lower():
            return language
    primary = tag.split("-", 1)[0]
    return next((lang for lang in LANGUAGES if lang.lower().split("-", 1)[0] == primary), None)


def _from_accept_language(header: str) -> str | None:
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, parameters = item.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            ranked.append((-weight, position, tag))
    return next((found for _, _, tag in sorted(ranked) if (found := _supported(tag))), None)


def page_language(params: Mapping[str, str], accept_language: str = "", fallback: str = "") -> str:
    """OIDC `ui_locales` (space-separated, in order of preference) first, then `?lang=`, then
    what a form post remembered, then the browser's Accept-Language."""
    return (
        next((found for tag in params.get("ui_locales", "").split()[:10] if (found := _supported(tag))), None)
        or _supported(params.get("lang", ""))
        or _supported(fallback)
        or _from_accept_language(accept_language)
        or DEFAULT_LANGUAGE
    )


# --- what a form post leaves for the page after its redirect ------------------------------------


@dataclasses.dataclass(frozen=True)
class FormState:
    """Never in the URL: a cookie sealed with the portal's data key (AES-GCM), so the number
    typed is neither readable nor changeable in it."""

    language: str = ""
    phone: str = ""
    username: str = ""
    sent_to: str = ""  # the masked number a code went to
    message: str = ""  # an error, shown once
    card: str = ""  # the form the message belongs to: "send", "verify", "staff", or "" (the page)
    expires: int = 0

    def seal(self, cipher: FieldCipher) -> str:
        sealed = cipher.encrypt(json.dumps(dataclasses.asdict(self)), table="idp", column=FORM_COOKIE, row_id="")
        return base64.urlsafe_b64encode(sealed).decode()

    @classmethod
    def open(cls, cipher: FieldCipher, raw: str | None) -> FormState:
        if not raw or len(raw) > 3000:
            return cls()
        try:
            data = json.loads(cipher.decrypt(base64.urlsafe_b64decode(raw), table="idp", column=FORM_COOKIE, row_id=""))
            state = cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except (DecryptionFailed, ValueError, TypeError, KeyError):
            return cls()
        fields_ok = all(
            isinstance(getattr(state, f.name), type(getattr(cls(), f.name))) for f in dataclasses.fields(cls)
        )
        return state if fields_ok and state.expires > time.time() else cls()


# --- the routes ----------------------------------------------------------------------------------


def _client_address(request: Request) -> str:
    """The address the throttles count by (`core.domain.device.client_key`)."""
    return client_key(request.client.host if request.client else "unknown")


def _loggable(text: str | None) -> str:
    """An error description for the log: one line, bounded (it may quote request values)."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", text or "")[:200]


class SignInServices(Protocol):
    """What the provider's routes need of the portal (`core.bootstrap.Services` has it all)."""

    provider: OpenIDProvider | None
    keys: PortalKeys
    identity: IdentityService


class ProviderRoutes:
    """The provider's HTTP routes over the portal's services (read when a request comes)."""

    def __init__(self, services: Callable[[], SignInServices]) -> None:
        self._services = services

    def provider_and_signer(self) -> tuple[Any, URLSafeTimedSerializer]:
        built = self._services()
        if built.provider is None:  # the routes are mounted only with the built-in provider
            raise ConfigError("the built-in provider is off (PORTAL_AUTH=external)")
        return built.provider, URLSafeTimedSerializer(built.keys.cookie_secret, salt="portal-idp-session")

    def cipher(self) -> FieldCipher:
        return FieldCipher(self._services().keys.data_key)

    def portal_url(self, path: str, language: str) -> str:
        provider, _ = self.provider_and_signer()
        portal = provider.issuer.rsplit("/idp", 1)[0]
        return portal + path + ("" if language == DEFAULT_LANGUAGE else f"?lang={language}")

    def secure(self) -> bool:
        provider, _ = self.provider_and_signer()
        return bool(provider.issuer.startswith("https://"))

    def signed_in(self, request: Request) -> SignedInPerson | None:
        _, signer = self.provider_and_signer()
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = signer.loads(raw, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        return SignedInPerson(data["sub"], data["role"], int(data["auth_time"]))

    def form_state(self, request: Request) -> FormState:
        return FormState.open(self.cipher(), request.cookies.get(FORM_COOKIE))

    def keep_form_state(self, response: Response, state: FormState) -> None:
        state = state if state.expires else dataclasses.replace(state, expires=int(time.time()) + FORM_MAX_AGE_S)
        response.set_cookie(
            FORM_COOKIE,
            state.seal(self.cipher()),
            max_age=max(1, state.expires - int(time.time())),
            path="/idp",
            httponly=True,
            samesite="lax",
            secure=self.secure(),
        )

    def oauth_request(self, request: Request, form: dict[str, str] | None = None) -> ProviderRequest:
        query = dict(request.query_params)
        return ProviderRequest(request.method, str(request.url), query, form or {}, request.headers)

    def as_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body or b"", status_code=status, headers=dict(headers))

    def html_page(self, body: str, status: int = 200) -> HTMLResponse:
        response = HTMLResponse(body, status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = POLICY
        return response

    async def discovery(self, request: Request) -> Response:
        provider, _ = self.provider_and_signer()
        return JSONResponse(provider.discovery(authorize_url=f"{provider.issuer}/authorize"))

    async def jwks(self, request: Request) -> Response:
        provider, _ = self.provider_and_signer()
        return JSONResponse(provider.jwks())

    async def authorize(self, request: Request) -> Response:
        provider, _ = self.provider_and_signer()
        state = self.form_state(request)
        language = page_language(request.query_params, request.headers.get("accept-language", ""), state.language)
        oauth = self.oauth_request(request)
        person = self.signed_in(request)
        try:
            await run_in_threadpool(provider.validate_authorization, oauth)
        except ReplayedRequest as error:
            if person is not None:  # Back to a sign-in that is done: the portal, signed in
                log.info("an authorization request was opened again after its sign-in; sent to the portal")
                return RedirectResponse(
                    self.portal_url("/", language), status_code=303, headers={"Cache-Control": "no-store"}
                )
            return self.not_valid(language, error)
        except OAuth2Error as error:
            return self.not_valid(language, error)
        if person is None:
            return self.sign_in_page(request, language, state)
        status, body, headers = await run_in_threadpool(provider.authorize, oauth, person)
        response = self.as_response(status, body, headers)
        # Never from the browser's cache: Back would replay the redirect with its (used) code.
        response.headers["Cache-Control"] = "no-store"
        # Streamlit lands the browser on "/" after sign-in, without the portal's ?lang: leave
        # the language the sign-in was made in where the portal's frame looks for it.
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, path="/", samesite="lax")
        return response

    def not_valid(self, language: str, error: OAuth2Error) -> Response:
        log.warning("refused an authorization request: %s: %s", error.error, _loggable(error.description))
        t = Translator(language)
        return self.html_page(
            _render(
                "invalid",
                language,
                page_title=t("signin.invalid_title"),
                portal_home=self.portal_url("/", language),
                title=t("signin.invalid_title"),
                text=t("signin.invalid_text"),
                action=t("signin.invalid_action"),
                sign_in_url=self.portal_url(SIGN_IN_PATH, language),
            ),
            400,
        )

    def sign_in_page(self, request: Request, language: str, state: FormState) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = self.html_page(
            _sign_in_html(language, request.url.query, csrf, state, portal_home=self.portal_url("/", language))
        )
        response.set_cookie(CSRF_COOKIE, csrf, path="/idp", httponly=True, samesite="lax", secure=self.secure())
        if state.message:  # shown once: a reload is quiet, the number typed stays
            self.keep_form_state(response, dataclasses.replace(state, message="", card=""))
        return response

    async def form_action(
        self,
        request: Request,
        card: str,
        action: Callable[[dict[str, str], FormState, str], Awaitable[Response]],
    ) -> Response:
        """Runs `action(form, state, authorization)`: `state` is what the page shows now (for
        the action to amend), `authorization` the URL of the sign-in's authorization request."""
        provider, _ = self.provider_and_signer()
        form = {k: str(v) for k, v in (await request.form()).items()}
        query = form.get("continue", "")
        previous = self.form_state(request)
        language = page_language(dict(parse_qsl(query)), request.headers.get("accept-language", ""), previous.language)
        back = f"{provider.issuer}/authorize?{query}"  # the sign-in page again, by GET
        if not secrets.compare_digest(form.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "-")):
            # Nothing done and nothing kept from the form: it may come from another site.
            log.info("a sign-in form arrived without its CSRF token; nothing done")
            return self.redirect_with(back, FormState(language, message=Translator(language)("signin.expired_form")))
        shown = FormState(language, phone=previous.phone, username=previous.username, sent_to=previous.sent_to)
        try:
            return await action(form, shown, back)
        except PortalError as error:
            phone = form.get("phone", "")[:KEPT_INPUT] if card in ("send", "verify") else shown.phone
            state = dataclasses.replace(
                shown,
                phone=phone,
                username=form.get("username", "")[:KEPT_INPUT] if card == "staff" else shown.username,
                sent_to=shown.sent_to if phone == shown.phone else "",
                message=Translator(language).error(error),
                card=card,
            )
            return self.redirect_with(back, state)

    def redirect_with(self, target: str, state: FormState) -> Response:
        response = RedirectResponse(target, status_code=303)
        self.keep_form_state(response, state)
        return response

    async def sms_send(self, request: Request) -> Response:
        async def action(form: dict[str, str], shown: FormState, back: str) -> Response:
            identity = self._services().identity
            phone = form.get("phone", "")
            masked = await run_in_threadpool(identity.request_code, phone, _client_address(request))
            return self.redirect_with(back, dataclasses.replace(shown, phone=phone[:KEPT_INPUT], sent_to=masked))

        return await self.form_action(request, "send", action)

    async def sms_verify(self, request: Request) -> Response:
        async def action(form: dict[str, str], shown: FormState, back: str) -> Response:
            identity = self._services().identity
            who = await run_in_threadpool(
                identity.verify_code, form.get("phone", ""), form.get("code", ""), _client_address(request)
            )
            return self._signed_in_redirect(who.user_id, who.role, back)

        return await self.form_action(request, "verify", action)

    async def password(self, request: Request) -> Response:
        async def action(form: dict[str, str], shown: FormState, back: str) -> Response:
            identity = self._services().identity
            who = await run_in_threadpool(
                identity.sign_in_with_password,
                form.get("username", ""),
                form.get("password", ""),
                _client_address(request),
                form.get("totp", ""),
            )
            return self._signed_in_redirect(who.user_id, who.role, back)

        return await self.form_action(request, "staff", action)

    def _signed_in_redirect(self, user_id: str, role: str, authorization: str) -> Response:
        _, signer = self.provider_and_signer()
        response = RedirectResponse(authorization, status_code=303)
        token = signer.dumps({"sub": user_id, "role": role, "auth_time": int(time.time())})
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_MAX_AGE_S,
            path="/idp",
            httponly=True,
            samesite="lax",
            secure=self.secure(),
        )
        response.delete_cookie(FORM_COOKIE, path="/idp")
        return response

    async def token(self, request: Request) -> Response:
        provider, _ = self.provider_and_signer()
        form = {k: str(v) for k, v in (await request.form()).items()}
        status, body, headers = await run_in_threadpool(provider.token, self.oauth_request(request, form))
        return self.as_response(status, body, headers)

    async def logout(self, request: Request) -> Response:
        provider, _ = self.provider_and_signer()
        portal = provider.issuer.rsplit("/idp", 1)[0]
        target = request.query_params.get("post_logout_redirect_uri") or ""
        wanted, home = urlsplit(target), urlsplit(portal)
        same_origin = (wanted.scheme, wanted.netloc) == (home.scheme, home.netloc) and not wanted.username
        response = RedirectResponse(target if same_origin else portal + "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/idp")
        response.delete_cookie(FORM_COOKIE, path="/idp")
        return response

    def routes(self) -> list[Route]:
        return [
            Route("/idp/.well-known/openid-configuration", self.discovery),
            Route("/idp/jwks", self.jwks),
            Route("/idp/authorize", self.authorize),
            Route("/idp/sms/send", self.sms_send, methods=["POST"]),
            Route("/idp/sms/verify", self.sms_verify, methods=["POST"]),
            Route("/idp/password", self.password, methods=["POST"]),
            Route("/idp/token", self.token, methods=["POST"]),
            Route("/idp/logout", self.logout),
        ]


def auth_routes(services: Callable[[], SignInServices]) -> list[Route]:
    return ProviderRoutes(services).routes()


# --- the pages ------------------------------------------------------------------------------------


def _templates() -> tuple[string.Template, dict[str, string.Template]]:
    """signin.html: the layout (portal header, styles), then each page's main part after a
    `<!--main:NAME-->` line."""
    text = Path(__file__).with_name("signin.html").read_text(encoding="utf-8")
    layout, *parts = re.split(r"^<!--main:([a-z-]+)-->\n", text, flags=re.M)
    return string.Template(layout), {
        name: string.Template(body) for name, body in zip(parts[::2], parts[1::2], strict=True)
    }


_LAYOUT, _MAINS = _templates()


@cache
def _font_face() -> str:
    """The portal's own font (Streamlit's Source Sans, served by the portal's server under
    /static/media): same origin, so the page's policy allows it. Empty when not found; the
    font list then falls back to Noto Sans CJK SC and the system's sans-serif."""
    spec = find_spec("streamlit")
    for location in (spec.submodule_search_locations or []) if spec else []:
        for font in sorted((Path(location) / "static" / "static" / "media").glob("SourceSansVF-Upright*.woff2")):
            return (
                '@font-face { font-family: "Source Sans"; font-weight: 100 900; font-style: normal; '
                f'font-display: swap; src: url("/static/media/{font.name}") format("woff2") }}'
            )
    return ""


def _render(main: str, language: str, *, page_title: str, portal_home: str, **values: str) -> str:
    """A page in the layout; every value is escaped here, except the ready-made HTML in
    `values` whose name ends with `_html`."""
    e = html.escape
    body = _MAINS[main].substitute(
        {k.removesuffix("_html"): (v if k.endswith("_html") else e(v)) for k, v in values.items()}
    )
    return _LAYOUT.substitute(
        lang=e(language),
        page_title=e(page_title),
        font_face=_font_face(),
        portal_home=e(portal_home),
        portal=e(Translator(language)("app.title")),
        main=body,
    )


def _sign_in_html(language: str, query: str, csrf: str, state: FormState, *, portal_home: str) -> str:
    """The provider's sign-in page; every text from the catalogs."""
    t = Translator(language)
    e = html.escape

    def notice(card: str) -> str:
        if not state.message or state.card != card:
            return ""
        return f'<p class="notice error" role="alert">{e(state.message)}</p>'

    sent = ""
    if state.sent_to:
        sent = f'<p class="notice ok" role="status">{e(t("signin.code_sent", masked=state.sent_to))}</p>'
    hidden = f'<input type="hidden" name="continue" value="{e(query)}">'
    hidden += f'<input type="hidden" name="csrf" value="{e(csrf)}">'
    return _render(
        "sign-in",
        language,
        page_title=t("signin.title"),
        portal_home=portal_home,
        title=t("signin.title"),
        notice_html=notice(""),
        send_notice_html=notice("send"),
        verify_notice_html=notice("verify"),
        staff_notice_html=notice("staff"),
        sent_html=sent,
        hidden_html=hidden,
        phone=state.phone,
        username=state.username,
        consumer_title=t("signin.consumer_title"),
        consumer_how=t("signin.consumer"),
        consumer_hint=t("signin.consumer_hint"),
        phone_label=t("signin.phone"),
        phone_placeholder=t("signin.phone_placeholder"),
        send_code=t("signin.send_code"),
        code_label=t("signin.code"),
        verify=t("signin.verify"),
        staff_title=t("signin.staff"),
        staff_how=t("signin.staff_hint"),
        username_label=t("signin.username"),
        password_label=t("signin.password"),
        totp_label=t("signin.totp"),
        staff_submit=t("signin.staff_submit"),
    )
