"""Demo data for a fresh install (`python -m core demo`): consumers with verified numbers on the
four carriers, and recoveries over the last few days through every channel, run through the real
engine (risk rules, agreements, the carrier check, the review queue, four eyes) against the
in-process sandbox partners, on a simulated clock that walks through those days.

Two halves. `plan_demo` is pure: from a seed, who recovers what, when, through which channel,
and what becomes of it (paid; refunded after the payout was refused; failed, the balance gone
before the debit; sent to review and left waiting, approved, rejected or cancelled by its
owner). `run_demo` carries a plan out: it only ever acts as a consumer or an operator would,
then works the outbox as the worker does, so every state, ledger entry and audit record is the
engine's own. The same seed makes the same history.

Sandbox only (`refuse_outside_sandbox`): it sets the sandbox carrier's balances and the sandbox
payout partners' knobs, and it makes two operators (`demo.operator1`, `demo.operator2`) whose
random passwords nobody ever sees.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import random
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from core.config import SANDBOX, ConfigError, Settings
from core.domain.access import Principal, Role
from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, Channel, PayoutForm
from core.domain.device import device_descriptor
from core.domain.limits import serves
from core.domain.quotes import transaction_size
from core.domain.recovery import RecoveryState
from core.domain.review import APPROVE_REASONS, REJECT_REASONS
from core.domain.risk import DEFAULT_THRESHOLDS, RiskThresholds
from core.errors import InputError
from core.persistence.tables import OutboxMessage, Recovery, User, VerifiedNumber
from core.persistence.uow import UnitOfWork
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.security.keys import PortalKeys
from core.services.agreements import AgreementService
from core.services.console.approvals import FourEyesService
from core.services.console.queue import ReviewQueueService
from core.services.identity import IdentityService
from core.services.recovery.views import RecoveryRequest, grouped, parts_of, view_of
from core.services.recovery.wiring import RecoveryWiring
from core.simulation.rig import Rig, SimClock, add_verified_consumer, sample_payee

DAY_S = 86_400.0
HOUR_S = 3_600.0
OPERATORS = ("demo.operator1", "demo.operator2")
MIN_AMOUNT_FEN, MAX_AMOUNT_FEN = 2_000, 300_000  # 20 to 3,000 CNY
MEDIAN_AMOUNT_FEN, AMOUNT_SIGMA = 18_000, 0.95  # log-normal: most balances are a few hundred CNY
REPEAT_SHARE = 0.35  # a recovery by someone who recovered before
MAX_PER_CONSUMER = 4
YOUNG_SHARE = 0.15  # of new consumers asking for little: signed up the same day
NEW_ACCOUNT_REVIEW_SHARE = 0.3  # of reviewed recoveries: sent there by the new-account rule

#: Number segments by the carrier they were allocated to.
SEGMENTS: dict[Carrier, tuple[str, ...]] = {
    Carrier.CHINA_MOBILE: ("138", "139", "150"),
    Carrier.CHINA_UNICOM: ("130", "186"),
    Carrier.CHINA_TELECOM: ("133", "189"),
    Carrier.CHINA_BROADNET: ("192",),
}
#: New consumers' carriers, among those a channel serves (Broadnet only reaches the bank channels).
CARRIER_SHARE = {
    Carrier.CHINA_MOBILE: 0.45,
    Carrier.CHINA_UNICOM: 0.2,
    Carrier.CHINA_TELECOM: 0.2,
    Carrier.CHINA_BROADNET: 0.15,
}
#: How often each channel is chosen (a channel not named here: 0.1); each one is used at least once.
CHANNEL_SHARE = {
    "alipay": 0.28,
    "wechat_pay": 0.22,
    "china_mobile_app": 0.12,
    "china_unicom_app": 0.07,
    "china_telecom_app": 0.07,
    "icbc_e_mall": 0.12,
    "cmb_life": 0.12,
}
#: Submissions by the hour of the day, Asia/Shanghai.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 10, 9, 9, 9, 9, 9, 10, 11, 12, 11, 8, 4)
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.49",
    "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; 22081212C) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
)
#: How long a sandbox payout partner takes to settle, by what it pays into.
SETTLE_S = {
    PayoutForm.CASH_WALLET: 0.0,
    PayoutForm.CASH_BANK_CARD: 120.0,
    PayoutForm.E_VOUCHER: 90.0,
    PayoutForm.POINTS: 900.0,
}


class Fate(enum.Enum):
    """What becomes of one demo recovery."""

    PAID = "paid"
    REFUNDED = "refunded"  # the payout was refused after the debit: the balance goes back
    FAILED = "failed"  # the balance was spent elsewhere before the debit
    WAITING = "waiting"  # sent to review, still in the queue
    APPROVED = "approved"  # sent to review, approved (by two operators above the four-eyes amount), paid
    APPROVED_REFUNDED = "approved_refunded"
    REJECTED = "rejected"  # sent to review, rejected by an operator
    CANCELLED = "cancelled"  # sent to review, cancelled by its owner while it waited

    @property
    def reviewed(self) -> bool:
        return self in (Fate.WAITING, Fate.APPROVED, Fate.APPROVED_REFUNDED, Fate.REJECTED, Fate.CANCELLED)

    @property
    def approved(self) -> bool:
        return self in (Fate.APPROVED, Fate.APPROVED_REFUNDED)

    @property
    def refunded(self) -> bool:
        return self in (Fate.REFUNDED, Fate.APPROVED_REFUNDED)

    @property
    def state(self) -> RecoveryState:
        """The state the recovery ends the demo in."""
        if self.refunded:
            return RecoveryState.REFUNDED
        return _FATE_STATE[self]


_FATE_STATE = {
    Fate.PAID: RecoveryState.PAID,
    Fate.APPROVED: RecoveryState.PAID,
    Fate.FAILED: RecoveryState.FAILED,
    Fate.WAITING: RecoveryState.REVIEW,
    Fate.REJECTED: RecoveryState.REJECTED,
    Fate.CANCELLED: RecoveryState.CANCELLED,
}
#: The share of recoveries each fate gets (dealt exactly, as from a shuffled deck).
FATE_SHARE = {
    Fate.PAID: 0.60,
    Fate.REFUNDED: 0.07,
    Fate.FAILED: 0.04,
    Fate.WAITING: 0.08,
    Fate.APPROVED: 0.11,
    Fate.APPROVED_REFUNDED: 0.01,
    Fate.REJECTED: 0.07,
    Fate.CANCELLED: 0.02,
}


class Step(enum.Enum):
    """What happens at a moment of the demo, in this order when two fall on the same second."""

    SUBMIT = "submit"  # the consumer submits
    DECIDE = "decide"  # an operator claims the case and decides (or asks a second operator)
    AGREE = "agree"  # the second operator agrees
    CANCEL = "cancel"  # the owner cancels while it waits


@dataclass(frozen=True)
class DemoConsumer:
    index: int
    phone: str  # never printed; shown masked by the portal
    carrier: Carrier
    created_s: float  # seconds from the window's start (negative: signed up before it)
    device: str  # the device descriptor risk control knows them by


@dataclass(frozen=True)
class DemoRecovery:
    index: int
    consumer: int
    at_s: float  # submitted, seconds from the window's start
    channel_id: str
    amount_fen: int
    spare_fen: int  # what stays on the number beside the amount
    payee: str
    fate: Fate
    refusal: str = ""  # refunded: "refused" (at once) or "failed" (while processing)
    operator: int = 0  # 0 or 1: who decides (the other one agrees)
    reason: str = ""  # the reason code the operator gives
    decided_s: float | None = None  # decided, or cancelled by the owner
    agreed_s: float | None = None  # approved above the four-eyes amount: the second operator agreed


@dataclass(frozen=True)
class Event:
    at_s: float
    step: Step
    recovery: int


@dataclass(frozen=True)
class DemoPlan:
    seed: int
    days: int
    consumers: tuple[DemoConsumer, ...]
    recoveries: tuple[DemoRecovery, ...]

    def events(self) -> list[Event]:
        """Every step of the demo in time order."""
        events = []
        for r in self.recoveries:
            events.append(Event(r.at_s, Step.SUBMIT, r.index))
            if r.decided_s is not None:
                events.append(Event(r.decided_s, Step.CANCEL if r.fate is Fate.CANCELLED else Step.DECIDE, r.index))
            if r.agreed_s is not None:
                events.append(Event(r.agreed_s, Step.AGREE, r.index))
        order = list(Step)
        return sorted(events, key=lambda e: (e.at_s, e.recovery, order.index(e.step)))

    @property
    def span_s(self) -> float:
        """From the window's start to the last step, with an hour for the partners to settle."""
        return max((e.at_s for e in self.events()), default=0.0) + HOUR_S

    def expected_states(self) -> Counter[RecoveryState]:
        return Counter(r.fate.state for r in self.recoveries)


