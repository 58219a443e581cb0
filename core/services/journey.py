"""The consumer's recovery journey, step by step, for the Recover and My recoveries pages:
check a verified number with the carrier, lock a quote for ten minutes, submit it, and follow
the recovery to its expected dates. Each step is one call; pages hold only ids.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.adapters.carrier import CarrierApi
from core.domain.access import Principal, require_consumer
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, PayoutForm
from core.domain.limits import plan_parts
from core.domain.quotes import ChannelQuote, Comparison, QuoteRequest, days_for, eta, split, transaction_size
from core.domain.recovery import RecoveryState
from core.errors import InputError, PartnerError, PartnerRefused
from core.persistence.tables import QuoteLock
from core.persistence.uow import UnitOfWork
from core.phones import mask
from core.services.identity import IdentityService
from core.services.quoting import QuoteService
from core.services.recovery import RecoveryService
from core.services.recovery.holdings import committed_on
from core.services.recovery.submission import IdempotencyConflict, QuoteUnusable
from core.services.recovery.views import RecoveryRequest, RecoveryView

#: A recovery in one of these will pay nothing more: no arrival to expect.
UNPAID_END = frozenset(
    {
        RecoveryState.REJECTED,
        RecoveryState.CANCELLED,
        RecoveryState.FAILED,
        RecoveryState.REFUNDED,
        RecoveryState.REFUNDING,
    }
)


class NumberUnavailable(InputError):
    key = "error.journey.number_unavailable"


@dataclass(frozen=True)
class NumberCheck:
    number_id: str
    masked: str
    allocated_carrier: Carrier
    current_carrier: Carrier
    active: bool
    balance_fen: int  # what the carrier says is on the number
    in_review_fen: int = 0  # of which open recoveries waiting for an operator hold this much
    in_progress_fen: int = 0  # ... and recoveries on their way to a debit this much

    @property
    def ported(self) -> bool:
        return self.allocated_carrier is not self.current_carrier

    @property
    def committed_fen(self) -> int:
        return self.in_review_fen + self.in_progress_fen

    @property
    def available_fen(self) -> int:
        """What a new recovery may take: the balance less what open recoveries already hold."""
        return max(0, self.balance_fen - self.committed_fen)


@dataclass(frozen=True)
class LockedQuote:
    id: str
    number_id: str
    channel_id: str
    carrier: Carrier
    balance_fen: int
    amount_fen: int
    fee_fen: int
    net_fen: int
    transactions: int
    eta_earliest: dt.date | None
    eta_latest: dt.date | None
    expires_at: dt.datetime
    used_by: str | None  # the recovery that used it
    payout_form: PayoutForm | None  # what the channel pays into (None: the channel is no longer offered)

    @property
    def used(self) -> bool:
        return self.used_by is not None

    def seconds_left(self, now: dt.datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))


@dataclass(frozen=True)
class QuoteChange:
    """What re-quoting an expired lock changed (old -> new), for the user to see."""

    field: str  # amount_fen | fee_fen | net_fen | transactions | eta_latest | eligible
    before: str
    after: str


@dataclass(frozen=True)
class Expected:
    """When a recovery's money should arrive, by the working-day calendar."""

    earliest: dt.date
    latest: dt.date
    estimated: bool  # the calendar's holidays for that year are not published yet


