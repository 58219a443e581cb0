"""One settings object, read from the environment and validated.

Development defaults work on a fresh machine (sandbox partners in-process). Production
mode refuses the sandbox and anything else that is only safe on a developer's laptop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from core.domain.risk import RiskThresholds
from core.errors import PortalError

SANDBOX = "sandbox"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(PortalError):
    key = "error.config"


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    data_dir: Path = REPO_ROOT / "data"
    terms_feed_url: str = SANDBOX  # "sandbox" mounts the sandbox feed in-process
    terms_feed_timeout_s: float = 2.0
    terms_refresh_s: float = 30.0
    terms_stale_after_h: float = 48.0
    sandbox_feed_period_s: float = 300.0
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'portal.sqlite3'}"
    secrets_file: Path = REPO_ROOT / "var" / "secrets.json"
    sms_gateway_url: str = SANDBOX
    require_staff_totp: bool = False
    public_url: str = "http://localhost:8501"  # what browsers use: the built-in provider's issuer lives here
    external_auth: bool = False  # True: [auth] comes from .streamlit/secrets.toml (Keycloak, Authing, Entra ID ...)
    carrier_api_url: str = SANDBOX  # the carrier's balance/debit/refund API
    payout_api_url: str = SANDBOX  # the channels' payout APIs: {url}/{channel_id}/...
    # The sandbox partners' own books (their statements come from there): a SQLite file, ":memory:",
    # or "" for `partners.sqlite3` beside the portal's SQLite database (in memory on PostgreSQL).
    sandbox_books: str = ""
    partner_timeout_s: float = 5.0
    embedded_worker: bool = True  # run the recovery worker inside the portal's server process
    worker_lease_s: float = 30.0  # a claimed step is another worker's to retry after this long
    worker_concurrency: int = 64  # partner calls in flight per worker (WORKER_CONCURRENCY)
    # the sandbox partners' answer time in seconds, (least, most), drawn uniformly (SANDBOX_LATENCY_MS=50-300)
    sandbox_latency: tuple[float, float] = (0.0, 0.0)
    # The portal's own limits (CNY fen), beside each channel's: per recovery, per user and per number.
    limit_per_recovery_fen: int = 500_000
    limit_per_day_fen: int = 500_000
    limit_per_month_fen: int = 2_000_000
    quote_lock_s: float = 600.0  # a quote is honoured this long after it is locked
    # the operators' console
    four_eyes_above_fen: int = 100_000  # approving a recovery above this takes a second operator
    review_service_s: float = 4 * 3600.0  # a case waiting longer in review is flagged
    review_claim_s: float = 600.0  # an operator's claim on a case runs out after this
    approval_lapse_s: float = 24 * 3600.0  # a request for a second person lapses after this
    # The risk rules' thresholds: RISK_<FIELD> (e.g. RISK_REVIEW_AMOUNT_FEN); see core/domain/risk.py
    risk: RiskThresholds = field(default_factory=RiskThresholds)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None
            if not (low <= value <= high):
                raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
            return value

        def latency(raw: str) -> tuple[float, float]:
            if not raw.strip():
                return defaults.sandbox_latency
            from core.adapters.sandbox.faults import parse_latency  # deferred: httpx

            try:
                return parse_latency(raw)
            except ValueError as exc:
                raise ConfigError(f"SANDBOX_LATENCY_MS: {exc}") from None

        settings = cls(
            environment=env.get("PORTAL_ENV", defaults.environment),
            data_dir=Path(env.get("PORTAL_DATA_DIR", str(defaults.data_dir))),
            terms_feed_url=env.get("TERMS_FEED_URL", defaults.terms_feed_url),
            terms_feed_timeout_s=number("TERMS_FEED_TIMEOUT_S", defaults.terms_feed_timeout_s, 0.1, 30),
            terms_refresh_s=number("TERMS_REFRESH_S", defaults.terms_refresh_s, 1, 86_400),
            terms_stale_after_h=number("TERMS_STALE_AFTER_H", defaults.terms_stale_after_h, 0.01, 24 * 365),
            sandbox_feed_period_s=number("SANDBOX_FEED_PERIOD_S", defaults.sandbox_feed_period_s, 1, 86_400),
            database_url=env.get("DATABASE_URL") or defaults.database_url,
            secrets_file=Path(env.get("PORTAL_SECRETS_FILE") or defaults.secrets_file),
            sms_gateway_url=env.get("SMS_GATEWAY_URL", defaults.sms_gateway_url),
            require_staff_totp=env.get("REQUIRE_STAFF_TOTP", "").lower() in ("1", "true", "yes"),
            public_url=(env.get("PORTAL_URL") or defaults.public_url).rstrip("/"),
            external_auth=env.get("PORTAL_AUTH", "builtin") == "external",
            carrier_api_url=env.get("CARRIER_API_URL", defaults.carrier_api_url),
            payout_api_url=env.get("PAYOUT_API_URL", defaults.payout_api_url),
            sandbox_books=env.get("SANDBOX_BOOKS", defaults.sandbox_books),
            partner_timeout_s=number("PARTNER_TIMEOUT_S", defaults.partner_timeout_s, 0.1, 60),
            embedded_worker=env.get("EMBEDDED_WORKER", "1").lower() not in ("0", "false", "no"),
            worker_lease_s=number("WORKER_LEASE_S", defaults.worker_lease_s, 0.5, 3600),
            worker_concurrency=int(number("WORKER_CONCURRENCY", defaults.worker_concurrency, 1, 256)),
            sandbox_latency=latency(env.get("SANDBOX_LATENCY_MS", "")),
            limit_per_recovery_fen=int(number("LIMIT_PER_RECOVERY_FEN", defaults.limit_per_recovery_fen, 1, 10**10)),
            limit_per_day_fen=int(number("LIMIT_PER_DAY_FEN", defaults.limit_per_day_fen, 1, 10**10)),
            limit_per_month_fen=int(number("LIMIT_PER_MONTH_FEN", defaults.limit_per_month_fen, 1, 10**11)),
            quote_lock_s=number("QUOTE_LOCK_S", defaults.quote_lock_s, 10, 3600),
            four_eyes_above_fen=int(number("FOUR_EYES_ABOVE_FEN", defaults.four_eyes_above_fen, 0, 10**10)),
            review_service_s=number("REVIEW_SERVICE_S", defaults.review_service_s, 60, 30 * 86_400),
            review_claim_s=number("REVIEW_CLAIM_S", defaults.review_claim_s, 30, 86_400),
            approval_lapse_s=number("APPROVAL_LAPSE_S", defaults.approval_lapse_s, 60, 30 * 86_400),
            risk=risk_thresholds(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        # a debit step may make three partner calls; a lease that ran out under it would let
        # another worker take the step while this one still works on it
        if self.worker_lease_s < 3 * self.partner_timeout_s:
            raise ConfigError(
                f"WORKER_LEASE_S={self.worker_lease_s:g} must be at least 3 x PARTNER_TIMEOUT_S "
                f"({3 * self.partner_timeout_s:g} s): a step may make three partner calls"
            )
        if self.environment not in ("development", "production"):
            raise ConfigError(f"PORTAL_ENV={self.environment!r} must be development or production")
        if self.terms_feed_url != SANDBOX and not self.terms_feed_url.startswith(("http://", "https://")):
            raise ConfigError("TERMS_FEED_URL must be 'sandbox' or an http(s) URL")
        if self.production and self.terms_feed_url == SANDBOX:
            raise ConfigError("production mode refuses the sandbox terms feed: set TERMS_FEED_URL")
        if self.production and self.terms_feed_url.startswith("http://"):
            raise ConfigError("production mode needs an https TERMS_FEED_URL")
        if self.production and self.sms_gateway_url == SANDBOX:
            raise ConfigError("production mode refuses the sandbox SMS gateway: set SMS_GATEWAY_URL")
        if self.production and not self.sms_gateway_url.startswith("https://"):
            raise ConfigError("production mode needs an https SMS_GATEWAY_URL (numbers and codes travel there)")
        for name, url in (("CARRIER_API_URL", self.carrier_api_url), ("PAYOUT_API_URL", self.payout_api_url)):
            if url != SANDBOX and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must be 'sandbox' or an http(s) URL")
            if self.production and url == SANDBOX:
                raise ConfigError(f"production mode refuses the sandbox partner: set {name}")
            if self.production and not url.startswith("https://"):
                raise ConfigError(f"production mode needs an https {name} (money moves there)")
        if not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("PORTAL_URL must be the http(s) address browsers use for the portal")
        if self.production and not self.public_url.startswith("https://"):
            raise ConfigError("production mode needs an https PORTAL_URL")
        if not self.database_url.startswith(("sqlite:", "postgresql")):
            raise ConfigError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        if not (self.data_dir / "channels.json").is_file():
            raise ConfigError(f"PORTAL_DATA_DIR={self.data_dir} has no channels.json")


def risk_thresholds(env: Mapping[str, str]) -> RiskThresholds:
    """The risk rules' thresholds: defaults, each replaced by RISK_<FIELD> when set."""
    given: dict[str, int] = {}
    for item in fields(RiskThresholds):
        name = f"RISK_{item.name.upper()}"
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            given[item.name] = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    try:
        return RiskThresholds(**given)
    except ValueError as error:
        raise ConfigError(str(error)) from None
