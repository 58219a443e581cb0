"""The one place that builds everything from settings. No work happens at import time."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.adapters.sandbox.terms_feed import SandboxTermsFeed
from core.adapters.sms import SmsGateway
from core.adapters.terms_feed import TermsFeed
from core.config import SANDBOX, ConfigError, Settings
from core.persistence import migrate
from core.persistence.db import engine_for
from core.reference_data import load_calendar, load_catalog, load_catalog_raw
from core.security.keys import PortalKeys, load_keys
from core.services.identity import IdentityService
from core.services.openid_provider import PORTAL_CLIENT_ID, Client, OpenIDProvider, load_signing_key
from core.services.quoting import QuoteService

BUILT_IN_PROVIDER = "portal"  # st.login(BUILT_IN_PROVIDER)


@dataclass
class Services:
    settings: Settings
    quotes: QuoteService
    sandbox_feed: SandboxTermsFeed | None  # only when the feed is the in-process sandbox
    engine: Engine | None = None
    keys: PortalKeys | None = None
    identity: IdentityService | None = None
    sandbox_sms: SandboxSmsGateway | None = None  # only in sandbox mode: the page that shows codes
    provider: OpenIDProvider | None = None  # the built-in OpenID provider (None with an external one)

    def streamlit_auth_secrets(self, env: Mapping[str, str] | None = None) -> dict[str, object] | None:
        """The `[auth]` section `st.login` needs: the built-in provider, or an external one
        named by AUTH_SERVER_METADATA_URL / AUTH_CLIENT_ID / AUTH_CLIENT_SECRET. None: the
        operator's `.streamlit/secrets.toml` supplies `[auth]` itself."""
        env = os.environ if env is None else env
        assert self.keys is not None
        base = self.settings.public_url
        if self.settings.external_auth:
            if not env.get("AUTH_SERVER_METADATA_URL"):
                return None
            return {
                "redirect_uri": f"{base}/oauth2callback",
                "cookie_secret": self.keys.cookie_secret,
                "client_id": env.get("AUTH_CLIENT_ID", ""),
                "client_secret": env.get("AUTH_CLIENT_SECRET", ""),
                "server_metadata_url": env["AUTH_SERVER_METADATA_URL"],
                "client_kwargs": {"scope": "openid profile", "code_challenge_method": "S256"},
            }
        assert self.provider is not None
        return {
            "redirect_uri": f"{base}/oauth2callback",
            "cookie_secret": self.keys.cookie_secret,
            BUILT_IN_PROVIDER: {
                "client_id": self.provider.client.client_id,
                "client_secret": self.provider.client.client_secret,
                "server_metadata_url": f"{self.provider.issuer}/.well-known/openid-configuration",
                "client_kwargs": {"scope": "openid profile", "code_challenge_method": "S256"},
            },
        }


def terms_feed_client(settings: Settings) -> tuple[httpx.Client, SandboxTermsFeed | None]:
    if settings.terms_feed_url == SANDBOX:
        sandbox = SandboxTermsFeed(
            load_catalog_raw(settings.data_dir / "channels.json"), period_s=settings.sandbox_feed_period_s
        )
        return httpx.Client(transport=httpx.MockTransport(sandbox), base_url="http://terms-feed.sandbox/"), sandbox
    base = settings.terms_feed_url.rstrip("/") + "/"
    return httpx.Client(base_url=base, headers={"User-Agent": "balance-recovery-portal"}), None


def sms_client(settings: Settings) -> tuple[httpx.Client, SandboxSmsGateway | None]:
    if settings.sms_gateway_url == SANDBOX:
        sandbox = SandboxSmsGateway()
        return httpx.Client(transport=httpx.MockTransport(sandbox), base_url="http://sms.sandbox/"), sandbox
    return httpx.Client(base_url=settings.sms_gateway_url.rstrip("/") + "/"), None


def prepare_database(settings: Settings) -> Engine:
    """The embedded SQLite default is created and migrated on start; a shared PostgreSQL is
    migrated on purpose (`python -m core db upgrade`) and only checked here."""
    engine = engine_for(settings.database_url)
    if engine.dialect.name == "sqlite":
        migrate.upgrade(engine)
    elif migrate.current(engine) != migrate.head():
        raise ConfigError("the database schema is not current: run `python -m core db upgrade`")
    return engine


def build(
    settings: Settings | None = None,
    *,
    refresh: bool = True,
    database: bool = True,
    env: Mapping[str, str] | None = None,
) -> Services:
    env = os.environ if env is None else env
    settings = settings or Settings.from_env(env)
    client, sandbox = terms_feed_client(settings)
    quotes = QuoteService(
        snapshot=load_catalog(settings.data_dir / "channels.json"),
        calendar=load_calendar(settings.data_dir / "holidays"),
        feed=TermsFeed(client, timeout_s=settings.terms_feed_timeout_s),
        stale_after=dt.timedelta(hours=settings.terms_stale_after_h),
        refresh_every=dt.timedelta(seconds=settings.terms_refresh_s),
    )
    if refresh:
        quotes.refresh_terms(force=True)
    services = Services(settings, quotes, sandbox)
    if database:
        services.engine = prepare_database(settings)
        services.keys = load_keys(env, settings.secrets_file, production=settings.production)
        sms_http, services.sandbox_sms = sms_client(settings)
        services.identity = IdentityService(
            services.engine, services.keys, SmsGateway(sms_http), require_totp_for_staff=settings.require_staff_totp
        )
        if not settings.external_auth:
            services.provider = built_in_provider(settings, services.engine, services.keys, env)
    return services


def built_in_provider(settings: Settings, engine: Engine, keys: PortalKeys, env: Mapping[str, str]) -> OpenIDProvider:
    signing_key = load_signing_key(
        env.get("PORTAL_OIDC_SIGNING_KEY"),
        settings.secrets_file.with_name("oidc_signing_key.json"),
        production=settings.production,
    )
    client_secret = hmac.new(keys.index_key, b"oidc-client-secret:portal", hashlib.sha256).hexdigest()
    client = Client(PORTAL_CLIENT_ID, client_secret, (f"{settings.public_url}/oauth2callback",))
    return OpenIDProvider(engine, signing_key, issuer=f"{settings.public_url}/idp", client=client)


_shared: Services | None = None
_shared_lock = threading.Lock()


def shared() -> Services:
    """The process's one set of services, for the pages and the server's own routes alike."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = build()
        return _shared


def reset_shared() -> None:
    """Forget the process's services (tests that change the configuration between runs)."""
    global _shared
    with _shared_lock:
        _shared = None
