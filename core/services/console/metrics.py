"""The operations metrics of the console (analysts, operators and admins read them).

Every figure is over the recoveries *created* in a period of Asia/Shanghai business days (first
and last day included). A recovery is a group of linked transactions (`Recovery.group_id`),
submitted together (one `created_at`): it is counted once and its amounts sum all its parts.
Everything is counted by the database (GROUP BY / COUNT / SUM / CASE), never by loading
recovery rows:

    volume           recoveries created, and the balance they asked to debit (fen)
    fees             fees of the transactions that were paid (fen)
    payout success   paid / ended, among recoveries that reached a payout and ended: a recovery
                     is paid when every transaction that reached a payout was paid, refunded
                     when any of them was refunded
    refund rate      recoveries with a refunded transaction / volume
    review rate      recoveries the risk rules sent to review (a "review" transition) / volume
    reject rate      recoveries refused (by the risk rules or an operator) / volume
    payout time      per channel, p50 and p95 seconds from the debit confirmed to the last payout
                     confirmed, against the channel's promise from the catalog (`speed`), and how
                     many arrived within it: paid by `core.domain.stuck.promised_by` counted from
                     the first debit started — the rule the stuck recoveries are found by

and, as they stand now whatever the period: the review queue (recoveries in review, the oldest
one's age) and the stuck recoveries — as many as `StuckService.stuck` lists (under way, and past
the channel's promise or waiting on a partner call whose outcome is unknown), counted here
without loading them. Rates are fractions (0..1), None when there is nothing to divide by.
Breakdowns: by day (Shanghai date), by channel, by carrier.

The promise of a recovery depends on its channel, its amount (a daily limit spreads it over more
days) and when its payout started; rather than working it out recovery by recovery, the queries
reduce each recovery to the few facts `promised_by` reads (`_Promises`) and count the recoveries
that share them, so the promise is worked out once per group of alike recoveries (hundreds, not
tens of thousands). A recovery is on time when its last payout came by the promise counted from
its first debit started (the stuck list applies the rule to each transaction while under way:
for transactions started on the same day the two are the same).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    Time,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel

from core.domain.access import STAFF, NotAllowed, Principal
from core.domain.calendar import SHANGHAI, WorkingDayCalendar
from core.domain.catalog import Catalog, Channel, Instant, TPlus, WorkingDays
from core.domain.quotes import days_for, split, transaction_size
from core.domain.recovery import TERMINAL, RecoveryEvent, RecoveryState
from core.domain.stuck import INSTANT_GRACE, promised_by, stuck_reason
from core.errors import InputError
from core.persistence.tables import OutboxMessage, Recovery, RecoveryTransition
from core.services.console.stuck import UNDER_WAY

S = RecoveryState
E = RecoveryEvent
#: The longest period one request reads (a year and a day: a leap year's worth of days).
MAX_PERIOD_DAYS = 366
#: How long an instant channel may take and still count as instant (as its users understand it).
INSTANT_GRACE_S = INSTANT_GRACE.total_seconds()

# The tables themselves (SQLAlchemy Core, for the aggregates), as the models declare them.
_R = SQLModel.metadata.tables[str(Recovery.__tablename__)]
_T = SQLModel.metadata.tables[str(RecoveryTransition.__tablename__)]
_O = SQLModel.metadata.tables[str(OutboxMessage.__tablename__)]
_AT = _R.c.created_at.type  # aware UTC datetimes in and out, on both databases
#: States of a transaction that reached a payout (asked for, paid, or refunded after failing).
_PAYOUT = tuple(s.value for s in (S.PAYING, S.PAID, S.REFUNDING, S.REFUNDED))
_OPEN = tuple(s.value for s in S if s not in TERMINAL)
_DAY_MS = 86_400_000
_ANY_MOMENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_KEPT_DEADLINES = 100_000  # a few years of days for each speed the catalog has had, several times over


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Figures:
    """The figures of one set of recoveries (the period, one day, one channel or one carrier)."""

    count: int = 0
    amount_fen: int = 0
    fees_fen: int = 0
    payout_ended: int = 0  # reached a payout, and every transaction has ended
    paid: int = 0
    refunded: int = 0
    reviewed: int = 0
    rejected: int = 0

    @property
    def success_rate(self) -> float | None:
        return _rate(self.paid, self.payout_ended)

    @property
    def refund_rate(self) -> float | None:
        return _rate(self.refunded, self.count)

    @property
    def review_rate(self) -> float | None:
        return _rate(self.reviewed, self.count)

    @property
    def reject_rate(self) -> float | None:
        return _rate(self.rejected, self.count)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "amount_fen": self.amount_fen,
            "fees_fen": self.fees_fen,
            "payout_ended": self.payout_ended,
            "paid": self.paid,
            "refunded": self.refunded,
            "reviewed": self.reviewed,
            "rejected": self.rejected,
            "success_rate": self.success_rate,
            "refund_rate": self.refund_rate,
            "review_rate": self.review_rate,
            "reject_rate": self.reject_rate,
        }


@dataclass(frozen=True)
class Promise:
    """A channel's speed as the catalog states it: `instant`, `working_days` (min..max) or
    `t_plus` (days, after a daily cut-off). `nominal_s` is the longest wait it allows counted in
    plain days (working days and cut-offs aside), for drawing it beside the measured times."""

    rule: str
    min_days: int = 0
    max_days: int = 0
    cutoff: str = ""  # HH:MM, Asia/Shanghai (t_plus only)
    nominal_s: float = INSTANT_GRACE_S

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "min_days": self.min_days,
            "max_days": self.max_days,
            "cutoff": self.cutoff or None,
            "nominal_s": self.nominal_s,
        }


def promise_of(channel: Channel) -> Promise:
    speed = channel.speed
    if isinstance(speed, Instant):
        return Promise("instant")
    if isinstance(speed, WorkingDays):
        return Promise("working_days", speed.minimum, speed.maximum, nominal_s=speed.maximum * 86_400.0)
    assert isinstance(speed, TPlus)
    return Promise("t_plus", speed.days, speed.days, speed.cutoff.strftime("%H:%M"), speed.days * 86_400.0)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between the closest ranks (as
    numpy's default and SQL's percentile_cont); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class PayoutTimes:
    """How long one channel took to pay, against what it promises (None: not in the catalog)."""

    channel: str
    measured: int  # recoveries paid
    p50_s: float | None
    p95_s: float | None
    promise: Promise | None
    on_time: int  # of `measured`, paid within the promise

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.on_time, self.measured) if self.promise is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "measured": self.measured,
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "promise": self.promise.as_dict() if self.promise is not None else None,
            "on_time": self.on_time,
            "on_time_rate": self.on_time_rate,
        }


@dataclass(frozen=True)
class Metrics:
    start: dt.date
    end: dt.date
    as_of: dt.datetime
    total: Figures
    by_day: Mapping[dt.date, Figures]  # every day of the period, in order (empty days too)
    by_channel: Mapping[str, Figures]
    by_carrier: Mapping[str, Figures]  # "" for a recovery whose number's carrier was not asked
    payout_times: tuple[PayoutTimes, ...]
    queue_size: int
    oldest_case_age_s: float | None
    stuck: int

    def as_dict(self) -> dict[str, Any]:
        """The figures as `ops metrics --json` prints them: counts, amounts in fen, rates as
        fractions, times in seconds, dates as ISO text."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "as_of": self.as_of.isoformat(),
            **self.total.as_dict(),
            "queue_size": self.queue_size,
            "oldest_case_age_s": self.oldest_case_age_s,
            "stuck": self.stuck,
            "payout_times": [p.as_dict() for p in self.payout_times],
            "by_day": {day.isoformat(): f.as_dict() for day, f in self.by_day.items()},
            "by_channel": {key: f.as_dict() for key, f in self.by_channel.items()},
            "by_carrier": {key: f.as_dict() for key, f in self.by_carrier.items()},
        }


