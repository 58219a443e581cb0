"""Pricing versions: the portal's own offer and the routes' cost schedules, designed by an
analyst and published with an admin's approval (core.domain.pricing holds what a version says).

    draft      an analyst (or admin) saves a document; only its author edits it
    submitted  the author submits it with a note; one submission waits at a time
    live       an admin who is not the author approves it: it replaces the live version at once
    retired    a live version another one replaced
    declined   an admin who is not the author declined it, with a reason

A rollback is the same two steps: it submits a copy of an earlier version (`based_on`), which an
admin approves. Every step is written to the audit chain. When no version exists yet, the
shipped document (data/pricing/schedule.json) is version 1, live.

Every process reads the live version from the database: `live()` asks again after `refresh_s`
(a second by default), so an approval on one portal replica reaches the others, the workers and
the command line within that time, without a restart; in the approving process, at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from core.domain.access import NotAllowed, Principal, Role
from core.domain.calendar import SHANGHAI, WorkingDayCalendar
from core.domain.catalog import Catalog, Channel
from core.domain.notes import kept_words
from core.domain.pricing import PricingSchedule, VersionStatus, parse_document
from core.domain.pricing_simulation import (
    CurvePoint,
    OwnOfferQuoted,
    Population,
    RankedMarket,
    SimulationResult,
    curve_of,
    empirical_population,
    own_offer_quoted,
    rank_market,
    run_version,
    scaled_fee,
    synthetic_population,
)
from core.errors import InputError, PortalError
from core.persistence.fast_reads import Read, snapshot
from core.persistence.tables import PricingVersion
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog, usernames
from core.services.quote_log import QuoteLog

log = logging.getLogger(__name__)
NOTE_MAX = 500
_VERSIONS = cast(Table, PricingVersion.__table__).c  # type: ignore[attr-defined]
_LIVE: Read[tuple[int, str]] = Read(
    lambda: select_columns(_VERSIONS.number, _VERSIONS.document).where(_VERSIONS.live_slot == "live")
)
AUTHORS = frozenset({Role.ANALYST, Role.ADMIN})


class VersionConflict(PortalError):
    """The version is not in the state this step needs, or another submission waits."""

    key = "error.pricing.conflict"


class PricingUnavailable(PortalError):
    key = "error.pricing.unavailable"


class SameAuthor(NotAllowed):
    key = "error.pricing.same_author"


@dataclass(frozen=True)
class VersionView:
    id: str
    number: int
    status: VersionStatus
    note: str
    based_on: int | None
    author: str  # a user name, or "" for the shipped version
    author_id: str | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    decided_by: str
    decided_at: dt.datetime | None
    decision_note: str
    document: str


@dataclass(frozen=True)
class LivePricing:
    number: int
    schedule: PricingSchedule


@dataclass(frozen=True)
class PricingDesk:
    """What the lab opens on for one analyst or admin: the live version (parsed, and as written),
    the latest versions, the one waiting for a decision, and the caller's own draft."""

    live: LivePricing
    live_document: str
    versions: list[VersionView]  # newest first
    pending: VersionView | None  # submitted, waiting for an admin (at most one at a time)
    draft: VersionView | None  # the caller's own draft (the newest, if several)
    may_decide: bool  # the caller is an admin and not the pending version's author


@dataclass(frozen=True)
class PopulationSpec:
    """A synthetic population as the analyst sets it (no public data gives the distribution of
    stranded balances: these are assumptions to vary, not findings)."""

    size: int = 20_000
    seed: int = 0
    median_yuan: float = 150.0
    sigma: float = 1.0
    card_share: float = 0.4
    card_limit_yuan: float = 20_000.0
    #: > 0: resample the quotes served over the last this many days (the anonymous quote log)
    #: instead of drawing log-normal balances; carriers and priorities come from the log too.
    replay_days: int = 0


@dataclass(frozen=True)
class LabRun:
    """The live version and (when given) a draft on the same population, side by side, and the
    margin and win rate of the draft (else the live version) against a fee multiplier."""

    live: SimulationResult
    draft: SimulationResult | None
    curve: list[CurvePoint]
    seconds: float