class JourneyService:
    def __init__(
        self,
        engine: Engine,
        identity: IdentityService,
        quotes: QuoteService,
        recoveries: RecoveryService,
        carrier: CarrierApi,
        *,
        lock_s: float = 600.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._identity = identity
        self._quotes = quotes
        self._recoveries = recoveries
        self._carrier = carrier
        self.lock_s = lock_s
        self._clock = clock

    def now(self) -> dt.datetime:
        return self._clock()

    # --- step 1: the number ----------------------------------------------------------------------

    def check_number(self, caller: Principal, number_id: str) -> NumberCheck:
        """Ask the carrier which carrier the number is with now (after porting) and its balance."""
        national = self._identity.number_of(caller, number_id)
        try:
            info = self._carrier.lookup(national)
            balance = self._carrier.balance(national) if info.active else 0
        except PartnerRefused as error:
            raise NumberUnavailable(
                "the carrier does not know this number", key="error.journey.number_unknown"
            ) from error
        except PartnerError as error:
            raise NumberUnavailable("the carrier did not answer; try again in a moment") from error
        with UnitOfWork(self._engine) as uow:
            held = committed_on(uow, self._recoveries.number_index(national))
        in_review = held.get(RecoveryState.REVIEW, 0)
        return NumberCheck(
            number_id,
            mask(national),
            info.allocated_carrier,
            info.current_carrier,
            info.active,
            balance,
            in_review,
            sum(held.values()) - in_review,
        )

    # --- step 2: compare and lock ----------------------------------------------------------------

    def compare(self, check: NumberCheck, *, shown: bool = True) -> Comparison:
        """The live comparison for what is left of the number's balance (`shown`: a person sees
        it, and the anonymous quote log hears of it)."""
        if not check.active:
            raise NumberUnavailable(
                "the number is suspended; the carrier will not debit it", key="error.journey.inactive"
            )
        if check.balance_fen <= 0:
            raise NumberUnavailable("there is no balance on this number to recover", key="error.journey.no_balance")
        if check.available_fen <= 0:
            raise NumberUnavailable(
                "open recoveries already hold the whole balance",
                key="error.journey.all_committed",
                committed_fen=check.committed_fen,
            )
        request = QuoteRequest(balance_fen=check.available_fen, carrier=check.current_carrier, at=self._clock())
        comparison = self._quotes.compare_request(request)
        if shown:
            self._quotes.served(request)
        return comparison

    def lock(self, caller: Principal, check: NumberCheck, channel_id: str) -> LockedQuote:
        """Hold one channel's quote for this balance for `lock_s` seconds."""
        require_consumer(caller, "only a consumer recovers their own balance")
        comparison = self.compare(check, shown=False)  # the same quote again, not another one asked for
        quote = quote_for(comparison, channel_id)
        if quote is None or not quote.eligible:
            raise QuoteUnusable("this channel cannot take this balance", key="error.quote.ineligible")
        national = self._identity.number_of(caller, check.number_id)
        plan = plan_parts(quote.channel, quote.recoverable_fen)
        now = self._clock()
        row = QuoteLock(
            user_id=caller.user_id,
            number_index=self._recoveries.number_index(national),
            channel_id=channel_id,
            carrier=check.current_carrier.value,
            balance_fen=check.balance_fen,
            amount_fen=quote.recoverable_fen,
            fee_fen=quote.fee_fen,
            net_fen=quote.net_fen,
            plan=json.dumps([[p.debit_fen, p.fee_fen] for p in plan]),
            eta_earliest=quote.eta_earliest,
            eta_latest=quote.eta_latest,
            terms_version=self._quotes.terms().version,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self.lock_s),
        )
        with UnitOfWork(self._engine) as uow:
            uow.session.add(row)
            uow.commit()
        return self._locked(row, check.number_id, self._quotes.terms().catalog)

    def locked(self, caller: Principal, lock_id: str, number_id: str) -> LockedQuote:
        """The caller's lock `lock_id`, made for their number `number_id` (a lock made for another
        of their numbers is refused as one that is not theirs: its figures are that number's)."""
        national = self._identity.number_of(caller, number_id)
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(QuoteLock, lock_id)
        if row is None or row.user_id != caller.user_id:
            raise QuoteUnusable("this quote is not yours or does not exist")
        if row.number_index != self._recoveries.number_index(national):
            raise QuoteUnusable("this quote was locked for another number")
        return self._locked(row, number_id, self._quotes.terms().catalog)

    def requote(self, caller: Principal, old: LockedQuote, check: NumberCheck) -> tuple[LockedQuote, list[QuoteChange]]:
        """A new lock on the same channel after the old one ran out, and what changed."""
        new = self.lock(caller, check, old.channel_id)
        changes = [
            QuoteChange(name, str(getattr(old, name)), str(getattr(new, name)))
            for name in ("amount_fen", "fee_fen", "net_fen", "transactions", "eta_latest")
            if getattr(old, name) != getattr(new, name)
        ]
        return new, changes

    def renewed(
        self, caller: Principal, lock: LockedQuote, check: NumberCheck
    ) -> tuple[LockedQuote, list[QuoteChange] | None]:
        """The lock as it stands: itself while its ten minutes last (or once used), otherwise a
        new quote on the same channel with what changed (None: nothing was renewed)."""
        if lock.used or lock.seconds_left(self._clock()) > 0:
            return lock, None
        return self.requote(caller, lock, check)

    @staticmethod
    def _locked(row: QuoteLock, number_id: str, catalog: Catalog) -> LockedQuote:
        return LockedQuote(
            id=row.id,
            number_id=number_id,
            channel_id=row.channel_id,
            carrier=Carrier.parse(row.carrier),
            balance_fen=row.balance_fen,
            amount_fen=row.amount_fen,
            fee_fen=row.fee_fen,
            net_fen=row.net_fen,
            transactions=len(json.loads(row.plan)),
            eta_earliest=row.eta_earliest,
            eta_latest=row.eta_latest,
            expires_at=row.expires_at,
            used_by=row.used_by,
            payout_form=channel.payout_form if (channel := catalog.by_id().get(row.channel_id)) else None,
        )

    # --- step 5: submit --------------------------------------------------------------------------

    def submit(self, caller: Principal, lock: LockedQuote, payee: str, device: str) -> RecoveryView:
        """Submit the locked quote. The idempotency key is the lock's, so a double click, a
        retry or going back and submitting again returns the same recovery. The payout account
        is checked against the channel's payout form by the engine, like every other part."""
        national = self._identity.number_of(caller, lock.number_id)
        request = RecoveryRequest(lock.channel_id, national, lock.amount_fen, payee, lock.id, device)
        try:
            return self._recoveries.submit(caller, f"lock-{lock.id}", request)
        except IdempotencyConflict as error:  # the key is the quote's: it was submitted, to another account
            raise IdempotencyConflict(
                "this quote was already submitted with other details", key="error.quote.submitted"
            ) from error

    # --- step 6: follow it -----------------------------------------------------------------------

    def expected(self, view: RecoveryView) -> Expected | None:
        """When the payout should arrive: from the debit (or the submission while it waits),
        by the channel's speed on the working-day calendar. None once it ended unpaid."""
        if view.state in UNPAID_END:
            return None
        catalog: Catalog = self._quotes.terms().catalog
        channel = catalog.by_id().get(view.channel_id)
        if channel is None:
            return None
        size = transaction_size(channel, None)
        parts = split(view.amount_fen, size, 1)
        first, last = eta(channel, self._quotes.calendar, view.created_at, days_for(parts, channel.limits.per_day_fen))
        return Expected(first.date, last.date, first.estimated or last.estimated)


def quote_for(comparison: Comparison, channel_id: str) -> ChannelQuote | None:
    return next((q for q in comparison.quotes if q.channel.id == channel_id), None)
