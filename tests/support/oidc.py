"""Driving the built-in OpenID provider over HTTP the way `st.login` does."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.services.openid_provider import PORTAL_CLIENT_ID
from core.web.auth_routes import auth_routes

BASE = "http://localhost"
REDIRECT = f"{BASE}/oauth2callback"


@contextlib.contextmanager
def provider_client(services) -> Iterator[TestClient]:
    """The provider's routes for `services`, through a client that does not follow redirects."""
    app = Starlette(routes=auth_routes(lambda: services))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        yield client


def challenge_of(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def pkce() -> tuple[str, str]:
    """A fresh (verifier, challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    return verifier, challenge_of(verifier)


def authorize_query(challenge: str | None, nonce: str | None = None, **extra: str) -> str:
    """The query `st.login` sends to /idp/authorize: PKCE with `challenge` (None: without), a
    fresh nonce unless given (a reused one is refused), and `extra` parameters replacing or
    adding to those."""
    params = {
        "response_type": "code",
        "client_id": PORTAL_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "st-1",
        "nonce": nonce or secrets.token_hex(8),
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return urlencode({**params, **extra})


def csrf_of(page: str) -> str:
    """The CSRF token in a provider form."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)