MAX_POPULATION = 1_000_000
MAX_REPLAY_DAYS = 365
#: Rankings of the market kept for the lab (`PricingService._ranked`), and the largest population kept.
LAB_KEPT, LAB_KEPT_MAX_USERS = 4, 100_000
CURVE = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0)


class PricingService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        market: Callable[[], Mapping[str, Channel]],
        shipped: Path,
        *,
        calendar: WorkingDayCalendar,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        refresh_s: float = 1.0,
        quote_log: QuoteLog | None = None,
    ) -> None:
        self.quote_log = quote_log  # the anonymous quotes the lab replays (None: none kept here)
        self._engine, self._audit, self._market, self._shipped = engine, audit, market, shipped
        self._calendar = calendar
        self._clock, self._refresh_s = clock, refresh_s
        self._live: tuple[float, LivePricing] | None = None
        self._failed: tuple[float, PortalError] | None = None
        self._own_offer: tuple[LivePricing, dt.date, Channel] | None = None  # the last one quoted, and its day
        self._lab_kept: list[tuple[Any, dict[str, Channel], RankedMarket, OwnOfferQuoted, SimulationResult]] = []
        self._generation = 0  # bumped by an approval here: a read begun before it is not kept
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------

    def live(self) -> LivePricing:
        """The version that quotes now (read again after `refresh_s`). A stored version is read
        against today's market leniently (a channel added or gone since its approval does not
        stop it quoting); a failure to read it is remembered for `refresh_s` too."""
        cached, failed = self._live, self._failed
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._refresh_s:
            return cached[1]
        if failed is not None and now - failed[0] < self._refresh_s:
            raise failed[1]
        generation = self._generation
        try:
            # a plain read (no write lock): quotes ask for it inside other work, on any thread
            with snapshot(self._engine) as reader:
                found = reader.rows(_LIVE)
            number, document = found[0] if found else (None, "")
            if number is None:
                live = self._ship_first()
            elif cached is not None and cached[1].number == number:
                live = cached[1]
            else:
                live = LivePricing(number, self._stored(number, document))
        except (PortalError, SQLAlchemyError) as exc:
            error = exc if isinstance(exc, PortalError) else PricingUnavailable(f"unreadable: {type(exc).__name__}")
            self._failed = (time.monotonic(), error)
            raise error from None
        with self._lock:
            if generation == self._generation:  # no approval in this process since the read began
                self._live, self._failed = (time.monotonic(), live), None
        return live

    def _stored(self, number: int, document: str) -> PricingSchedule:
        return parse_document(document, market=self._market(), source=f"pricing version {number}", strict=False)

    def own_offer_now(self) -> tuple[int, Channel]:
        """The live version's number and its own offer as it quotes today (promotion included).
        PricingUnavailable (or the stored version's PricingError) when it cannot be read: quotes
        go on with the market alone."""
        live = self.live()
        day = self._clock().astimezone(SHANGHAI).date()
        kept = self._own_offer
        if kept is not None and kept[0] is live and kept[1] == day:  # a promotion's fee is worked out once a day
            return live.number, kept[2]
        offer = live.schedule.own_offer_on(day)
        self._own_offer = (live, day, offer)
        return live.number, offer

    def partner_fee_fen(self, channel_id: str, amount_fen: int) -> int:
        """The payout partner's fee for one transaction through `channel_id` by the live cost
        schedule: 0 for a channel it has none for, and — logged — when the pricing versions cannot
        be read (a recovery is never refused for want of an estimate of its cost)."""
        try:
            cost = self.live().schedule.costs.get(channel_id)
        except PortalError as exc:
            log.warning("partner fee unknown for %s: %s", channel_id, str(exc)[:200])
            return 0
        return 0 if cost is None else cost.partner_fee_fen(amount_fen)

    def parse(self, document: str | bytes, *, source: str = "draft") -> PricingSchedule:
        """A document checked against the market's channels (PricingError naming each field)."""
        return parse_document(document, market=self._market(), source=source)

    def versions(self, caller: Principal, limit: int = 100) -> list[VersionView]:
        _require_pricing_staff(caller)
        self._ensure_shipped()  # the shipped version exists before the first list
        with UnitOfWork(self._engine) as uow:
            query = select(PricingVersion).order_by(col(PricingVersion.number).desc()).limit(limit)
            rows = list(uow.session.exec(query).all())
            names = usernames(uow, {u for r in rows for u in (r.author_id, r.decided_by) if u})
            return [_view(r, names) for r in rows]

    def desk(self, caller: Principal) -> PricingDesk:
        """The lab's opening view for `caller` (see `PricingDesk`)."""
        live = self.live()
        versions = self.versions(caller)
        live_view = next((v for v in versions if v.number == live.number), None)
        document = live_view.document if live_view is not None else self.version(caller, live.number).document
        pending = next((v for v in versions if v.status is VersionStatus.SUBMITTED), None)
        mine = [v for v in versions if v.status is VersionStatus.DRAFT and v.author_id == caller.user_id]
        may_decide = pending is not None and caller.role is Role.ADMIN and pending.author_id != caller.user_id
        return PricingDesk(live, document, versions, pending, mine[0] if mine else None, may_decide)

    def version(self, caller: Principal, number: int) -> VersionView:
        _require_pricing_staff(caller)
        with UnitOfWork(self._engine) as uow:
            row = _by_number(uow, number)
            names = usernames(uow, {u for u in (row.author_id, row.decided_by) if u})
            return _view(row, names)

    # --- the lab ---------------------------------------------------------------------------

    def simulate(
        self,
        caller: Principal | None,
        spec: PopulationSpec,
        *,
        draft: str | None = None,
        logit_sensitivity: float | None = None,
        curve: Sequence[float] = CURVE,
        what_if: Mapping[str, float] | None = None,
    ) -> LabRun:
        """What the live version and `draft` (a document) do on `spec`'s population against the
        market's current terms, at this moment — or against the market as `what_if` changes it
        (a competitor's fee × a multiplier: "Alipay cuts its fee by a fifth" is {"alipay": 0.8}).
        `caller` None: the command line (whoever runs it holds the server's keys)."""
        if caller is not None:
            _require_pricing_staff(caller)
        started = time.perf_counter()
        market = dict(self._market())
        for channel_id, multiplier in (what_if or {}).items():
            if channel_id not in market:
                raise InputError("no such channel", key="error.pricing.what_if_channel", channel=str(channel_id)[:32])
            market[channel_id] = replace(market[channel_id], fee=scaled_fee(market[channel_id].fee, multiplier))
        live = self.live()
        drafted = self.parse(draft) if draft is not None else None
        ranked, live_own, live_run = self._ranked(spec, market, live, logit_sensitivity)
        draft_own = own_offer_quoted(ranked, drafted) if drafted is not None else None
        draft_run = run_version(ranked, draft_own) if draft_own is not None else None
        points = curve_of(ranked, draft_own or live_own, list(curve)) if curve else []
        return LabRun(live_run, draft_run, points, time.perf_counter() - started)

    def _ranked(
        self, spec: PopulationSpec, market: dict[str, Channel], live: LivePricing, logit: float | None
    ) -> tuple[RankedMarket, OwnOfferQuoted, SimulationResult]:
        """`spec`'s population, the market ranked for it now and the live version's run on it.
        Kept for the rest of the minute for the same population, market, live version and logit
        (`LAB_KEPT`): an analyst editing a draft re-runs the draft alone. A replayed population is
        drawn afresh each time (the quote log grows)."""
        at = self._clock()
        key = (spec, logit, live.number, at.replace(second=0, microsecond=0))
        keep = not spec.replay_days and spec.size <= LAB_KEPT_MAX_USERS
        if keep:
            with self._lock:
                for kept_key, kept_market, ranked, own, run in self._lab_kept:
                    if kept_key == key and kept_market == market:
                        return ranked, own, run
        population = self._replayed(spec) if spec.replay_days else _population(spec)
        catalog = Catalog(tuple(market.values()), at.date())
        ranked = rank_market(catalog, population, at=at, calendar=self._calendar, logit_sensitivity=logit)
        own = own_offer_quoted(ranked, live.schedule)
        run = run_version(ranked, own)
        if keep:
            with self._lock:
                self._lab_kept = [(key, market, ranked, own, run), *self._lab_kept[: LAB_KEPT - 1]]
        return ranked, own, run

    def _replayed(self, spec: PopulationSpec) -> Population:
        days = spec.replay_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_REPLAY_DAYS:
            raise InputError("replay days", key="error.pricing.replay_days", most=str(MAX_REPLAY_DAYS))
        _check_spec(spec)  # the same checks of size and cards
        if self.quote_log is None:
            raise InputError("no quote log here", key="error.pricing.no_quote_log", days=str(days))
        balances, carriers, priorities = self.quote_log.since(self._clock() - dt.timedelta(days=days))
        if not balances:
            raise InputError("no quotes logged", key="error.pricing.no_quote_log", days=str(days))
        return empirical_population(
            balances,
            carriers,
            priorities,
            spec.size,
            int(spec.seed) % 2**32,
            card_share=spec.card_share,
            card_limit_yuan=spec.card_limit_yuan,
        )

    # --- the workflow ----------------------------------------------------------------------

    def save_draft(self, caller: Principal, document: str, note: str = "", *, number: int | None = None) -> VersionView:
        """A new draft (`number` None) or the author's own draft changed. The document is
        checked whole first: a bad one changes nothing."""
        _require_pricing_staff(caller)
        self.parse(document)
        note = _note(note, required=False)
        self._ensure_shipped()  # the shipped version is number 1 before any other
        with UnitOfWork(self._engine) as uow:
            uow.lock("pricing-numbers")  # two new versions at once: each its own number
            if number is None:
                row = PricingVersion(
                    number=_next_number(uow), status=VersionStatus.DRAFT.value, document=document, note=note
                )
                row.author_id, row.created_at = caller.user_id, self._clock()
            else:
                row = _by_number(uow, number, for_update=True)
                if row.author_id != caller.user_id:
                    raise NotAllowed("only the author edits a draft", key="error.pricing.not_author")
                _require_status(row, VersionStatus.DRAFT)
                row.document, row.note = document, note
            uow.session.add(row)
            uow.session.flush()
            detail = {"note": note, "sha256": _digest(document)}
            self._audit.append(uow, caller.user_id, "pricing_draft", str(row.number), detail)
            uow.commit()
            return _view(row, usernames(uow, {caller.user_id}))

    def submit(self, caller: Principal, number: int, note: str) -> VersionView:
        _require_pricing_staff(caller)
        note = _note(note, required=True)
        with UnitOfWork(self._engine) as uow:
            row = _by_number(uow, number, for_update=True)
            if row.author_id != caller.user_id:
                raise NotAllowed("only the author submits a draft", key="error.pricing.not_author")
            _require_status(row, VersionStatus.DRAFT)
            self.parse(row.document, source=f"pricing version {number}")  # the market may have moved
            row.status, row.note, row.submitted_at = VersionStatus.SUBMITTED.value, note, self._clock()
            row.pending_slot = "submitted"
            self._flush_pending(uow, row)
            detail = {"note": note, "sha256": _digest(row.document)}
            self._audit.append(uow, caller.user_id, "pricing_submit", str(number), detail)
            uow.commit()
            return _view(row, usernames(uow, {caller.user_id}))

    def rollback(self, caller: Principal, to_number: int, note: str) -> VersionView:
        """Submit a copy of an earlier live version; an admin approves it like any other."""
        _require_pricing_staff(caller)
        note = _note(note, required=True)
        self._ensure_shipped()
        with UnitOfWork(self._engine) as uow:
            earlier = _by_number(uow, to_number)
            if earlier.status != VersionStatus.RETIRED.value:  # live now: nothing to roll back to
                raise VersionConflict(
                    "only a version that was live before can be rolled back to", key="error.pricing.rollback_target"
                )
            self.parse(earlier.document, source=f"pricing version {to_number}")
            uow.lock("pricing-numbers")
            now = self._clock()
            row = PricingVersion(
                number=_next_number(uow),
                status=VersionStatus.SUBMITTED.value,
                document=earlier.document,
                note=note,
                based_on=to_number,
                author_id=caller.user_id,
                created_at=now,
                submitted_at=now,
                pending_slot="submitted",
            )
            uow.session.add(row)
            self._flush_pending(uow, row)
            detail = {"note": note, "based_on": str(to_number), "sha256": _digest(earlier.document)}
            self._audit.append(uow, caller.user_id, "pricing_rollback", str(row.number), detail)
            uow.commit()
            return _view(row, usernames(uow, {caller.user_id}))

    def approve(self, caller: Principal, number: int, note: str = "") -> VersionView:
        """Make a submitted version live (an admin who is not its author); the live one retires."""
        return self._decide(caller, number, note, approve=True)

    def decline(self, caller: Principal, number: int, note: str) -> VersionView:
        """Decline a submitted version with a reason (an admin who is not its author)."""
        return self._decide(caller, number, note, approve=False)

    def _decide(self, caller: Principal, number: int, note: str, *, approve: bool) -> VersionView:
        if caller.role is not Role.ADMIN:
            raise NotAllowed("only an admin approves or declines pricing", key="error.pricing.admin_only")
        note = _note(note, required=not approve)
        self._ensure_shipped()
        with UnitOfWork(self._engine) as uow:
            uow.lock("pricing-live")  # one decision at a time: the live slot changes hands once
            row = _by_number(uow, number, for_update=True)
            if row.author_id == caller.user_id:
                raise SameAuthor("the author cannot approve or decline their own version")
            _require_status(row, VersionStatus.SUBMITTED)
            now = self._clock()
            row.pending_slot, row.decided_by, row.decided_at, row.decision_note = None, caller.user_id, now, note
            if approve:
                self.parse(row.document, source=f"pricing version {number}")
                live = uow.session.exec(select(PricingVersion).where(PricingVersion.live_slot == "live")).first()
                if live is not None:
                    live.status, live.live_slot = VersionStatus.RETIRED.value, None
                    uow.session.add(live)
                    uow.session.flush()
                row.status, row.live_slot = VersionStatus.LIVE.value, "live"
            else:
                row.status = VersionStatus.DECLINED.value
            uow.session.add(row)
            uow.session.flush()
            action = "pricing_approve" if approve else "pricing_decline"
            detail = {"note": note, "sha256": _digest(row.document)}  # what exactly was decided on
            self._audit.append(uow, caller.user_id, action, str(number), detail)
            uow.commit()
            view = _view(row, usernames(uow, {u for u in (row.author_id, caller.user_id) if u}))
        if approve:
            with self._lock:  # this process quotes the new version at once
                self._generation += 1
                self._live = self._failed = None
        return view

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _flush_pending(uow: UnitOfWork, row: PricingVersion) -> None:
        try:
            uow.session.flush()
        except IntegrityError:
            raise VersionConflict(
                "another version already waits for approval", key="error.pricing.pending_exists"
            ) from None

    def _ensure_shipped(self) -> None:
        """Version 1 exists (written from the shipped file the first time), whatever the market."""
        with snapshot(self._engine) as reader:
            if reader.rows(_LIVE):
                return
        self._ship_first()

    def _ship_first(self) -> LivePricing:
        """Version 1, live: the shipped document (two processes at once: one writes it)."""
        with self._lock:
            document = self._shipped.read_text(encoding="utf-8")
            schedule = parse_document(document, market=self._market(), source=self._shipped.name, strict=False)
            try:
                with UnitOfWork(self._engine) as uow:
                    row = PricingVersion(
                        number=1,
                        status=VersionStatus.LIVE.value,
                        document=document,
                        note="shipped with the portal",
                        live_slot="live",
                        created_at=self._clock(),
                    )
                    uow.session.add(row)  # no one's act: the version says it was shipped, and by whom (no one)
                    uow.commit()
            except IntegrityError:
                pass  # another process wrote it first; it says the same
            with UnitOfWork(self._engine) as uow:
                row = uow.session.exec(select(PricingVersion).where(PricingVersion.live_slot == "live")).one()
                if row.document == document:
                    return LivePricing(row.number, schedule)
                return LivePricing(row.number, self._stored(row.number, row.document))


