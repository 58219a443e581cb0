"""The built-in OpenID provider's HTTP face: discovery, JWKS, authorize (with its sign-in
page: mobile number + SMS code, or staff password), token and end-session.

The provider remembers who signed in with its own signed cookie (path /idp, 12 hours at most),
so `st.login` after a sign-in completes without asking again, and `st.logout` ends it here too.
"""

from __future__ import annotations

import html
import ipaddress
import secrets
import string
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core.bootstrap import Services
from core.errors import PortalError
from core.i18n import Translator
from core.services.openid_provider import ProviderRequest, SignedInPerson

SESSION_COOKIE = "portal_idp"
CSRF_COOKIE = "portal_idp_csrf"
SESSION_MAX_AGE_S = 12 * 3600  # the absolute limit of a sign-in


def _language(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.headers.get("accept-language", "")
    return "en" if wanted.startswith("en") else "zh-CN"


def _client_address(request: Request) -> str:
    """The address the throttles count by; an IPv6 client is its /64 (one household or phone
    gets a whole /64, so counting single addresses would let it rotate past every limit)."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


def auth_routes(services: Callable[[], Services]) -> list[Route]:
    def provider_and_signer() -> tuple[Any, URLSafeTimedSerializer]:
        built = services()
        assert built.provider is not None and built.keys is not None
        return built.provider, URLSafeTimedSerializer(built.keys.cookie_secret, salt="portal-idp-session")

    def signed_in(request: Request) -> SignedInPerson | None:
        _, signer = provider_and_signer()
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = signer.loads(raw, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        return SignedInPerson(data["sub"], data["role"], int(data["auth_time"]))

    def oauth_request(request: Request, form: dict[str, str] | None = None) -> ProviderRequest:
        query = dict(request.query_params)
        return ProviderRequest(request.method, str(request.url), query, form or {}, request.headers)

    def as_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body or b"", status_code=status, headers=dict(headers))

    async def discovery(request: Request) -> Response:
        provider, _ = provider_and_signer()
        return JSONResponse(provider.discovery(authorize_url=f"{provider.issuer}/authorize"))

    async def jwks(request: Request) -> Response:
        provider, _ = provider_and_signer()
        return JSONResponse(provider.jwks())

    async def authorize(request: Request) -> Response:
        provider, _ = provider_and_signer()
        oauth = oauth_request(request)
        try:
            await run_in_threadpool(provider.validate_authorization, oauth)
        except OAuth2Error as error:
            return HTMLResponse(_page(_language(request), error=f"{error.error}: {error.description or ''}"), 400)
        person = signed_in(request)
        if person is None:
            return _sign_in_page(request, request.url.query)
        status, body, headers = await run_in_threadpool(provider.authorize, oauth, person)
        return as_response(status, body, headers)

    async def form_action(request: Request, action: Callable[[dict[str, str]], Any]) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        query = form.get("continue", "")
        if not secrets.compare_digest(form.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "-")):
            return _sign_in_page(request, query, error="csrf")
        try:
            return await action(form)
        except PortalError as error:
            return _sign_in_page(request, query, error_text=Translator(_language(request)).error(error), form=form)

    async def sms_send(request: Request) -> Response:
        async def action(form: dict[str, str]) -> Response:
            identity = services().identity
            assert identity is not None
            masked = await run_in_threadpool(identity.request_code, form.get("phone", ""), _client_address(request))
            return _sign_in_page(request, form.get("continue", ""), sent_to=masked, form=form)

        return await form_action(request, action)

    async def sms_verify(request: Request) -> Response:
        async def action(form: dict[str, str]) -> Response:
            identity = services().identity
            assert identity is not None
            who = await run_in_threadpool(
                identity.verify_code, form.get("phone", ""), form.get("code", ""), _client_address(request)
            )
            return _signed_in_redirect(who.user_id, who.role, form.get("continue", ""))

        return await form_action(request, action)

    async def password(request: Request) -> Response:
        async def action(form: dict[str, str]) -> Response:
            identity = services().identity
            assert identity is not None
            who = await run_in_threadpool(
                identity.sign_in_with_password,
                form.get("username", ""),
                form.get("password", ""),
                _client_address(request),
                form.get("totp", ""),
            )
            return _signed_in_redirect(who.user_id, who.role, form.get("continue", ""))

        return await form_action(request, action)

    def _signed_in_redirect(user_id: str, role: str, query: str) -> Response:
        provider, signer = provider_and_signer()
        response = RedirectResponse(f"{provider.issuer}/authorize?{query}", status_code=303)
        token = signer.dumps({"sub": user_id, "role": role, "auth_time": int(time.time())})
        secure = provider.issuer.startswith("https://")
        response.set_cookie(
            SESSION_COOKIE, token, max_age=SESSION_MAX_AGE_S, path="/idp", httponly=True, samesite="lax", secure=secure
        )
        return response

    async def token(request: Request) -> Response:
        provider, _ = provider_and_signer()
        form = {k: str(v) for k, v in (await request.form()).items()}
        status, body, headers = await run_in_threadpool(provider.token, oauth_request(request, form))
        return as_response(status, body, headers)

    async def logout(request: Request) -> Response:
        provider, _ = provider_and_signer()
        portal = provider.issuer.rsplit("/idp", 1)[0]
        target = request.query_params.get("post_logout_redirect_uri") or ""
        wanted, home = urlsplit(target), urlsplit(portal)
        same_origin = (wanted.scheme, wanted.netloc) == (home.scheme, home.netloc) and not wanted.username
        response = RedirectResponse(target if same_origin else portal + "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/idp")
        return response

    def _sign_in_page(request: Request, query: str, **kwargs: Any) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = HTMLResponse(_page(_language(request), query=query, csrf=csrf, **kwargs))
        response.set_cookie(CSRF_COOKIE, csrf, path="/idp", httponly=True, samesite="lax")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'unsafe-inline'; form-action 'self'"
        )
        return response

    return [
        Route("/idp/.well-known/openid-configuration", discovery),
        Route("/idp/jwks", jwks),
        Route("/idp/authorize", authorize),
        Route("/idp/sms/send", sms_send, methods=["POST"]),
        Route("/idp/sms/verify", sms_verify, methods=["POST"]),
        Route("/idp/password", password, methods=["POST"]),
        Route("/idp/token", token, methods=["POST"]),
        Route("/idp/logout", logout),
    ]


_TEMPLATE = string.Template((Path(__file__).with_name("signin.html")).read_text(encoding="utf-8"))


def _page(
    language: str,
    *,
    query: str = "",
    csrf: str = "",
    error: str = "",
    error_text: str = "",
    sent_to: str = "",
    form: dict[str, str] | None = None,
) -> str:
    """The provider's sign-in page; every value is escaped, every text from the catalogs."""
    t = Translator(language)
    e = html.escape
    message = t("signin.expired_form") if error == "csrf" else (error_text or error)
    hidden = f'<input type="hidden" name="continue" value="{e(query)}">'
    hidden += f'<input type="hidden" name="csrf" value="{e(csrf)}">'
    return _TEMPLATE.substitute(
        lang=e(language),
        title=e(t("signin.title")),
        notice=f'<p class="error" role="alert">{e(message)}</p>' if message else "",
        sent=f'<p class="ok" role="status">{e(t("signin.code_sent", masked=sent_to))}</p>' if sent_to else "",
        hidden=hidden,
        phone=e((form or {}).get("phone", "")),
        consumer=e(t("signin.consumer")),
        phone_label=e(t("signin.phone")),
        send_code=e(t("signin.send_code")),
        code_label=e(t("signin.code")),
        verify=e(t("signin.verify")),
        staff=e(t("signin.staff")),
        username_label=e(t("signin.username")),
        password_label=e(t("signin.password")),
        totp_label=e(t("signin.totp")),
        staff_submit=e(t("signin.staff_submit")),
    )
