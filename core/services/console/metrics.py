"""The operations metrics of the console (analysts, operators and admins read them).

Every figure is over the recoveries *created* in a period of Asia/Shanghai business days (first
and last day included). A recovery is a group of linked transactions (`Recovery.group_id`),
submitted together (one `created_at`): it is counted once and its amounts sum all its parts.
Everything is counted by the database (GROUP BY / COUNT / SUM / CASE), never by loading
recovery rows (`metrics_sql` holds the queries):

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
reduce each recovery to the few facts `promised_by` reads (`PromiseKeys`) and count the recoveries
that share them, so the promise is worked out once per group of alike recoveries (hundreds, not
tens of thousands). A recovery is on time when its last payout came by the promise counted from
its first debit started (the stuck list applies the rule to each transaction while under way:
for transactions started on the same day the two are the same).

A day's ended recoveries (every transaction in a terminal state, which is never left) are added
up once and kept (`metrics_days`): a month's page reads thirty kept days and the few recoveries
still open, not the month's tens of thousands of recoveries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from core.domain.access import Principal, require_staff
from core.domain.calendar import SHANGHAI, WorkingDayCalendar, shanghai_period
from core.domain.catalog import Catalog, Channel, Instant, TPlus, WorkingDays
from core.domain.stuck import INSTANT_GRACE, stuck_reason
from core.persistence.fast_reads import Read, Snapshot, snapshot
from core.persistence.tables import MetricsDay
from core.services.console.metrics_sql import FineRow, MetricsReads, PayoutRow, PromiseKeys, StuckRow

log = logging.getLogger(__name__)
#: The longest period one request reads (a year and a day: a leap year's worth of days).
MAX_PERIOD_DAYS = 366
#: How long an instant channel may take and still count as instant (as its users understand it).
INSTANT_GRACE_S = INSTANT_GRACE.total_seconds()
_M = SQLModel.metadata.tables[str(MetricsDay.__tablename__)]
_KEPT_BASES = 8  # the catalog's promises in force, and a few it had moments ago
_KEPT_DEADLINES = 100_000  # a few years of days for each speed the catalog has had, several times over
#: The days the background upkeep keeps worked out (a month's page, and the month before it).
KEEP_RECENT_DAYS = 62


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


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first moment, moment after the last) of Shanghai business days start..end, checked."""
    return shanghai_period(start, end, most_days=MAX_PERIOD_DAYS, errors="metrics")