def _population(spec: PopulationSpec) -> Population:
    _check_spec(spec)
    return synthetic_population(
        spec.size,
        int(spec.seed) % 2**32,
        median_yuan=spec.median_yuan,
        sigma=spec.sigma,
        card_share=spec.card_share,
        card_limit_yuan=spec.card_limit_yuan,
    )


def _check_spec(spec: PopulationSpec) -> None:
    """The population's size and figures, whatever it is drawn from."""
    size = spec.size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POPULATION:
        raise InputError("population size", key="error.pricing.population_size", most=f"{MAX_POPULATION:,}")
    figures = (spec.median_yuan, spec.sigma, spec.card_share, spec.card_limit_yuan)
    if not all(isinstance(f, (int, float)) and math.isfinite(f) for f in figures):
        raise InputError("population figures", key="error.pricing.population")
    if not (0 < spec.median_yuan <= 100_000 and 0 <= spec.sigma <= 5 and 0 <= spec.card_share <= 1):
        raise InputError("population figures", key="error.pricing.population")
    if not 0 <= spec.card_limit_yuan <= 1_000_000:
        raise InputError("population figures", key="error.pricing.population")


def _require_pricing_staff(caller: Principal) -> None:
    if caller.role not in AUTHORS:
        raise NotAllowed("only analysts and admins work on pricing", key="error.pricing.role")


