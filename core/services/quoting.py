"""Quoting: live terms, one comparison, the batch form, and what each figure rests on.

`QuoteService` is shared by every user of a portal process (it holds no per-user data) and
is thread-safe: the live terms are an immutable snapshot swapped under a lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from core.adapters.terms_feed import TermsFeed
from core.domain.batch_quotes import BatchQuote, batch_quote
from core.domain.calendar import SHANGHAI, WorkingDayCalendar
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, CatalogSource, Channel
from core.domain.quotes import Comparison, Priority, QuoteRequest, compare
from core.errors import InputError, InvalidCarrier, InvalidMoment, PartnerError, PortalError
from core.money import MAX_CREDIT_LIMIT_FEN, parse_amount, parse_valuation
from core.phones import MobileNumber, parse_mobile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelTerms:
    channel: Channel
    confirmed_at: dt.datetime  # when the terms were last confirmed by the feed (or the snapshot's as_of)
    source: str  # "feed" or "snapshot"
    etag: str | None = None


@dataclass(frozen=True)
class LiveTerms:
    """The terms every quote uses right now; `version` changes whenever any channel's terms do."""

    by_channel: tuple[ChannelTerms, ...]
    version: int
    as_of: dt.date
    checked_at: dt.datetime | None = None
    catalog_source: CatalogSource | None = None  # where the bundled figures come from

    @property
    def catalog(self) -> Catalog:
        return Catalog(tuple(t.channel for t in self.by_channel), self.as_of, self.catalog_source)

    def stale(self, now: dt.datetime, stale_after: dt.timedelta) -> list[ChannelTerms]:
        return [t for t in self.by_channel if now - t.confirmed_at > stale_after]

    def oldest_confirmation(self) -> dt.datetime:
        return min(t.confirmed_at for t in self.by_channel)


@dataclass(frozen=True)
class QuoteInput:
    """What a person (page or command line) typed, before validation."""

    balance: str
    phone: str = field(default="", repr=False)  # never in a repr, a log line or a traceback
    carrier: str | None = None
    credit_limit: str = ""
    bound_carrier: str | None = None
    voucher_value: str = ""
    points_value: str = ""
    at: dt.datetime | str | None = None
    priority: str = Priority.COST.value


@dataclass(frozen=True)
class QuoteOutcome:
    comparison: Comparison
    number: MobileNumber | None
    terms: LiveTerms