class MetricsService:
    """The operations metrics. The figures of a day's ended recoveries never change, so they are
    worked out once and kept in `metrics_days` (checked on every read against the count of the
    day's ended transactions, and against the catalog's promises they were keyed by); the open
    recoveries, the queue and the stuck ones are read every time. Keeping a day is the one write
    a read makes: a short transaction of its own after the read, and if it fails the figures are
    still right (the day is worked out again next time)."""

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
        self._reads: dict[str, MetricsReads] = {}  # by `PromiseKeys.basis`

    def metrics(self, caller: Principal, start: dt.date, end: dt.date) -> Metrics:
        """The figures of the recoveries created from `start` to `end` (Shanghai days, both
        included), and the queue and stuck recoveries as they stand now."""
        require_staff(caller, "only staff read the operations metrics")
        first, after = period_bounds(start, end)
        now = self._clock()
        keys = self._keys()
        reads = self._reads_for(keys)
        with snapshot(self._engine) as reader:
            kept, worked_out = _ended(reader, reads, first, after)
            fine = reads.fine_rows(reader, first, after, open_ones=True)
            payouts = reads.payout_rows(reader, first, after, open_ones=True)
            queue_size, oldest = reads.queue(reader)
            stuck = reads.stuck(reader, now)
        self._keep(worked_out, keys.basis)
        for day in {**kept, **worked_out}.values():
            fine.extend(day.fine)
            payouts.extend(day.payouts)
        total, by_day, by_channel, by_carrier = _added_up(fine, start, end)
        return Metrics(
            start=start,
            end=end,
            as_of=now,
            total=total,
            by_day=by_day,
            by_channel=by_channel,
            by_carrier=by_carrier,
            payout_times=_payout_times(keys, by_channel, payouts),
            queue_size=queue_size,
            oldest_case_age_s=(now - oldest).total_seconds() if oldest is not None else None,
            stuck=_stuck_count(keys, stuck),
        )

    def keep_recent(self, days: int = KEEP_RECENT_DAYS) -> int:
        """Work out and keep the ended recoveries of the last `days` Shanghai days (today
        included) that are not kept yet, or were kept under other promises: the background
        upkeep (`core.services.housekeeping`) that spares a page the first read after a start, a
        quiet spell or a change of the catalog's promises. How many days it kept."""
        today = self._clock().astimezone(SHANGHAI).date()
        first, after = period_bounds(today - dt.timedelta(days=min(max(days, 1), MAX_PERIOD_DAYS) - 1), today)
        keys = self._keys()
        with snapshot(self._engine) as reader:
            _, worked_out = _ended(reader, self._reads_for(keys), first, after)
        self._keep(worked_out, keys.basis)
        return len(worked_out)

    def _keys(self) -> PromiseKeys:
        if len(self._deadlines) > _KEPT_DEADLINES:
            self._deadlines.clear()
        return PromiseKeys(self._catalog().by_id(), self._calendar, self._engine.dialect.name, self._deadlines)

    def _reads_for(self, keys: PromiseKeys) -> MetricsReads:
        """The statements for the catalog's promises as they are (made on the first read after
        a change of them; a few bases kept, as the catalog's promises rarely change)."""
        reads = self._reads.get(keys.basis)
        if reads is None:
            if len(self._reads) >= _KEPT_BASES:
                self._reads.clear()
            reads = self._reads[keys.basis] = MetricsReads(keys)
        return reads

    def _keep(self, days: Mapping[str, _EndedDay], basis: str) -> None:
        if not days:
            return
        rows = [
            {
                "day": day,
                "basis": basis,
                "ended_parts": d.ended_parts,
                "figures": d.to_json(),
                "computed_at": self._clock(),
            }
            for day, d in days.items()
        ]
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(_M).where(_M.c.day.in_(list(days))))
                conn.execute(insert(_M), rows)
        except SQLAlchemyError as exc:  # another reader kept them first, or the database is busy
            log.info(
                "the metrics of %d days were not kept (%s); they are worked out again next time",
                len(rows),
                type(exc).__name__,
            )


# --- the days kept ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _EndedDay:
    """The figures of one Shanghai day's ended recoveries, as `metrics_days` keeps them."""

    ended_parts: int
    fine: list[FineRow]
    payouts: list[PayoutRow]

    def to_json(self) -> str:
        return json.dumps({"fine": self.fine, "payouts": self.payouts}, separators=(",", ":"))

    @classmethod
    def from_json(cls, ended: int, text: str) -> _EndedDay:
        data = orjson.loads(text)  # a page reads a day of these per day shown
        fine = [FineRow(r[0], r[1], r[2], tuple(r[3])) for r in data["fine"]]
        return cls(ended, fine, [PayoutRow(*r) for r in data["payouts"]])


def _ended(
    reader: Snapshot, reads: MetricsReads, first: dt.datetime, after: dt.datetime
) -> tuple[dict[str, _EndedDay], dict[str, _EndedDay]]:
    """The period's ended days: (those kept that still hold, those worked out now)."""
    counts = reads.ended_parts(reader, first, after)
    kept = _kept_days(reader, counts, reads.basis)
    return kept, _ended_days(reader, reads, counts, [day for day in counts if day not in kept])


_KEPT: Read[tuple[str, int, str]] = Read(
    lambda days: select(_M.c.day, _M.c.ended_parts, _M.c.figures).where(
        _M.c.basis == bindparam("basis"), _M.c.day.in_(days)
    ),
    lists=("days",),
)