def _require_status(row: PricingVersion, status: VersionStatus) -> None:
    if row.status != status.value:
        raise VersionConflict(
            f"version {row.number} is {row.status}, not {status.value}",
            key="error.pricing.wrong_status",
            number=str(row.number),
            status=row.status,
        )


def _by_number(uow: UnitOfWork, number: int, *, for_update: bool = False) -> PricingVersion:
    """The version, locked against a concurrent change until this transaction ends when it is
    to be changed (PostgreSQL; a SQLite writer holds the whole database already)."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise InputError("a version number", key="error.pricing.no_version", number=str(number)[:12])
    query = select(PricingVersion).where(PricingVersion.number == number)
    row = uow.session.exec(query.with_for_update() if for_update else query).first()
    if row is None:
        raise InputError("no such version", key="error.pricing.no_version", number=str(number))
    return row


def _next_number(uow: UnitOfWork) -> int:
    last = uow.session.exec(select(PricingVersion.number).order_by(col(PricingVersion.number).desc()).limit(1)).first()
    return (last or 0) + 1


def _digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _note(note: str, *, required: bool) -> str:
    note = kept_words(note or "")
    if required and not note:
        raise InputError("a note is required", key="error.pricing.note_required")
    if len(note) > NOTE_MAX:
        raise InputError("a note is one line of at most 500 characters", key="error.pricing.note")
    return note


def _view(row: PricingVersion, names: Mapping[str, str]) -> VersionView:
    return VersionView(
        id=row.id,
        number=row.number,
        status=VersionStatus(row.status),
        note=row.note,
        based_on=row.based_on,
        author=names.get(row.author_id or "", ""),
        author_id=row.author_id,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        decided_by=names.get(row.decided_by or "", ""),
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        document=row.document,
    )


__all__ = ["LabRun", "LivePricing", "PopulationSpec", "PricingService", "SameAuthor", "VersionConflict", "VersionView"]