@dataclass(eq=False)  # one per process, hashable by identity
class QuoteService:
    snapshot: Catalog
    calendar: WorkingDayCalendar
    feed: TermsFeed | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    stale_after: dt.timedelta = dt.timedelta(hours=48)
    refresh_every: dt.timedelta = dt.timedelta(seconds=30)
    #: The portal's own offer as the live pricing version has it today, with that version's
    #: number (core.services.pricing), once the portal has a database; None: the market alone.
    own_offer: Callable[[], tuple[int, Channel]] | None = None
    #: Told of every quote a person is served (core.services.quote_log keeps it, anonymously).
    on_quote: Callable[[QuoteRequest], None] | None = None
    _terms: LiveTerms = field(init=False)
    _with_own: tuple[LiveTerms, tuple[int, Channel], LiveTerms] | None = field(default=None, init=False, repr=False)
    _own_changes: int = field(default=0, init=False, repr=False)
    _own_error: str = field(default="", init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _refreshing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._terms = LiveTerms(
            tuple(
                ChannelTerms(c, dt.datetime.combine(c.as_of, dt.time(), SHANGHAI), "snapshot")
                for c in self.snapshot.channels
            ),
            version=0,
            as_of=self.snapshot.as_of,
            catalog_source=self.snapshot.source,
        )

    # --- live terms ------------------------------------------------------------------------

    def terms(self) -> LiveTerms:
        """Every channel quotes use now: the market's, and the portal's own offer after them.
        `version` changes when either does (a new pricing version, a promotion starting)."""
        market = self._terms
        if self.own_offer is None:
            return market
        try:
            own = self.own_offer()
        except PortalError as exc:  # the pricing store unreadable: the market still quotes
            said = str(exc)[:200]
            if said != self._own_error:  # once per new trouble, not once per quote
                log.warning("own offer unavailable: %s", said)
                self._own_error = said
            return market
        self._own_error = ""
        cached = self._with_own
        if cached is not None and cached[0] is market and cached[1] == own:
            return cached[2]
        with self._lock:
            if cached is None or cached[1] != own:
                self._own_changes += 1
            confirmed = dt.datetime.combine(own[1].as_of, dt.time(), SHANGHAI)
            combined = replace(
                market,
                by_channel=(*market.by_channel, ChannelTerms(own[1], max(confirmed, self.clock()), "pricing")),
                version=market.version + self._own_changes,
            )
            self._with_own = (market, own, combined)
        return combined

    def market_terms(self) -> LiveTerms:
        """The market's channels alone (what the partners publish; the own offer is priced against them)."""
        return self._terms

    def _due(self, now: dt.datetime) -> bool:
        checked = self._terms.checked_at
        return self.feed is not None and (checked is None or now - checked >= self.refresh_every)

    def refresh_in_background(self) -> None:
        """Start a refresh if one is due and none is running, without waiting for it: a slow
        feed never holds up a page. The new terms show on the caller's next look."""
        if self._due(self.clock()) and not self._refreshing.locked():
            threading.Thread(target=self.refresh_terms, name="terms-refresh", daemon=True).start()

    def refresh_terms(self, *, force: bool = False) -> LiveTerms:
        """Ask the feed for every channel's terms (concurrently, so one timeout bounds the wait),
        at most once per `refresh_every` across all callers. A channel whose feed fails keeps
        its last confirmed terms (at first, the bundled snapshot) and ages towards stale;
        nothing here raises to the caller."""
        now = self.clock()
        if not force and not self._due(now):
            return self.terms()
        if self.feed is None or not self._refreshing.acquire(blocking=False):
            return self.terms()  # no feed, or another thread is refreshing: use what we have
        try:
            current = self._terms
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="terms-feed") as pool:
                updated = list(pool.map(lambda terms: self._fetch(terms, now), current.by_channel))
            changed = any(new.channel != old.channel for new, old in zip(updated, current.by_channel, strict=True))
            with self._lock:
                version = current.version + (1 if changed else 0)
                self._terms = LiveTerms(tuple(updated), version, current.as_of, now, current.catalog_source)
            return self.terms()
        finally:
            self._refreshing.release()

    def _fetch(self, terms: ChannelTerms, now: dt.datetime) -> ChannelTerms:
        assert self.feed is not None
        try:
            answer = self.feed.fetch(terms.channel.id, etag=terms.etag)
        except PartnerError as exc:
            log.warning("terms feed failed for %s: %s", terms.channel.id, str(exc)[:200])
            return terms
        if answer.channel is None:
            return replace(terms, confirmed_at=now)
        return ChannelTerms(answer.channel, now, "feed", answer.etag)

    # --- quotes ----------------------------------------------------------------------------

    def request_from(self, given: QuoteInput) -> tuple[QuoteRequest, MobileNumber | None]:
        """Validate everything a person typed; raise the first `InputError` with a clear message."""
        balance = parse_amount(given.balance, field="balance")
        number = parse_mobile(given.phone) if given.phone and given.phone.strip() else None
        if given.carrier:
            carrier = Carrier.parse(given.carrier)
        elif number is not None and number.allocated_carrier is not None:
            carrier = number.allocated_carrier
        elif number is not None:
            raise InvalidCarrier(
                "this segment has no known carrier; choose the carrier", key="error.carrier.unknown_segment"
            )
        else:
            raise InvalidCarrier("enter a mobile number or choose a carrier", key="error.carrier.missing")
        credit = (
            parse_amount(given.credit_limit, maximum_fen=MAX_CREDIT_LIMIT_FEN, field="credit_limit")
            if given.credit_limit and given.credit_limit.strip()
            else None
        )
        bound = Carrier.parse(given.bound_carrier) if given.bound_carrier else None
        voucher = parse_valuation(given.voucher_value, field="voucher_value") if given.voucher_value.strip() else None
        points = parse_valuation(given.points_value, field="points_value") if given.points_value.strip() else None
        try:
            first = Priority(given.priority)
        except ValueError:
            raise InputError(f"unknown priority {given.priority[:20]!r}", key="error.priority.invalid") from None
        at = self._moment(given.at)
        virtual = bool(number and number.is_virtual_operator and carrier is number.allocated_carrier)
        request = QuoteRequest(
            balance_fen=balance,
            carrier=carrier,
            at=at,
            is_virtual_operator=virtual,
            credit_limit_fen=credit,
            bound_carrier=bound,
            voucher_value_ppm=voucher,
            points_value_ppm=points,
            priorities=Priority.order_with_first(first),
        )
        return request, number

    def _moment(self, at: dt.datetime | str | None) -> dt.datetime:
        if at is None or at == "":
            return self.clock()
        if isinstance(at, str):
            text = at.strip()
            try:
                at = dt.datetime.fromisoformat(text)
            except ValueError:
                raise InvalidMoment(f"{text[:40]!r} is not a date-time like 2026-09-30T15:00:00+08:00") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=SHANGHAI)  # people mean China time
        if not 2000 <= at.year <= 2100:
            raise InvalidMoment(f"{at.year} is outside the years 2000-2100", key="error.moment.range")
        return at

    def compare(self, given: QuoteInput) -> QuoteOutcome:
        request, number = self.request_from(given)
        terms = self.terms()
        outcome = QuoteOutcome(compare(terms.catalog, request, self.calendar), number, terms)
        self.served(request)
        return outcome

    def compare_request(self, request: QuoteRequest) -> Comparison:
        """A comparison for the portal's own use (a lock re-quotes); a person shown it: `served`."""
        return compare(self.terms().catalog, request, self.calendar)

    def served(self, request: QuoteRequest) -> None:
        """A person was shown a comparison for `request` (the anonymous quote log hears of it)."""
        if self.on_quote is not None:
            self.on_quote(request)

    def batch(
        self, request: QuoteRequest, balances_fen: Sequence[int] | np.ndarray, *, catalog: Catalog | None = None
    ) -> list[BatchQuote]:
        """Every channel over many balances, on `catalog` (the terms a comparison used) or the
        current terms."""
        balances = np.asarray(balances_fen, dtype=np.int64)
        return [batch_quote(c, request, balances) for c in (catalog or self.terms().catalog).channels]