def require_staff(caller: Principal) -> None:
    if caller.role not in STAFF:
        raise NotAllowed("only staff read the operations metrics")


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first moment, moment after the last) of Shanghai business days start..end, checked."""
    if end < start:
        raise InputError("the period ends before it starts", key="error.metrics.period")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InputError(
            f"a period is at most {MAX_PERIOD_DAYS} days", key="error.metrics.too_long", days=str(MAX_PERIOD_DAYS)
        )
    first = dt.datetime.combine(start, dt.time(0), tzinfo=SHANGHAI)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=SHANGHAI)
    return first.astimezone(dt.UTC), after.astimezone(dt.UTC)


class MetricsService:
    def __init__(
        self,
        engine: Engine,
        catalog_source: Callable[[], Catalog],
        calendar: WorkingDayCalendar | None = None,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._catalog = catalog_source
        self._calendar = calendar or WorkingDayCalendar()
        self._clock = clock
        self._deadlines: dict[tuple[Any, ...], dt.datetime] = {}  # `promised_by`'s answers, kept between calls

    def metrics(self, caller: Principal, start: dt.date, end: dt.date) -> Metrics:
        """The figures of the recoveries created from `start` to `end` (Shanghai days, both
        included), and the queue and stuck recoveries as they stand now."""
        require_staff(caller)
        first, after = period_bounds(start, end)
        now = self._clock()
        dialect = self._engine.dialect.name
        if len(self._deadlines) > _KEPT_DEADLINES:
            self._deadlines.clear()
        promises = _Promises(self._catalog().by_id(), self._calendar, dialect, self._deadlines)
        with self._engine.connect() as conn:
            slices = _slices(conn, first, after, dialect)
            payouts = conn.execute(_payout_query(first, after, promises)).all()
            queue_size, oldest = _queue(conn)
            stuck = conn.execute(_stuck_query(now, promises)).all()
        days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        by_day = {day: slices.get(("day", day.isoformat()), Figures()) for day in days}
        by_channel = {key: f for (dim, key), f in sorted(slices.items()) if dim == "channel"}
        by_carrier = {key: f for (dim, key), f in sorted(slices.items()) if dim == "carrier"}
        return Metrics(
            start=start,
            end=end,
            as_of=now,
            total=slices.get(("total", ""), Figures()),
            by_day=by_day,
            by_channel=by_channel,
            by_carrier=by_carrier,
            payout_times=_payout_times(promises, by_channel, payouts),
            queue_size=queue_size,
            oldest_case_age_s=(now - oldest).total_seconds() if oldest is not None else None,
            stuck=_stuck_count(promises, stuck),
        )


# --- the promise, once per group of alike recoveries ------------------------------------------


class _Promises:
    """The catalog's promises, for queries that count recoveries against them.

    `promised_by` reads little of a recovery: its channel, the days its amount needs (a daily
    limit), and of the moment its payout started, for an instant channel nothing (the promise is
    that moment plus the grace and any extra days), for the others only the Shanghai date and,
    for a T+n channel, whether it was at or after the cut-off (the promise is then the end of a
    Shanghai day). So each recovery is reduced in SQL to those facts and to the same of the
    moment it is measured at (paid, or now): the Shanghai date, or for an instant channel the
    whole days past the grace (`keys`). Recoveries that share them are all late or all not:
    `moments` decides for the lot with one representative of them (tests/integration/
    test_metrics.py holds this against `promised_by` around cut-offs, midnights and holidays).
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        calendar: WorkingDayCalendar,
        dialect: str,
        deadlines: dict[tuple[Any, ...], dt.datetime] | None = None,
    ) -> None:
        self.channels = channels
        self._calendar = calendar
        self.dialect = dialect
        self._instant = [cid for cid, c in channels.items() if isinstance(c.speed, Instant)]
        self._dated = [cid for cid, c in channels.items() if not isinstance(c.speed, Instant)]
        self._cutoffs: dict[dt.time, list[str]] = {}
        for cid, c in channels.items():
            if isinstance(c.speed, TPlus):
                self._cutoffs.setdefault(c.speed.cutoff, []).append(cid)
        self._limited = [cid for cid, c in channels.items() if c.limits.per_day_fen is not None]
        self._deadlines = {} if deadlines is None else deadlines  # by speed, days and start
        self._days: dict[tuple[str, int], int] = {}  # by channel and amount

    def keys(
        self, channel: ColumnElement[Any], amount: ColumnElement[Any], started: Any, ended: Any
    ) -> list[ColumnElement[Any]]:
        """amount_key, start_day, start_late, end_day, over_days of a recovery of `amount` fen
        whose payout started at `started`, measured at `ended` (NULL where they do not apply;
        the amount only for a channel with a daily limit, the only ones it matters to)."""
        day = lambda moment: _shanghai_day(moment, self.dialect)  # noqa: E731
        amount_key = case((channel.in_(self._limited), amount), else_=0) if self._limited else literal(0, Integer)
        late_whens = [
            (channel.in_(ids), _flag(_at_or_after(started, cutoff, self.dialect)))
            for cutoff, ids in self._cutoffs.items()
        ]
        start_late = case(*late_whens, else_=0) if late_whens else literal(0, Integer)
        excess = _ms_between(started, ended, self.dialect) - int(INSTANT_GRACE.total_seconds() * 1000)
        over_days = case((excess <= 0, 0), else_=(excess - 1) // _DAY_MS + 1)
        return [
            amount_key.label("amount_key"),
            self._when(channel, self._dated, day(started)).label("start_day"),
            start_late.label("start_late"),
            self._when(channel, self._dated, day(ended)).label("end_day"),
            self._when(channel, self._instant, over_days).label("over_days"),
        ]

    @staticmethod
    def _when(channel: ColumnElement[Any], ids: list[str], value: ColumnElement[Any]) -> ColumnElement[Any]:
        return case((channel.in_(ids), value), else_=null()) if ids else null()

    def moments(self, channel: Channel, row: Row[Any]) -> tuple[dt.datetime, dt.datetime]:
        """(measured at, promised by) for the recoveries of one row of `keys`: a representative
        of them, which is late exactly when they all are (`promised_by` as above; worked out
        once per speed, days and start, and kept by the service)."""
        days = self._days.get((channel.id, row.amount_key))
        if days is None:
            days = days_for(split(row.amount_key, transaction_size(channel, None), 1), channel.limits.per_day_fen)
            self._days[(channel.id, row.amount_key)] = days
        if isinstance(channel.speed, Instant):
            started = _ANY_MOMENT  # only the difference counts
            ended = started + INSTANT_GRACE + dt.timedelta(days=row.over_days)
            key: tuple[Any, ...] = (channel.speed, days, None, 0)
        else:
            # measured some time that day: after a deadline (a Shanghai midnight) unless the day is before it
            ended = dt.datetime.combine(dt.date.fromisoformat(row.end_day) + dt.timedelta(days=1), dt.time(0), SHANGHAI)
            key = (channel.speed, days, row.start_day, row.start_late)
            cutoff = channel.speed.cutoff if isinstance(channel.speed, TPlus) and row.start_late else dt.time(0)
            started = dt.datetime.combine(dt.date.fromisoformat(row.start_day), cutoff, tzinfo=SHANGHAI)
        if key not in self._deadlines:
            self._deadlines[key] = promised_by(channel, self._calendar, started, days)
        return ended, self._deadlines[key]


def _payout_times(
    promises: _Promises, by_channel: Mapping[str, Figures], rows: Sequence[Row[Any]]
) -> tuple[PayoutTimes, ...]:
    """Per channel that had recoveries in the period, in the catalog's order (channels no
    longer in the catalog last, with no promise)."""
    channels = promises.channels
    measured: dict[str, int] = dict.fromkeys(by_channel, 0)
    on_time: dict[str, int] = dict.fromkeys(by_channel, 0)
    durations: dict[str, list[int]] = {key: [] for key in by_channel}
    quantiles: dict[str, tuple[float | None, float | None]] = {}
    for row in rows:
        cid = row.channel
        measured[cid] = measured.get(cid, 0) + row.n
        channel = channels.get(cid)
        if channel is not None:
            paid_at, deadline = promises.moments(channel, row)
            on_time[cid] = on_time.get(cid, 0) + (row.n if paid_at <= deadline else 0)
        if "durations" in row._fields:  # SQLite: the bucket's milliseconds, as a JSON array
            durations.setdefault(cid, []).extend(json.loads(row.durations))
        else:  # PostgreSQL: the channel's own percentiles
            quantiles[cid] = (row.p50_ms, row.p95_ms)

    def seconds(ms: float | None) -> float | None:
        return ms / 1000 if ms is not None else None

    for cid, values in durations.items():
        quantiles.setdefault(cid, (percentile(values, 50), percentile(values, 95)))
    order = {cid: i for i, cid in enumerate(channels)}
    return tuple(
        PayoutTimes(
            channel=cid,
            measured=n,
            p50_s=seconds(quantiles.get(cid, (None, None))[0]),
            p95_s=seconds(quantiles.get(cid, (None, None))[1]),
            promise=promise_of(channels[cid]) if cid in channels else None,
            on_time=on_time.get(cid, 0),
        )
        for cid, n in sorted(measured.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    )


def _stuck_count(promises: _Promises, rows: Sequence[Row[Any]]) -> int:
    """Recoveries stuck now, as `StuckService.stuck` finds them (channels in the catalog only)."""
    count = 0
    for row in rows:
        channel = promises.channels.get(row.channel)
        if channel is not None:
            now, deadline = promises.moments(channel, row)
            count += row.n if stuck_reason(now, deadline, row.unanswered, row.unanswered > 0) else 0
    return count


# --- the queries ------------------------------------------------------------------------------


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _shanghai_day(moment: Any, dialect: str) -> ColumnElement[str]:
    """The Asia/Shanghai date of a stored UTC moment, as YYYY-MM-DD text."""
    if dialect == "postgresql":
        return cast(cast(func.timezone("Asia/Shanghai", moment), Date), String)
    return cast(func.date(moment, "+8 hours"), String)  # SQLite keeps UTC as text; China has no DST


def _at_or_after(moment: Any, cutoff: dt.time, dialect: str) -> ColumnElement[bool]:
    """Whether a stored UTC moment is at or after `cutoff` (Asia/Shanghai) on its day."""
    if dialect == "postgresql":
        return cast(func.timezone("Asia/Shanghai", moment), Time) >= literal(cutoff, Time)
    return func.time(moment, "+8 hours") >= literal(cutoff.strftime("%H:%M:%S"), String)  # HH:MM:SS text


def _ms_between(first: Any, last: Any, dialect: str) -> ColumnElement[int]:
    """Whole milliseconds from `first` to `last`."""
    if dialect == "postgresql":
        return cast(func.round(func.date_part("epoch", last - first) * 1000), BigInteger)  # double, not numeric
    return cast(func.round((func.julianday(last) - func.julianday(first)) * 86_400_000.0), Integer)


def _few(condition: ColumnElement[bool], dialect: str) -> ColumnElement[bool]:
    """`condition`, true of few rows: SQLite's planner, which knows only how many rows a state
    has on average, would otherwise scan the whole table rather than look the few up."""
    return func.likelihood(condition, literal_column("0.001")) if dialect == "sqlite" else condition  # a constant


def _group_amount(group_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """The debit of all of a recovery's transactions (a correlated subquery: `_Promises.keys`
    reads it only for a channel with a daily limit)."""
    siblings = _R.alias("siblings")
    return select(func.sum(siblings.c.debit_fen)).where(siblings.c.group_id == group_id).scalar_subquery()


def _in_period(first: dt.datetime, after: dt.datetime) -> ColumnElement[bool]:
    """The transactions of the recoveries created in the period: all of a recovery's parts are
    created together, so a range of `ix_recoveries_period`, in (created_at, group_id) order."""
    return and_(_R.c.created_at >= first, _R.c.created_at < after)


def _slices(conn: Connection, first: dt.datetime, after: dt.datetime, dialect: str) -> dict[tuple[str, str], Figures]:
    """One query: each recovery's figures (grouped by created_at, group_id: the index's order,
    no sorting), added up per day, channel and carrier, then those few rows added up for the
    whole period, per day, per channel and per carrier (UNION ALL of the four, keyed by
    dimension)."""
    reviewed_ids = select(_T.c.recovery_id).where(_T.c.event == E.REVIEW.value, _T.c.at >= first)
    state = _R.c.state
    groups = (
        select(
            _R.c.created_at,
            func.min(_R.c.channel_id).label("channel"),
            func.min(_R.c.carrier).label("carrier"),
            func.sum(_R.c.debit_fen).label("amount"),
            func.sum(case((state == S.PAID.value, _R.c.fee_fen), else_=0)).label("fees"),
            func.sum(_flag(state.in_(_PAYOUT))).label("payout_parts"),
            func.sum(_flag(state == S.REFUNDED.value)).label("refunded_parts"),
            func.sum(_flag(state.in_(_OPEN))).label("open_parts"),
            func.max(_flag(state == S.REJECTED.value)).label("rejected"),
            func.max(_flag(_R.c.id.in_(reviewed_ids))).label("reviewed"),
        )
        .where(_in_period(first, after))
        .group_by(_R.c.created_at, _R.c.group_id)
        .subquery("period_recoveries")
    )
    g = groups.c
    ended = and_(g.payout_parts > 0, g.open_parts == 0)
    day = _shanghai_day(g.created_at, dialect).label("day")
    fine = (
        select(
            day,
            g.channel,
            g.carrier,
            func.count().label("recoveries"),
            func.sum(g.amount).label("amount"),
            func.sum(g.fees).label("fees"),
            func.sum(_flag(ended)).label("ended"),
            func.sum(_flag(and_(ended, g.refunded_parts == 0))).label("paid"),
            func.sum(_flag(g.refunded_parts > 0)).label("refunded"),
            func.sum(g.reviewed).label("reviewed"),
            func.sum(g.rejected).label("rejected"),
        )
        .group_by(day, g.channel, g.carrier)
        .cte("fine")
    )
    f = fine.c
    figures = [
        func.sum(column)
        for column in (f.recoveries, f.amount, f.fees, f.ended, f.paid, f.refunded, f.reviewed, f.rejected)
    ]

    def by(dimension: str, key: ColumnElement[Any] | None) -> Any:
        label = literal(dimension, String).label("dimension")
        if key is None:
            return select(label, literal("", String).label("key"), *figures)
        keyed = cast(key, String).label("key")
        return select(label, keyed, *figures).group_by(key)

    query = union_all(by("total", None), by("day", f.day), by("channel", f.channel), by("carrier", f.carrier))
    out = {}
    for row in conn.execute(query):
        if row[2]:  # PostgreSQL's SUM of integers is a numeric; an empty period sums to NULL
            out[(row[0], row[1])] = Figures(*(int(v) for v in row[2:]))
    return out


def _payout_query(first: dt.datetime, after: dt.datetime, promises: _Promises) -> Any:
    """The recoveries of the period that were paid, counted per channel and per `_Promises`
    key, with how long they took: from the first debit confirmed to the last payout confirmed
    (whole milliseconds; the promise counts from the first debit started). The moments come
    from `ix_recovery_transitions_part_event`, one look-up per transaction. The times: on
    SQLite each row's as a JSON array (Python takes the percentiles), on PostgreSQL the
    channel's percentiles (percentile_cont)."""
    event, at = _T.c.event, _T.c.at
    moments = (E.START_DEBIT.value, E.DEBIT_CONFIRMED.value, E.PAYOUT_CONFIRMED.value)
    steps = _R.join(_T, and_(_T.c.recovery_id == _R.c.id, event.in_(moments), at >= first))
    paid = (
        select(
            _R.c.group_id,
            func.min(_R.c.channel_id).label("channel"),
            func.coalesce(func.min(case((event == E.START_DEBIT.value, at))), func.min(_R.c.created_at)).label(
                "started"
            ),
            func.min(case((event == E.DEBIT_CONFIRMED.value, at))).label("confirmed"),
            func.max(case((event == E.PAYOUT_CONFIRMED.value, at))).label("paid"),
        )
        .select_from(steps)
        .where(_in_period(first, after), _R.c.state.in_(_PAYOUT))
        .group_by(_R.c.created_at, _R.c.group_id)
        .having(func.max(_flag(_R.c.state == S.PAID.value)) == 1)
        .cte("paid_recoveries")
    )
    p = paid.c
    keyed = select(
        p.channel,
        *promises.keys(p.channel, _group_amount(p.group_id), p.started, p.paid),
        _ms_between(func.coalesce(p.confirmed, p.started), p.paid, promises.dialect).label("ms"),
    ).cte("keyed")
    k = keyed.c
    key = (k.channel, k.amount_key, k.start_day, k.start_late, k.end_day, k.over_days)
    if promises.dialect != "postgresql":
        return select(*key, func.count().label("n"), func.json_group_array(k.ms).label("durations")).group_by(*key)
    buckets = select(*key, func.count().label("n")).group_by(*key).subquery("buckets")
    quantiles = (
        select(
            k.channel,
            func.percentile_cont(0.5).within_group(k.ms).label("p50_ms"),
            func.percentile_cont(0.95).within_group(k.ms).label("p95_ms"),
        )
        .group_by(k.channel)
        .subquery("quantiles")
    )
    return select(buckets, quantiles.c.p50_ms, quantiles.c.p95_ms).join(
        quantiles, quantiles.c.channel == buckets.c.channel
    )


def _stuck_query(now: dt.datetime, promises: _Promises) -> Any:
    """The recoveries under way now (`UNDER_WAY`, as `StuckService`), counted per channel,
    `_Promises` key measured at `now` (from their earliest transaction's debit started, else
    their creation) and `unanswered`: the most tries of an open partner call whose last try had
    no definite answer (0 if none)."""
    # correlated look-ups, not joins: the work grows with the recoveries under way, not the history
    debit_started = (
        select(func.min(_T.c.at))
        .where(_T.c.recovery_id == _R.c.id, _T.c.event == E.START_DEBIT.value)
        .scalar_subquery()
    )
    tries = (
        select(func.max(case((_O.c.last_error != "", _O.c.attempts), else_=0)))
        .where(_O.c.recovery_id == _R.c.id, _O.c.done_at.is_(None))
        .scalar_subquery()
    )
    under_way = (
        select(
            _R.c.group_id,
            func.min(_R.c.channel_id).label("channel"),
            func.min(func.coalesce(debit_started, _R.c.created_at)).label("started"),
            func.coalesce(func.max(tries), 0).label("unanswered"),
        )
        .where(_few(_R.c.state.in_([s.value for s in UNDER_WAY]), promises.dialect))
        .group_by(_R.c.group_id)
        .subquery("under_way")
    )
    u = under_way.c
    keyed = select(
        u.channel, *promises.keys(u.channel, _group_amount(u.group_id), u.started, literal(now, _AT)), u.unanswered
    ).subquery("keyed")
    k = keyed.c
    key = (k.channel, k.amount_key, k.start_day, k.start_late, k.end_day, k.over_days, k.unanswered)
    return select(*key, func.count().label("n")).group_by(*key)


def _queue(conn: Connection) -> tuple[int, dt.datetime | None]:
    """Recoveries in review now, and when the oldest of them was created."""
    row = conn.execute(
        select(func.count(func.distinct(_R.c.group_id)), type_coerce(func.min(_R.c.created_at), _AT)).where(
            _R.c.state == S.REVIEW.value
        )
    ).one()
    return int(row[0]), row[1]
