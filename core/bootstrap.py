"""The one place that builds everything from settings. No work happens at import time."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import httpx
from joserfc.jwk import RSAKey
from sqlalchemy.engine import Engine

from core.adapters.partners import Partners, notify_secret, partner_links
from core.adapters.sandbox.books import sandbox_book
from core.adapters.sandbox.faults import Faults
from core.adapters.sandbox.notices import NoticeRelay
from core.adapters.sandbox.sms import SandboxSmsGateway
from core.adapters.sandbox.terms_feed import SandboxTermsFeed
from core.adapters.sms import SmsGateway
from core.adapters.terms_feed import TermsFeed
from core.config import SANDBOX, ConfigError, Settings
from core.domain.catalog import Catalog
from core.domain.limits import PortalLimits
from core.domain.pricing import OWN_OFFER_ID
from core.i18n import LANGUAGES
from core.persistence import migrate
from core.persistence.db import engine_for
from core.reference_data import load_calendar, load_catalog, load_catalog_raw
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.security.keys import PortalKeys, load_keys, load_signing_key
from core.services.agreements import RECOVERY, Agreement, AgreementService, load_agreement
from core.services.audit import AuditLog, AuditService, chain_pending
from core.services.books import BooksService
from core.services.console.approvals import FourEyesService
from core.services.console.deny_list import DenyListService
from core.services.console.metrics import MetricsService
from core.services.console.queue import ReviewQueueService
from core.services.console.recoveries import RecoverySearchService
from core.services.console.staff import StaffService
from core.services.console.stuck import StuckService
from core.services.housekeeping import AUDIT_CHAIN_S, METRICS_UPKEEP_S, QUOTE_LOG_UPKEEP_S, Housekeeping, Task
from core.services.identity import IdentityService
from core.services.journey import JourneyService
from core.services.openid_models import Client
from core.services.openid_provider import PORTAL_CLIENT_ID, OpenIDProvider, login_name
from core.services.payout_notices import PayoutNoticeService
from core.services.pricing import PricingService
from core.services.process_lease import SANDBOX_PARTNERS, Lease
from core.services.quote_log import QuoteLog
from core.services.quoting import QuoteService
from core.services.receipts import ReceiptService
from core.services.reconciliation import ReconciliationService
from core.services.recovery import RecoveryService
from core.services.recovery.submission import AskTheCarrier
from core.services.recovery.wiring import RecoveryWiring, wire_recoveries
from core.services.recovery_worker import RecoveryWorker
from core.services.risk import RiskService


@dataclass(frozen=True)
class Quoting:
    """What quoting alone needs (`python -m core quote`, `channels`): no database, no keys."""

    settings: Settings
    quotes: QuoteService
    sandbox_feed: SandboxTermsFeed | None  # only when the feed is the in-process sandbox


Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RecoveryParts:
    """The recovery engine and what hangs off it, built together (`build_recoveries`)."""

    risk: RiskService
    agreements: AgreementService
    wiring: RecoveryWiring
    receipts: ReceiptService
    journey: JourneyService

    @property
    def partners(self) -> Partners:
        return self.wiring.partners

    @property
    def recoveries(self) -> RecoveryService:
        return self.wiring.recoveries

    @property
    def notices(self) -> PayoutNoticeService:
        return self.wiring.notices


@dataclass
class Services(RecoveryParts):
    """The whole portal, every collaborator present: the recovery engine's parts and the rest.
    The three that are None in some modes say so: the sandbox feed and SMS gateway exist only in
    sandbox mode, the built-in provider only without an external one."""

    settings: Settings
    quotes: QuoteService
    sandbox_feed: SandboxTermsFeed | None
    engine: Engine
    keys: PortalKeys
    identity: IdentityService
    sandbox_sms: SandboxSmsGateway | None
    provider: OpenIDProvider | None
    approvals: FourEyesService
    queue: ReviewQueueService
    stuck: StuckService
    deny_list: DenyListService
    audit: AuditService
    staff: StaffService
    recovery_search: RecoverySearchService
    metrics: MetricsService
    books: BooksService
    reconciliation: ReconciliationService
    pricing: PricingService
    _background: list[Callable[[], None]] = field(default_factory=list)

    def worker(self, **options: Any) -> RecoveryWorker:
        """A recovery worker over these services (one per thread or process)."""
        options.setdefault("lease_s", self.settings.worker_lease_s)
        options.setdefault("concurrency", self.settings.worker_concurrency)
        return self.wiring.worker(**options)

    def start_background(self) -> None:
        """The embedded default: the sandbox partners' notifications and one recovery worker run
        in this process, started with the server and stopped with it."""
        if self._background:
            return
        lease = self.sandbox_lease()
        if lease is not None:  # refused (LeaseHeld) while another process runs its own sandbox here
            lease.keep()
            self._background.append(lease.release)
        if self.partners.sandbox_payouts is not None:
            self.partners.sandbox_payouts.start()
            self._background.append(self.partners.sandbox_payouts.stop)
        if self.settings.embedded_worker:
            stop = threading.Event()
            threads = [
                threading.Thread(target=self.worker().run, args=(stop,), name="recovery-worker", daemon=True),
                threading.Thread(target=self.housekeeping().run, args=(stop,), name="upkeep", daemon=True),
            ]
            for thread in threads:
                thread.start()

            def stop_worker() -> None:
                stop.set()
                for thread in threads:
                    thread.join(timeout=10)

            self._background.append(stop_worker)

    def housekeeping(self) -> Housekeeping:
        """The background upkeep that runs beside a recovery worker (`core.services.housekeeping`):
        the audit records written since chained in, the metrics of recent ended days kept ahead of
        the pages, and old quote-log lines gone."""
        return Housekeeping(
            [
                Task("audit chain", AUDIT_CHAIN_S, lambda: chain_pending(self.engine)),
                Task("metrics days", METRICS_UPKEEP_S, self.metrics.keep_recent),
            ]
            + ([Task("quote log", QUOTE_LOG_UPKEEP_S, kept.prune)] if (kept := self.pricing.quote_log) else [])
        )

    def sandbox_lease(self) -> Lease | None:
        """The lease a process must hold to make partner calls through in-process sandboxes on
        this database (None with real or shared partners): see `core.services.process_lease`."""
        partners = self.partners
        if partners.sandbox_carrier is None and partners.sandbox_payouts is None:
            return None
        return Lease(self.engine, SANDBOX_PARTNERS)

    def stop_background(self) -> None:
        while self._background:
            self._background.pop()()

    def streamlit_auth_secrets(self, env: Mapping[str, str] | None = None) -> dict[str, object] | None:
        """The `[auth]` section for `st.login` (`streamlit_auth_secrets`)."""
        return streamlit_auth_secrets(self.settings, self.keys, self.provider, env)


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


def build_quoting(
    settings: Settings | None = None,
    *,
    refresh: bool = True,
    env: Mapping[str, str] | None = None,
    clock: Clock = system_clock,
) -> Quoting:
    """The quote service over the configured terms feed, alone."""
    settings = settings or Settings.from_env(os.environ if env is None else env)
    client, sandbox = terms_feed_client(settings)
    if sandbox is not None and clock is not system_clock:
        sandbox.clock = _seconds(clock)
    quotes = QuoteService(
        snapshot=load_catalog(settings.data_dir / "channels.json"),
        calendar=load_calendar(settings.data_dir / "holidays"),
        feed=TermsFeed(client, timeout_s=settings.terms_feed_timeout_s),
        stale_after=dt.timedelta(hours=settings.terms_stale_after_h),
        refresh_every=dt.timedelta(seconds=settings.terms_refresh_s),
        clock=clock,
    )
    if refresh:
        quotes.refresh_terms(force=True)
    return Quoting(settings, quotes, sandbox)


def _seconds(clock: Clock) -> Callable[[], float]:
    """The sandboxes keep time in seconds: the same clock, read as a timestamp."""
    return time.time if clock is system_clock else lambda: clock().timestamp()


def build(
    settings: Settings | None = None,
    *,
    refresh: bool = True,
    env: Mapping[str, str] | None = None,
    engine: Engine | None = None,
    clock: Clock = system_clock,
    keys: PortalKeys | None = None,
    receipt_key: RSAKey | None = None,
    agreement: Callable[[], Agreement] | None = None,
) -> Services:
    """The whole portal from settings: the one builder the server, the command line and the
    tests use. The embedded SQLite database is created and migrated; development keys are
    generated on first run. Tests inject what they control: a database already prepared, a
    simulated clock (the services' and the sandboxes'), keys, the receipt signing key, and the
    current agreement (to publish new versions)."""
    env = os.environ if env is None else env
    quoting = build_quoting(settings, refresh=refresh, env=env, clock=clock)
    settings = quoting.settings
    engine = engine or prepare_database(settings)
    keys = keys or load_keys(env, settings.secrets_file, production=settings.production)
    sms_http, sandbox_sms = sms_client(settings)
    identity = IdentityService(
        engine, keys, SmsGateway(sms_http), clock=clock, require_totp_for_staff=settings.require_staff_totp
    )
    provider = None if settings.external_auth else built_in_provider(settings, engine, keys, env)
    pricing = build_pricing(settings, engine, quoting.quotes, clock)
    parts = build_recoveries(
        settings,
        engine,
        keys,
        quoting.quotes,
        identity,
        env,
        clock=clock,
        receipt_key=receipt_key,
        agreement=agreement,
        partner_fee=pricing.partner_fee_fen,
    )
    return Services(
        pricing=pricing,
        **{f.name: getattr(parts, f.name) for f in fields(RecoveryParts)},
        settings=settings,
        quotes=quoting.quotes,
        sandbox_feed=quoting.sandbox_feed,
        engine=engine,
        keys=keys,
        identity=identity,
        sandbox_sms=sandbox_sms,
        provider=provider,
        **console_services(settings, engine, quoting.quotes, parts, clock),
    )


def build_pricing(settings: Settings, engine: Engine, quotes: QuoteService, clock: Clock) -> PricingService:
    """The portal's pricing versions, and the live one put to work: its own offer quotes beside
    the market (Compare, Recover, the engine) and its cost schedules book the partners' fees."""
    quote_log = QuoteLog(engine, clock=clock)
    pricing = PricingService(
        engine,
        AuditLog(clock),
        lambda: quotes.market_terms().catalog.by_id(),
        settings.data_dir / "pricing" / "schedule.json",
        calendar=quotes.calendar,
        clock=clock,
        quote_log=quote_log,
    )
    pricing.live()  # the shipped version is written now, before any work that holds the database
    quotes.own_offer = pricing.own_offer_now
    quotes.on_quote = quote_log.record  # the lab replays what people asked (anonymously)
    return pricing


