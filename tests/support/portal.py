"""The consumer journey's portal under test: the services the portal's pages use, wired
in-process against the sandbox carrier, payout partners, SMS gateway and terms feed, with one
simulated clock for the database, the journey, the risk rules and the sandboxes. The `portal`
fixture (tests/integration/conftest.py) builds one per test with `build_portal`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from joserfc.jwk import RSAKey
from sqlalchemy.engine import Engine

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.adapters.sandbox.terms_feed import SandboxTermsFeed
from core.bootstrap import build
from core.config import Settings
from core.domain.access import Principal
from core.domain.recovery import RecoveryState
from core.reference_data import load_calendar, load_catalog
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.security.keys import PortalKeys
from core.services.agreements import RECOVERY, Agreement, AgreementService, load_agreement
from core.services.console.approvals import FourEyesService
from core.services.console.deny_list import DenyListService
from core.services.console.queue import ReviewQueueService
from core.services.console.recoveries import RecoverySearchService
from core.services.console.stuck import StuckService
from core.services.identity import IdentityService
from core.services.journey import JourneyService, LockedQuote, NumberCheck
from core.services.pricing import PricingService
from core.services.quoting import QuoteService
from core.services.receipts import ReceiptService
from core.services.recovery import RecoveryService
from core.services.recovery.views import RecoveryView
from core.services.risk import RiskService
from core.simulation.rig import Rig, SimClock, add_verified_consumer
from tests.support.keys import rsa_key
from tests.support.outbox import drain
from tests.support.people import mobile

S = RecoveryState
SETTINGS = Settings()
CATALOG = load_catalog(SETTINGS.data_dir / "channels.json")
CALENDAR = load_calendar(SETTINGS.data_dir / "holidays")
AGREEMENT = load_agreement(SETTINGS.data_dir / "agreements" / RECOVERY)
ALIPAY = "alipay"  # 10 CNY minimum, 500 CNY a transaction, fees 5% / 4% / 2.5% by tier
DEVICE = "203.0.113.0/24|Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
PAYEE = "wallet.owner@example.com"
PASSWORD = "correct horse battery staple"
# 30-day feed periods: at the test epoch the sandbox feed runs no Alipay promotion, so Alipay's
# terms change only when a test changes them.
FEED_PERIOD_S = 30 * 86_400


@dataclass(frozen=True)
class Consumer:
    who: Principal
    phone: str
    number_id: str

    @property
    def user_id(self) -> str:
        return self.who.user_id


@dataclass
class Portal:
    engine: Engine
    clock: SimClock
    rig: Rig
    feed: SandboxTermsFeed
    quotes: QuoteService
    sms: SandboxSmsGateway
    identity: IdentityService
    risk: RiskService
    agreements: AgreementService
    recoveries: RecoveryService
    journey: JourneyService
    receipts: ReceiptService
    receipt_key: RSAKey
    published: list[Agreement]
    queue: ReviewQueueService
    approvals: FourEyesService
    stuck: StuckService
    search: RecoverySearchService
    deny_list: DenyListService
    pricing: PricingService

    # time

    def advance(self, **delta: float) -> None:
        self.clock.now += dt.timedelta(**delta)

    # people

    def consumer(
        self, n: int, balance_fen: int = 20_000, *, age: dt.timedelta = dt.timedelta(days=30), accept: bool = True
    ) -> Consumer:
        """A consumer who verified the n-th test number `age` ago (old enough for the new-account
        rule not to fire unless a test wants it), whose carrier balance is `balance_fen`."""
        phone = mobile(n)
        who = add_verified_consumer(self.engine, self.rig.cipher, self.rig.index, phone, self.clock.now - age)
        self.rig.carrier.balances[phone] = balance_fen
        ((number_id, _),) = self.identity.verified_numbers(who, who.user_id)
        if accept:
            self.agreements.accept(who, self.agreements.current().version)
        return Consumer(who, phone, number_id)

    def operator(self, username: str, *, phone: str | None = None) -> Principal:
        return Principal(self.identity.create_staff("operator", username, PASSWORD, phone=phone), "operator")

    # the journey, step by step

    def check(self, c: Consumer) -> NumberCheck:
        return self.journey.check_number(c.who, c.number_id)

    def lock(self, c: Consumer, channel: str = ALIPAY) -> LockedQuote:
        return self.journey.lock(c.who, self.check(c), channel)

    def submit(self, c: Consumer, lock: LockedQuote, *, device: str = DEVICE, payee: str = PAYEE) -> RecoveryView:
        return self.journey.submit(c.who, lock, payee, device)

    def recover(self, c: Consumer, *, device: str = DEVICE, payee: str = PAYEE) -> RecoveryView:
        """Check, lock and submit the whole balance through Alipay."""
        return self.submit(c, self.lock(c), device=device, payee=payee)

    # the world changing

    def change_terms(self, channel: str, rates: list[str]) -> None:
        """The channel's partner publishes new tier rates; the portal picks them up."""
        before = self.quotes.terms().version
        (terms,) = [c for c in self.feed.catalog["channels"] if c["id"] == channel]
        for tier, rate in zip(terms["fee"]["tiers"], rates, strict=True):
            tier["rate"] = rate
        assert self.quotes.refresh_terms(force=True).version > before

    def publish_agreement(self) -> Agreement:
        """A new version of the recovery agreement becomes current."""
        last = self.published[-1]
        number = int(last.version.removeprefix("v")) + 1
        texts = {lang: f"{text}\n\n(revised: v{number})" for lang, text in last.texts.items()}
        self.published.append(Agreement(last.document, f"v{number}", texts))
        return self.published[-1]

    # the engine's background work

    def drain(self, *, rounds: int = 500) -> None:
        """Work every outbox message and deliver every partner notice, moving the clock on to
        whatever is due next, until nothing is left to do."""
        drain(self.rig, self.clock, rounds=rounds)


