"""The portal's built-in OpenID provider, on Authlib's server components.

Authorization code flow with PKCE (S256, required), ID tokens signed with the portal's RSA key
(generated on first run outside git, or given by configuration), a discovery document and a
JWKS. People authenticate through `IdentityService` (SMS code or staff password); this module
turns a signed-in person into codes and tokens. It knows no web framework: the portal's server
hands it `OAuth2Request`s and sends back what it returns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey
from sqlalchemy.engine import Engine
from sqlmodel import col, select, update

from core.i18n import DEFAULT_LANGUAGE, LANGUAGES
from core.persistence.tables import AuthorizationCode, User
from core.persistence.uow import UnitOfWork
from core.services.openid_models import Client, StoredCode

CODE_LIFETIME = dt.timedelta(minutes=2)
TOKEN_LIFETIME_S = 3600
PORTAL_CLIENT_ID = "portal"
MAX_PARAMETER = 200
LOGIN_NAME = "portal"  # st.login's name of the built-in provider (core.bootstrap.BUILT_IN_PROVIDER)


def login_name(language: str) -> str:
    """st.login's name of the built-in provider for one portal language: each name sends its
    language as OIDC `ui_locales`, so the sign-in page speaks the portal's language rather than
    the browser's. The default language keeps the plain name; Streamlit refuses "_" in names."""
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return LOGIN_NAME
    return f"{LOGIN_NAME}-{language.lower()}"


class ReplayedRequest(InvalidRequestError):
    """An authorization request whose nonce was used already: a link opened twice, typically
    by going Back after a sign-in."""

    def __init__(self) -> None:
        super().__init__("Replay attack: the nonce was used already")


@dataclass(frozen=True)
class SignedInPerson:
    user_id: str
    role: str
    auth_time: int


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class OpenIDProvider:
    def __init__(
        self,
        engine: Engine,
        signing_key: RSAKey,
        *,
        issuer: str,
        client: Client,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client = client
        self._engine = engine
        self._key = signing_key
        self._clock = clock
        self.server = self._server()

    # --- what the web layer serves -----------------------------------------------------------

    def discovery(self, *, authorize_url: str) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": authorize_url,
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "ui_locales_supported": list(LANGUAGES),
            "claims_supported": ["sub", "role", "name", "auth_time", "iss", "aud", "exp", "iat", "nonce"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def validate_authorization(self, request: OAuth2Request) -> None:
        """Raises an Authlib OAuth2Error for a bad client, missing or unknown redirect URI, scope,
        missing PKCE, or a nonce used before (`ReplayedRequest`)."""
        for name in ("nonce", "state"):
            if len(request.payload.data.get(name) or "") > MAX_PARAMETER:
                raise InvalidRequestError(f"'{name}' is longer than {MAX_PARAMETER} characters")
        if not request.payload.data.get("redirect_uri"):  # OpenID Connect requires it (Authlib would default it)
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        self.server.get_consent_grant(request)

    def authorize(self, request: OAuth2Request, person: SignedInPerson) -> tuple[int, Any, list[tuple[str, str]]]:
        return self.server.create_authorization_response(request, grant_user=person)

    def token(self, request: OAuth2Request) -> tuple[int, Any, list[tuple[str, str]]]:
        return self.server.create_token_response(request)

    # --- Authlib wiring -------------------------------------------------------------------------

    def _server(self) -> AuthorizationServer:
        server = _Server(self, scopes_supported=["openid", "profile"])
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda **_: secrets.token_urlsafe(32), expires_generator=lambda *_: 3600)
        )
        server.register_grant(_CodeGrant, [S256Required(), _IdToken(self, require_nonce=False)])
        return server


class _Server(AuthorizationServer):
    """Authlib's authorization server over this provider's one client."""

    def __init__(self, provider: OpenIDProvider, **options: Any) -> None:
        super().__init__(**options)
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        return self.provider.client if client_id == self.provider.client.client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        return None  # access tokens are not used by the portal beyond sign-in

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _CodeGrant(grants.AuthorizationCodeGrant):
    """Authorization codes kept as hashes, used up in the statement that finds them."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    @property
    def provider(self) -> OpenIDProvider:
        return self.server.provider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        person: SignedInPerson = request.user
        data = request.payload.data
        with UnitOfWork(self.provider._engine) as uow:
            uow.session.add(
                AuthorizationCode(
                    code_hash=_hash(code),
                    client_id=request.client.get_client_id(),
                    redirect_uri=request.payload.redirect_uri,
                    scope=request.payload.scope,
                    nonce=data.get("nonce"),
                    user_id=person.user_id,
                    code_challenge=data.get("code_challenge", ""),
                    code_challenge_method=data.get("code_challenge_method", "S256"),
                    auth_time=person.auth_time,
                    expires_at=self.provider._clock() + CODE_LIFETIME,
                )
            )
            uow.commit()

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        """Uses the code up in the same statement that finds it: of two exchanges at
        once, exactly one gets it."""
        now = self.provider._clock()
        with UnitOfWork(self.provider._engine) as uow:
            claimed = uow.session.execute(
                update(AuthorizationCode)
                .where(
                    col(AuthorizationCode.code_hash) == _hash(code),
                    col(AuthorizationCode.client_id) == client.get_client_id(),
                    col(AuthorizationCode.used_at).is_(None),
                    col(AuthorizationCode.expires_at) > now,
                )
                .values(used_at=now)
            )
            uow.commit()
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = uow.session.get(AuthorizationCode, _hash(code))
            return StoredCode(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        return None  # already used up; the row stays so its nonce is never accepted again

    def authenticate_user(self, authorization_code: StoredCode) -> User | None:
        with UnitOfWork(self.provider._engine) as uow:
            return uow.session.get(User, authorization_code.row.user_id)


class _IdToken(OpenIDCode):
    """The ID token: signed with the provider's key, a nonce good once, no phone number in it."""

    def __init__(self, provider: OpenIDProvider, **options: Any) -> None:
        super().__init__(**options)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        with UnitOfWork(self.provider._engine) as uow:  # used or not: a nonce works once
            found = uow.session.exec(select(AuthorizationCode).where(AuthorizationCode.nonce == nonce)).first()
        if found is not None:
            raise ReplayedRequest  # rather than Authlib's plain "Replay attack": the web layer tells it apart
        return False

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider._key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.provider._key.kid or ""}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.provider.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        # Staff are named by their user name. A consumer has no name to give (never their phone
        # number): the portal names them in the reader's language where it shows one.
        if user.username:
            return UserInfo(sub=user.id, role=user.role, name=user.username)
        return UserInfo(sub=user.id, role=user.role)


class S256Required(CodeChallenge):
    """PKCE for every client, confidential ones too (Authlib requires it only of public ones),
    and only the S256 method."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required")
        super().validate_code_challenge(grant, redirect_uri)