def console_services(
    settings: Settings, engine: Engine, quotes: QuoteService, parts: RecoveryParts, clock: Clock
) -> dict[str, Any]:
    """The operators' console over the recovery engine: its services by their `Services` names,
    sharing one audit log and one four-eyes service."""
    audit = AuditLog(clock)
    approvals = FourEyesService(engine, audit, lapse_s=settings.approval_lapse_s, clock=clock)

    def catalog() -> Catalog:
        return quotes.terms().catalog

    return {
        "approvals": approvals,
        "queue": ReviewQueueService(
            engine,
            parts.recoveries,
            approvals,
            audit,
            claim_s=settings.review_claim_s,
            service_s=settings.review_service_s,
            clock=clock,
        ),
        "deny_list": DenyListService(engine, parts.risk, approvals),
        "audit": AuditService(engine, audit),
        "staff": StaffService(engine, audit, clock=clock),
        "metrics": MetricsService(engine, catalog, quotes.calendar, clock=clock),
        "books": BooksService(engine, audit, clock=clock),
        "reconciliation": ReconciliationService(
            engine, audit, approvals, lambda: [c.id for c in catalog().channels], clock=clock
        ),
        "recovery_search": RecoverySearchService(engine, parts.recoveries, audit),
        "stuck": StuckService(
            engine, parts.recoveries, parts.partners, catalog, quotes.calendar, approvals, audit, clock=clock
        ),
    }