# --- the plan (pure) ---------------------------------------------------------------------------

T = TypeVar("T")


def deal(rng: random.Random, n: int, shares: Sequence[tuple[T, float]]) -> list[T]:
    """`n` items in the given shares (largest remainders round), shuffled."""
    exact = [n * share for _, share in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    deck = [item for (item, _), count in zip(shares, counts, strict=True) for _ in range(count)]
    rng.shuffle(deck)
    return deck


def plan_demo(
    seed: int,
    recoveries: int,
    days: int,
    catalog: Catalog,
    *,
    thresholds: RiskThresholds = DEFAULT_THRESHOLDS,
    four_eyes_above_fen: int = 100_000,
) -> DemoPlan:
    """Who recovers what, when, through which channel, and what becomes of it: from the seed alone."""
    if recoveries < 1 or days < 1:
        raise ValueError("a demo has at least one recovery over at least one day")
    rng = random.Random(seed)  # noqa: S311 - a replayable demo, not a secret
    fates = deal(rng, recoveries, list(FATE_SHARE.items()))
    timeline = sorted(((_moment(rng, days, fate), fate) for fate in fates), key=lambda pair: pair[0])
    channels = _channel_deck(rng, recoveries, catalog)
    pool = _Pool(rng, thresholds)
    planned = []
    for index, ((at_s, fate), channel) in enumerate(zip(timeline, channels, strict=True)):
        amount, young = _amount(rng, fate, channel, thresholds)
        consumer = pool.pick(channel, at_s, amount, young=young)
        recovery = _recovery(rng, index, consumer, at_s, channel, amount, fate, four_eyes_above_fen)
        pool.book(consumer, recovery)
        planned.append(recovery)
    return DemoPlan(seed, days, tuple(pool.consumers), tuple(planned))


def _moment(rng: random.Random, days: int, fate: Fate) -> float:
    """When, from the window's start (a midnight in Shanghai); cases still waiting are recent."""
    first = days - max(1, days // 3) if fate is Fate.WAITING else 0
    day = rng.randrange(first, days)
    (hour,) = rng.choices(range(24), HOUR_WEIGHTS)
    return day * DAY_S + hour * HOUR_S + rng.randrange(3600)


def _channel_deck(rng: random.Random, n: int, catalog: Catalog) -> list[Channel]:
    """Every channel once (when there are enough recoveries), the rest by their shares."""
    channels = list(catalog.channels)
    shares = [(c, CHANNEL_SHARE.get(c.id, 0.1)) for c in channels]
    total = sum(share for _, share in shares)
    shares = [(c, share / total) for c, share in shares]
    if n < len(channels):
        return deal(rng, n, shares)
    deck = channels + deal(rng, n - len(channels), shares)
    rng.shuffle(deck)
    return deck


def _amount(rng: random.Random, fate: Fate, channel: Channel, t: RiskThresholds) -> tuple[int, bool]:
    """The amount, and whether the consumer must be a new account (the new-account rule sends it
    to review). Amounts that do not go to review stay clear of the review amount, and of the
    bands just under the limits the structuring rule watches."""
    if fate.reviewed:
        if rng.random() < NEW_ACCOUNT_REVIEW_SHARE and t.new_account_review_fen < t.review_amount_fen * 9 // 10:
            return _fit(rng.randrange(t.new_account_review_fen, t.review_amount_fen * 9 // 10), channel), True
        low, high = t.review_amount_fen, max(MAX_AMOUNT_FEN, t.review_amount_fen * 3)
        return _fit(round(math.exp(rng.uniform(math.log(low), math.log(high)))), channel), False
    amount = MIN_AMOUNT_FEN
    for _ in range(100):
        amount = round(rng.lognormvariate(math.log(MEDIAN_AMOUNT_FEN), AMOUNT_SIGMA))
        if MIN_AMOUNT_FEN <= amount < t.review_amount_fen * 9 // 10:
            break
    else:
        amount = MIN_AMOUNT_FEN
    size = transaction_size(channel, None)
    for limit in sorted({t.review_amount_fen, *([size] if size else [])}):
        if limit * 9 // 10 <= amount < limit:
            amount = limit * 9 // 10 - 1 - rng.randrange(limit // 20)
    return _fit(amount, channel), False


def _fit(amount: int, channel: Channel) -> int:
    """The amount, nudged so that the channel can take it: at least its minimum, and no last
    transaction below the minimum."""
    minimum = channel.limits.min_transaction_fen
    amount = max(amount, minimum)
    size = transaction_size(channel, None)
    if size and 0 < amount % size < minimum:
        amount += minimum
    return amount


def _recovery(
    rng: random.Random,
    index: int,
    consumer: DemoConsumer,
    at_s: float,
    channel: Channel,
    amount: int,
    fate: Fate,
    four_eyes_above_fen: int,
) -> DemoRecovery:
    spare = amount + rng.randrange(amount) if channel.limits.share_of_balance_ppm else rng.randrange(5_000, 40_000)
    decided = agreed = None
    if fate is Fate.CANCELLED:
        decided = at_s + rng.uniform(300, 2 * HOUR_S)
    elif fate.reviewed and fate is not Fate.WAITING:
        decided = at_s + rng.uniform(600, 3 * HOUR_S)
        if fate.approved and amount > four_eyes_above_fen:
            agreed = decided + rng.uniform(300, 1.5 * HOUR_S)
    reasons = APPROVE_REASONS if fate.approved else REJECT_REASONS
    return DemoRecovery(
        index=index,
        consumer=consumer.index,
        at_s=at_s,
        channel_id=channel.id,
        amount_fen=amount,
        spare_fen=spare,
        payee=_payee(channel.payout_form, consumer.index),
        fate=fate,
        refusal=rng.choice(("refused", "failed")) if fate.refunded else "",
        operator=rng.randrange(2),
        reason=rng.choice(reasons),
        decided_s=decided,
        agreed_s=agreed,
    )


def _payee(form: PayoutForm, consumer: int) -> str:
    """Where the channel pays: a wallet account, or a card (vouchers go to the number itself)."""
    if form is PayoutForm.CASH_WALLET:
        return f"demo.payee{consumer}@example.com"
    return "" if form is PayoutForm.E_VOUCHER else sample_payee(form, consumer)


@dataclass
class _Pool:
    """The consumers so far, and when each may recover again: a day after their last recovery
    ended (the portal's daily limits), never while one waits in review."""

    rng: random.Random
    t: RiskThresholds
    consumers: list[DemoConsumer] = field(default_factory=list)
    free_at: list[float] = field(default_factory=list)
    used: list[int] = field(default_factory=list)
    phones: set[str] = field(default_factory=set)

    def pick(self, channel: Channel, at_s: float, amount: int, *, young: bool) -> DemoConsumer:
        if not young and self.rng.random() < REPEAT_SHARE:
            fits = [c for c in self.consumers if self._fits(c, channel, at_s, amount)]
            if fits:
                return self.rng.choice(fits)
        young = young or (amount < self.t.new_account_review_fen and self.rng.random() < YOUNG_SHARE)
        return self._new(channel, at_s, young=young)

    def _fits(self, c: DemoConsumer, channel: Channel, at_s: float, amount: int) -> bool:
        old_enough = amount < self.t.new_account_review_fen or at_s - c.created_s > self.t.new_account_s + DAY_S
        free = self.free_at[c.index] <= at_s and self.used[c.index] < MAX_PER_CONSUMER
        return free and old_enough and serves(channel, c.carrier)

    def _new(self, channel: Channel, at_s: float, *, young: bool) -> DemoConsumer:
        carriers = [c for c in Carrier if serves(channel, c)]
        (carrier,) = self.rng.choices(carriers, [CARRIER_SHARE[c] for c in carriers])
        phone = ""
        while not phone or phone in self.phones:
            phone = self.rng.choice(SEGMENTS[carrier]) + f"{self.rng.randrange(10**8):08d}"
        self.phones.add(phone)
        age = self.t.new_account_s * self.rng.uniform(0.05, 0.8) if young else self.rng.uniform(2, 180) * DAY_S
        index = len(self.consumers)
        address = f"100.{64 + index // 250 % 64}.{index % 250}.{self.rng.randrange(1, 255)}"
        device = device_descriptor(address, self.rng.choice(USER_AGENTS))
        consumer = DemoConsumer(index, phone, carrier, at_s - max(age, 60.0), device)
        self.consumers.append(consumer)
        self.free_at.append(-math.inf)
        self.used.append(0)
        return consumer

    def book(self, consumer: DemoConsumer, recovery: DemoRecovery) -> None:
        ended = max(recovery.at_s, recovery.decided_s or 0.0, recovery.agreed_s or 0.0)
        self.free_at[consumer.index] = math.inf if recovery.fate is Fate.WAITING else ended + DAY_S
        self.used[consumer.index] += 1


def window_start(plan: DemoPlan, now: dt.datetime) -> dt.datetime:
    """The midnight (Shanghai) `plan.days` days before today, or earlier still if the plan's last
    step would otherwise fall after `now`: the whole demo lies in the past."""
    today = now.astimezone(SHANGHAI).date()
    start = dt.datetime.combine(today - dt.timedelta(days=plan.days), dt.time(), SHANGHAI)
    while start + dt.timedelta(seconds=plan.span_s) > now:
        start -= dt.timedelta(days=1)
    return start.astimezone(dt.UTC)


# --- carrying it out ---------------------------------------------------------------------------


class DemoServices(Protocol):
    """What the demo uses of the portal's services (`core.bootstrap.Services` has it all)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def keys(self) -> PortalKeys: ...
    @property
    def identity(self) -> IdentityService: ...
    @property
    def agreements(self) -> AgreementService: ...
    @property
    def wiring(self) -> RecoveryWiring: ...
    @property
    def queue(self) -> ReviewQueueService: ...
    @property
    def approvals(self) -> FourEyesService: ...


@dataclass(frozen=True)
class DemoResult:
    plan: DemoPlan
    start: dt.datetime  # the window's first midnight (UTC)
    group_ids: tuple[str, ...]  # by plan index
    states: tuple[RecoveryState, ...]  # by plan index, as the engine left them

    def by_state(self) -> Counter[RecoveryState]:
        return Counter(self.states)


def sandbox_only() -> ConfigError:
    return ConfigError(
        "demo data is made in sandbox mode only (no PORTAL_ENV=production, CARRIER_API_URL and "
        "PAYOUT_API_URL left at 'sandbox')",
        key="error.demo.sandbox_only",
    )


def refuse_outside_sandbox(settings: Settings) -> None:
    """Demo data only where no real money moves: development mode with the sandbox partners."""
    if settings.production or settings.carrier_api_url != SANDBOX or settings.payout_api_url != SANDBOX:
        raise sandbox_only()


def run_demo(services: DemoServices, clock: SimClock, plan: DemoPlan, start: dt.datetime) -> DemoResult:
    """Carry out `plan` from `start` (see `window_start`) on `clock`, the simulated clock the
    services were built with."""
    refuse_outside_sandbox(services.settings)
    keys = services.keys
    try:
        rig = Rig.over(services.wiring, FieldCipher(keys.data_key), BlindIndex(keys.index_key, MOBILE_NUMBER))
    except ValueError:  # the partners are not the in-process sandboxes
        raise sandbox_only() from None
    _refuse_twice(services.engine, rig, plan)
    clock.advance_to(start)
    run = _Run(services, rig, clock, plan, start, _make_operators(services, start - dt.timedelta(days=1)))
    for event in plan.events():
        run.handle(event)
    return DemoResult(plan, start, tuple(run.groups[r.index] for r in plan.recoveries), run.states())


def _refuse_twice(engine: Engine, rig: Rig, plan: DemoPlan) -> None:
    """Demo data goes into a database once; and never onto a number someone already verified."""
    with UnitOfWork(engine) as uow:
        taken = uow.session.exec(select(User.username).where(col(User.username).in_(OPERATORS))).first()
        indexes = [rig.index(c.phone) for c in plan.consumers]
        numbers = uow.session.exec(
            select(VerifiedNumber.id).where(col(VerifiedNumber.number_index).in_(indexes))
        ).first()
    if taken is not None:
        raise InputError("this database already holds demo data", key="error.demo.loaded", username=taken)
    if numbers is not None:
        raise InputError("a demo number is already verified here; choose another seed", key="error.demo.numbers")


def _make_operators(services: DemoServices, since: dt.datetime) -> tuple[Principal, Principal]:
    """The two demo operators, with random passwords that are never shown (nobody signs in as them)."""
    made = [
        Principal(services.identity.create_staff("operator", name, secrets.token_urlsafe(24)), Role.OPERATOR)
        for name in OPERATORS
    ]
    with UnitOfWork(services.engine) as uow:
        ids = [who.user_id for who in made]
        uow.session.execute(update(User).where(col(User.id).in_(ids)).values(created_at=since))
        uow.commit()
    return made[0], made[1]


class _Run:
    """One plan being carried out: the consumers signed up so far, the recoveries' ids, the
    requests waiting for a second operator."""

    def __init__(
        self,
        services: DemoServices,
        rig: Rig,
        clock: SimClock,
        plan: DemoPlan,
        start: dt.datetime,
        operators: tuple[Principal, Principal],
    ) -> None:
        self.services, self.rig, self.clock, self.plan, self.start = services, rig, clock, plan, start
        self.operators = operators
        self.people: dict[int, Principal] = {}
        self.groups: dict[int, str] = {}
        self.requests: dict[int, str] = {}
        self.channels = services.wiring.catalog().by_id()

    def handle(self, event: Event) -> None:
        self.clock.advance_to(self.start + dt.timedelta(seconds=event.at_s))
        recovery = self.plan.recoveries[event.recovery]
        if event.step is Step.SUBMIT:
            self.submit(recovery)
        elif event.step is Step.DECIDE:
            self.decide(recovery)
        elif event.step is Step.AGREE:
            self.agree(recovery)
        else:
            self.cancel(recovery)
        self.settle(recovery)

    def person(self, consumer: DemoConsumer) -> Principal:
        """The consumer, signed up (backdated) and agreeing to the agreement on first use."""
        who = self.people.get(consumer.index)
        if who is None:
            rig, created = self.rig, self.start + dt.timedelta(seconds=consumer.created_s)
            who = add_verified_consumer(rig.engine, rig.cipher, rig.index, consumer.phone, created)
            with UnitOfWork(rig.engine) as uow:
                mine = col(VerifiedNumber.user_id) == who.user_id
                uow.session.execute(update(VerifiedNumber).where(mine).values(verified_at=created))
                uow.commit()
            self.services.agreements.accept(who, self.services.agreements.current().version)
            self.people[consumer.index] = who
        return who

    def submit(self, r: DemoRecovery) -> None:
        consumer = self.plan.consumers[r.consumer]
        who = self.person(consumer)
        self.rig.carrier.set_balance(consumer.phone, r.amount_fen + r.spare_fen)
        request = RecoveryRequest(r.channel_id, consumer.phone, r.amount_fen, r.payee, device=consumer.device)
        view = self.rig.recoveries.submit(who, f"demo-{self.plan.seed}-{r.index:05d}", request)
        self.groups[r.index] = view.id
        if r.fate is Fate.FAILED:  # spent elsewhere before the carrier was asked to debit it
            self.rig.carrier.set_balance(consumer.phone, 0)

    def decide(self, r: DemoRecovery) -> None:
        if not self.in_review(r):
            return
        operator, group_id = self.operators[r.operator], self.groups[r.index]
        self.services.queue.claim(operator, group_id)
        decision = self.services.queue.decide(operator, group_id, approve=r.fate.approved, reason=r.reason)
        if decision.request is not None:
            self.requests[r.index] = decision.request.id

    def agree(self, r: DemoRecovery) -> None:
        request = self.requests.pop(r.index, None)
        if request is not None:
            self.services.approvals.agree(self.operators[1 - r.operator], request)

    def cancel(self, r: DemoRecovery) -> None:
        if self.in_review(r):
            self.rig.recoveries.cancel(self.people[r.consumer], self.groups[r.index])

    def in_review(self, r: DemoRecovery) -> bool:
        with UnitOfWork(self.rig.engine) as uow:
            parts = parts_of(uow, Recovery.group_id == self.groups[r.index])
        return view_of(parts).state is RecoveryState.REVIEW

    def settle(self, r: DemoRecovery) -> None:
        """Work the outbox and the partners' notices until nothing is left to do, the payout
        partner refusing or failing this recovery's payouts if the plan says so."""
        payouts, form = self.rig.payouts, self.channels[r.channel_id].payout_form
        payouts.reject_rate = 1.0 if r.refusal == "refused" else 0.0
        payouts.fail_rate = 1.0 if r.refusal == "failed" else 0.0
        payouts.settle_s = SETTLE_S[form]
        self.rig.worker().run_until_settled(
            lambda: _next_open(self.rig) is None and not payouts.pending_notifications(),
            deliver=payouts.deliver_due,
            advance=self.advance,
            rounds=1_000,
        )

    def advance(self) -> None:
        due = _next_open(self.rig)
        self.clock.advance_to(
            due if due is not None and due > self.clock.now else self.clock.now + dt.timedelta(minutes=1)
        )

    def states(self) -> tuple[RecoveryState, ...]:
        ids = [self.groups[r.index] for r in self.plan.recoveries]
        with UnitOfWork(self.rig.engine) as uow:
            rows = uow.session.exec(
                select(Recovery)
                .where(col(Recovery.group_id).in_(ids))
                .order_by(col(Recovery.group_id), col(Recovery.part))
            ).all()
        by_id = {view.id: view.state for view in grouped(rows)}
        return tuple(by_id[group_id] for group_id in ids)


def _next_open(rig: Rig) -> dt.datetime | None:
    """When the earliest outbox message not yet done is due (None: all are done)."""
    with UnitOfWork(rig.engine) as uow:
        return uow.session.exec(
            select(func.min(OutboxMessage.available_at)).where(col(OutboxMessage.done_at).is_(None))
        ).one()