def build_portal(engine: Engine) -> Portal:
    """The portal as `core.bootstrap.build` wires it, on this test's database, every sandbox
    in-process, on one simulated clock."""
    clock = SimClock()
    keys = PortalKeys(*(bytes([i]) * 32 for i in (7, 9)), "cookie-secret-for-tests-only-0123456789", generated=True)
    settings = replace(
        SETTINGS,
        public_url="http://portal.test",
        sandbox_feed_period_s=FEED_PERIOD_S,
        external_auth=True,
        four_eyes_above_fen=10**9,  # the console's tests set their own; the journey's operators approve alone
    )
    published = [AGREEMENT]
    receipt_key = rsa_key("receipts-test")
    services = build(
        settings,
        env={},
        engine=engine,
        clock=clock,
        keys=keys,
        receipt_key=receipt_key,
        agreement=lambda: published[-1],
    )
    assert services.sandbox_feed is not None and services.sandbox_sms is not None
    cipher, index = FieldCipher(keys.data_key), BlindIndex(keys.index_key, MOBILE_NUMBER)
    rig = Rig.over(services.wiring, cipher, index)
    rig.payouts.settle_s = 0.0  # Alipay pays at once unless a test says otherwise
    return Portal(
        engine,
        clock,
        rig,
        services.sandbox_feed,
        services.quotes,
        services.sandbox_sms,
        services.identity,
        services.risk,
        services.agreements,
        services.recoveries,
        services.journey,
        services.receipts,
        receipt_key,
        published,
        services.queue,
        services.approvals,
        services.stuck,
        services.recovery_search,
        services.deny_list,
        services.pricing,
    )


def states(view: RecoveryView) -> list[RecoveryState]:
    return [p.state for p in view.parts]


def in_review(portal: Portal, n: int, balance_fen: int = 120_000) -> tuple[Consumer, RecoveryView]:
    """A consumer's recovery of 1,200 CNY (three Alipay transactions) waiting for an operator."""
    c = portal.consumer(n, balance_fen=balance_fen)
    view = portal.recover(c)
    assert view.state is S.REVIEW and states(view) == [S.REVIEW] * len(view.parts)
    return c, view