def _kept_days(reader: Snapshot, counts: Mapping[str, int], basis: str) -> dict[str, _EndedDay]:
    """The days kept that still hold: the same ended transactions, the same promises."""
    if not counts:
        return {}
    return {
        day: _EndedDay.from_json(ended, text)
        for day, ended, text in reader.rows(_KEPT, basis=basis, days=sorted(counts))
        if counts.get(day) == ended
    }


def _ended_days(
    reader: Snapshot, reads: MetricsReads, counts: Mapping[str, int], days: Sequence[str]
) -> dict[str, _EndedDay]:
    """The ended recoveries of `days` worked out (one read of the days from the first to the
    last of them), each day's figures apart."""
    if not days:
        return {}
    first, after = period_bounds(dt.date.fromisoformat(min(days)), dt.date.fromisoformat(max(days)))
    out = {day: _EndedDay(counts[day], [], []) for day in counts if min(days) <= day <= max(days)}
    for row in reads.fine_rows(reader, first, after, open_ones=False):
        out[row.day].fine.append(row)
    for payout in reads.payout_rows(reader, first, after, open_ones=False):
        out[payout.day].payouts.append(payout)
    return out


def _added_up(
    rows: Sequence[FineRow], start: dt.date, end: dt.date
) -> tuple[Figures, dict[dt.date, Figures], dict[str, Figures], dict[str, Figures]]:
    """The whole period, every day of it (in order, empty days too), each channel and carrier."""
    sums: dict[tuple[str, str], list[int]] = {}
    width = len(fields(Figures))
    for row in rows:
        for key in (("total", ""), ("day", row.day), ("channel", row.channel), ("carrier", row.carrier)):
            acc = sums.setdefault(key, [0] * width)
            for i, value in enumerate(row.figures):
                acc[i] += value
    figures = {key: Figures(*acc) for key, acc in sums.items()}
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return (
        figures.get(("total", ""), Figures()),
        {day: figures.get(("day", day.isoformat()), Figures()) for day in days},
        {key: f for (dim, key), f in sorted(figures.items()) if dim == "channel"},
        {key: f for (dim, key), f in sorted(figures.items()) if dim == "carrier"},
    )


def _payout_times(
    keys: PromiseKeys, by_channel: Mapping[str, Figures], rows: Sequence[PayoutRow]
) -> tuple[PayoutTimes, ...]:
    """Per channel that had recoveries in the period, in the catalog's order (channels no
    longer in the catalog last, with no promise)."""
    channels = keys.channels
    measured: dict[str, int] = dict.fromkeys(by_channel, 0)
    on_time: dict[str, int] = dict.fromkeys(by_channel, 0)
    durations: dict[str, list[int]] = {key: [] for key in by_channel}
    for row in rows:
        cid = row.channel
        measured[cid] = measured.get(cid, 0) + row.n
        channel = channels.get(cid)
        if channel is not None:
            paid_at, deadline = keys.moments(channel, row)
            on_time[cid] = on_time.get(cid, 0) + (row.n if paid_at <= deadline else 0)
        durations.setdefault(cid, []).extend(row.durations)

    def seconds(ms: float | None) -> float | None:
        return ms / 1000 if ms is not None else None

    order = {cid: i for i, cid in enumerate(channels)}
    return tuple(
        PayoutTimes(
            channel=cid,
            measured=n,
            p50_s=seconds(percentile(durations.get(cid, []), 50)),
            p95_s=seconds(percentile(durations.get(cid, []), 95)),
            promise=promise_of(channels[cid]) if cid in channels else None,
            on_time=on_time.get(cid, 0),
        )
        for cid, n in sorted(measured.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    )


def _stuck_count(keys: PromiseKeys, rows: Sequence[StuckRow]) -> int:
    """Recoveries stuck now, as `StuckService.stuck` finds them (channels in the catalog only)."""
    count = 0
    for row in rows:
        channel = keys.channels.get(row.channel)
        if channel is not None:
            now, deadline = keys.moments(channel, row)
            count += row.n if stuck_reason(now, deadline, row.unanswered, row.unanswered > 0) else 0
    return count