def build_recoveries(
    settings: Settings,
    engine: Engine,
    keys: PortalKeys,
    quotes: QuoteService,
    identity: IdentityService,
    env: Mapping[str, str],
    *,
    clock: Clock = system_clock,
    receipt_key: RSAKey | None = None,
    agreement: Callable[[], Agreement] | None = None,
    partner_fee: Callable[[str, int], int] = lambda channel_id, amount_fen: 0,
) -> RecoveryParts:
    """The recovery engine with the portal's real risk control, agreements and carrier check,
    over the configured partners, and the receipts and the journey on top of it."""
    risk = RiskService(engine, keys.index_key, settings.risk, settings.limit_per_recovery_fen, clock=clock)
    if agreement is None:
        published = load_agreement(settings.data_dir / "agreements" / RECOVERY)
        agreement = lambda: published  # noqa: E731 - the current agreement never changes in a running portal
    agreements = AgreementService(engine, agreement, clock=clock)

    def secret_for(channel_id: str) -> bytes:
        return notify_secret(keys, env, channel_id)

    relay = NoticeRelay()
    partners = partner_links(
        settings.carrier_api_url,
        settings.payout_api_url,
        [*(channel.id for channel in quotes.market_terms().catalog.channels), OWN_OFFER_ID],
        timeout_s=settings.partner_timeout_s,
        secret_for=secret_for,
        notifier=relay.client(),
        seconds=_seconds(clock),
        faults=Faults(latency_s=settings.sandbox_latency[0], latency_max_s=settings.sandbox_latency[1]),
        book=sandbox_book(settings, engine.url.render_as_string(hide_password=False)),
    )
    wiring = wire_recoveries(
        engine,
        FieldCipher(keys.data_key),
        BlindIndex(keys.index_key, MOBILE_NUMBER),
        lambda: quotes.terms().catalog,
        PortalLimits(settings.limit_per_recovery_fen, settings.limit_per_day_fen, settings.limit_per_month_fen),
        partners,
        relay,
        secret_for,
        risk=risk,
        agreements=agreements,
        carrier=AskTheCarrier(partners.carrier),
        four_eyes_above_fen=settings.four_eyes_above_fen,
        public_url=settings.public_url,
        clock=clock,
        seconds=_seconds(clock),
        partner_fee=partner_fee,
    )
    receipt_key = receipt_key or load_signing_key(
        env,
        "PORTAL_RECEIPT_SIGNING_KEY",
        settings.secrets_file.with_name("receipt_signing_key.json"),
        production=settings.production,
    )
    receipts = ReceiptService(engine, wiring.recoveries, receipt_key, settings.public_url, clock=clock)
    journey = JourneyService(
        engine, identity, quotes, wiring.recoveries, partners.carrier, lock_s=settings.quote_lock_s, clock=clock
    )
    return RecoveryParts(risk, agreements, wiring, receipts, journey)


def built_in_provider(settings: Settings, engine: Engine, keys: PortalKeys, env: Mapping[str, str]) -> OpenIDProvider:
    signing_key = load_signing_key(
        env,
        "PORTAL_OIDC_SIGNING_KEY",
        settings.secrets_file.with_name("oidc_signing_key.json"),
        production=settings.production,
    )
    client_secret = hmac.new(keys.index_key, b"oidc-client-secret:portal", hashlib.sha256).hexdigest()
    client = Client(PORTAL_CLIENT_ID, client_secret, (f"{settings.public_url}/oauth2callback",))
    return OpenIDProvider(engine, signing_key, issuer=f"{settings.public_url}/idp", client=client)


_shared: Services | None = None
_shared_lock = threading.Lock()


def configure_logging() -> None:
    """One log format for the whole process; no secrets or full numbers are ever logged (the
    sandbox SMS gateway logs its codes with the number masked: that is how a developer signs in)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per feed request is noise


def shared() -> Services:
    """The process's one set of services, for the pages and the server's own routes alike."""
    global _shared
    with _shared_lock:
        if _shared is None:
            configure_logging()
            _shared = build()
            # Everything loaded so far lives as long as the process: keep it out of the garbage
            # collector's full passes, which otherwise land in the middle of page updates.
            gc.freeze()
        return _shared


def reset_shared() -> None:
    """Forget the process's services (tests that change the configuration between runs)."""
    global _shared
    with _shared_lock:
        _shared = None


def streamlit_auth_secrets(
    settings: Settings, keys: PortalKeys, provider: OpenIDProvider | None, env: Mapping[str, str] | None = None
) -> dict[str, object] | None:
    """The `[auth]` section `st.login` needs: the built-in provider, or an external one
    named by AUTH_SERVER_METADATA_URL / AUTH_CLIENT_ID / AUTH_CLIENT_SECRET. None: the
    operator's `.streamlit/secrets.toml` supplies `[auth]` itself."""
    env = os.environ if env is None else env
    base = settings.public_url
    if settings.external_auth:
        if not env.get("AUTH_SERVER_METADATA_URL"):
            return None
        return {
            "redirect_uri": f"{base}/oauth2callback",
            "cookie_secret": keys.cookie_secret,
            "client_id": env.get("AUTH_CLIENT_ID", ""),
            "client_secret": env.get("AUTH_CLIENT_SECRET", ""),
            "server_metadata_url": env["AUTH_SERVER_METADATA_URL"],
            "client_kwargs": {"scope": "openid profile", "code_challenge_method": "S256"},
        }
    # The built-in provider once per portal language (`portal`, `portal-en`): the same client
    # and issuer, each sending its language as OIDC `ui_locales` (Authlib forwards
    # `authorize_params`, not arbitrary client_kwargs), so the sign-in page speaks the
    # portal's language. pages/sign_in.py picks the name by the portal's current language.
    if provider is None:  # built without external auth, so built with the provider
        raise ConfigError("the built-in provider is missing")
    auth: dict[str, object] = {"redirect_uri": f"{base}/oauth2callback", "cookie_secret": keys.cookie_secret}
    for language in LANGUAGES:
        auth[login_name(language)] = {
            "client_id": provider.client.client_id,
            "client_secret": provider.client.client_secret,
            "server_metadata_url": f"{provider.issuer}/.well-known/openid-configuration",
            "authorize_params": {"ui_locales": language},
            "client_kwargs": {"scope": "openid profile", "code_challenge_method": "S256"},
        }
    return auth
