"""The SQL of the operations metrics (`core.services.console.metrics` says what each figure is).

Two kinds of recovery are read apart: *ended* ones (every transaction in a terminal state: their
figures never change again, so the service keeps them per day in `metrics_days`) and *open* ones
(at least one transaction still under way: few, found through the state index, read every time).
`in_scope` draws the line, the same way in every query: a recovery is open when one of its
transactions is in an open state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    Time,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select
from sqlmodel import SQLModel

from core.domain.calendar import SHANGHAI, WorkingDayCalendar
from core.domain.catalog import Channel, Instant, TPlus
from core.domain.quotes import days_for, split, transaction_size
from core.domain.recovery import TERMINAL, RecoveryEvent, RecoveryState
from core.domain.stuck import INSTANT_GRACE, promised_by
from core.persistence.fast_reads import Read, Snapshot
from core.persistence.tables import OutboxMessage, Recovery, RecoveryTransition
from core.services.console.stuck import UNDER_WAY

S = RecoveryState
E = RecoveryEvent

# The tables themselves (SQLAlchemy Core, for the aggregates), as the models declare them.
_R = SQLModel.metadata.tables[str(Recovery.__tablename__)]
_T = SQLModel.metadata.tables[str(RecoveryTransition.__tablename__)]
_O = SQLModel.metadata.tables[str(OutboxMessage.__tablename__)]
AT = _R.c.created_at.type  # aware UTC datetimes in and out, on both databases
#: States of a transaction that reached a payout (asked for, paid, or refunded after failing).
_PAYOUT = tuple(s.value for s in (S.PAYING, S.PAID, S.REFUNDING, S.REFUNDED))
_OPEN = tuple(s.value for s in S if s not in TERMINAL)
_ENDED = tuple(s.value for s in TERMINAL)
_DAY_MS = 86_400_000
_KEYS_VERSION = 1  # raised when `PromiseKeys.keys` or the rows kept change shape
_ANY_MOMENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class FineRow(NamedTuple):
    """The figures of the recoveries of one day, channel and carrier (the finest slice: every
    breakdown adds these up). `figures` in the order of `Figures`' fields."""

    day: str
    channel: str
    carrier: str
    figures: tuple[int, ...]


class PayoutRow(NamedTuple):
    """The paid recoveries of one day that share a `PromiseKeys` key: how many, and each one's
    payout time in whole milliseconds."""

    day: str
    channel: str
    amount_key: int
    start_day: str | None
    start_late: int
    end_day: str | None
    over_days: int | None
    n: int
    durations: list[int]


class PromiseKeys:
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

    @property
    def basis(self) -> str:
        """A digest of what `keys` reduces recoveries by: rows keyed under another catalog's
        promises (a channel's speed or daily limit changed) are not read as this one's."""
        facts = {
            "v": _KEYS_VERSION,
            "instant": sorted(self._instant),
            "dated": sorted(self._dated),
            "cutoffs": sorted((c.isoformat(), sorted(ids)) for c, ids in self._cutoffs.items()),
            "limited": sorted(self._limited),
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()

    def keys(
        self, channel: ColumnElement[Any], amount: ColumnElement[Any], started: Any, ended: Any
    ) -> list[ColumnElement[Any]]:
        """amount_key, start_day, start_late, end_day, over_days of a recovery of `amount` fen
        whose payout started at `started`, measured at `ended` (NULL where they do not apply;
        the amount only for a channel with a daily limit, the only ones it matters to)."""
        day = lambda moment: shanghai_day_sql(moment, self.dialect)  # noqa: E731
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

    def moments(self, channel: Channel, row: Any) -> tuple[dt.datetime, dt.datetime]:
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


# --- the queries ------------------------------------------------------------------------------


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


#: The zone written in the SQL, not bound: a statement compiled once gives each bound value a
#: placeholder of its own on PostgreSQL, and a day grouped by must be the very expression selected.
_SHANGHAI_ZONE: ColumnElement[str] = literal_column("'Asia/Shanghai'")


def shanghai_day_sql(moment: Any, dialect: str) -> ColumnElement[str]:
    """The Asia/Shanghai date of a stored UTC moment, as YYYY-MM-DD text."""
    if dialect == "postgresql":
        return cast(cast(func.timezone(_SHANGHAI_ZONE, moment), Date), String)
    return cast(func.date(moment, "+8 hours"), String)  # SQLite keeps UTC as text; China has no DST


def _at_or_after(moment: Any, cutoff: dt.time, dialect: str) -> ColumnElement[bool]:
    """Whether a stored UTC moment is at or after `cutoff` (Asia/Shanghai) on its day."""
    if dialect == "postgresql":
        return cast(func.timezone(_SHANGHAI_ZONE, moment), Time) >= literal(cutoff, Time)
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
    """The debit of all of a recovery's transactions (a correlated subquery: `PromiseKeys.keys`
    reads it only for a channel with a daily limit)."""
    siblings = _R.alias("siblings")
    return select(func.sum(siblings.c.debit_fen)).where(siblings.c.group_id == group_id).scalar_subquery()


def _in_period(first: dt.datetime, after: dt.datetime) -> ColumnElement[bool]:
    """The transactions of the recoveries created in the period: all of a recovery's parts are
    created together, so a range of `ix_recoveries_period`, in (created_at, group_id) order."""
    return and_(_R.c.created_at >= first, _R.c.created_at < after)


def _open_groups(first: dt.datetime, after: dt.datetime, dialect: str) -> Any:
    """The recoveries created in the period that are open (a transaction in an open state)."""
    return select(_R.c.group_id).where(_few(_R.c.state.in_(_OPEN), dialect), _in_period(first, after))


def in_scope(first: dt.datetime, after: dt.datetime, dialect: str, *, open_ones: bool) -> ColumnElement[bool]:
    """The transactions of the period's open recoveries (found from the few open ones, through
    the state index, then their groups), or of its ended ones (a range of the period's)."""
    groups = _open_groups(first, after, dialect)
    if open_ones:
        return _R.c.group_id.in_(groups)
    return and_(_in_period(first, after), _R.c.group_id.not_in(groups))


def _ended_parts(first: Any, after: Any, dialect: str) -> Any:
    """Per Shanghai day of the period, how many transactions are in a terminal state. Terminal
    states are never left, so the set of them only grows: the same count is the same set, and
    the same ended recoveries (what a kept day is checked by)."""
    day = shanghai_day_sql(_R.c.created_at, dialect).label("day")
    return select(day, func.count()).where(_in_period(first, after), _R.c.state.in_(_ENDED)).group_by(day)


def _fine(first: Any, after: Any, dialect: str, open_ones: bool) -> Select[Any]:
    """One query: each recovery's figures (grouped by created_at, group_id: the index's order,
    no sorting), added up per day, channel and carrier."""
    reviewed: ColumnElement[bool]
    if open_ones:  # few: each one's own look-up (ix_recovery_transitions_part_event)
        reviewed = exists().where(_T.c.recovery_id == _R.c.id, _T.c.event == E.REVIEW.value)
    else:  # the period's: one list of them (ix_recovery_transitions_event_at)
        reviewed = _R.c.id.in_(select(_T.c.recovery_id).where(_T.c.event == E.REVIEW.value, _T.c.at >= first))
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
            func.max(_flag(reviewed)).label("reviewed"),
        )
        .where(in_scope(first, after, dialect, open_ones=open_ones))
        .group_by(_R.c.created_at, _R.c.group_id)
        .subquery("period_recoveries")
    )
    g = groups.c
    ended = and_(g.payout_parts > 0, g.open_parts == 0)
    day = shanghai_day_sql(g.created_at, dialect).label("day")
    return select(
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
    ).group_by(day, g.channel, g.carrier)


def _payouts(first: Any, after: Any, keys: PromiseKeys, open_ones: bool) -> Select[Any]:
    """The recoveries of the period that were paid, counted per day, channel and `PromiseKeys`
    key, with how long each took: from the first debit confirmed to the last payout confirmed
    (whole milliseconds, as a JSON array; the promise counts from the first debit started). The
    moments come from `ix_recovery_transitions_part_event`, one look-up per transaction."""
    event, at = _T.c.event, _T.c.at
    moments = (E.START_DEBIT.value, E.DEBIT_CONFIRMED.value, E.PAYOUT_CONFIRMED.value)
    steps = _R.join(_T, and_(_T.c.recovery_id == _R.c.id, event.in_(moments), at >= first))
    paid = (
        select(
            _R.c.created_at,
            _R.c.group_id,
            func.min(_R.c.channel_id).label("channel"),
            func.coalesce(func.min(case((event == E.START_DEBIT.value, at))), func.min(_R.c.created_at)).label(
                "started"
            ),
            func.min(case((event == E.DEBIT_CONFIRMED.value, at))).label("confirmed"),
            func.max(case((event == E.PAYOUT_CONFIRMED.value, at))).label("paid"),
        )
        .select_from(steps)
        .where(_R.c.state.in_(_PAYOUT), in_scope(first, after, keys.dialect, open_ones=open_ones))
        .group_by(_R.c.created_at, _R.c.group_id)
        .having(func.max(_flag(_R.c.state == S.PAID.value)) == 1)
        .cte("paid_recoveries")
    )
    p = paid.c
    keyed = select(
        shanghai_day_sql(p.created_at, keys.dialect).label("day"),
        p.channel,
        *keys.keys(p.channel, _group_amount(p.group_id), p.started, p.paid),
        _ms_between(func.coalesce(p.confirmed, p.started), p.paid, keys.dialect).label("ms"),
    ).cte("keyed")
    k = keyed.c
    key = (k.day, k.channel, k.amount_key, k.start_day, k.start_late, k.end_day, k.over_days)
    array = func.json_agg(k.ms) if keys.dialect == "postgresql" else func.json_group_array(k.ms)
    return select(*key, func.count(), array).group_by(*key)


def _stuck(now: Any, promises: PromiseKeys) -> Select[Any]:
    """The recoveries under way now (`UNDER_WAY`, as `StuckService`), counted per channel,
    `PromiseKeys` key measured at `now` (from their earliest transaction's debit started, else
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
        u.channel, *promises.keys(u.channel, _group_amount(u.group_id), u.started, now), u.unanswered
    ).subquery("keyed")
    k = keyed.c
    key = (k.channel, k.amount_key, k.start_day, k.start_late, k.end_day, k.over_days, k.unanswered)
    return select(*key, func.count().label("n")).group_by(*key)


def _queue() -> Select[Any]:
    """Recoveries in review now, and when the oldest of them was created."""
    return select(func.count(func.distinct(_R.c.group_id)), type_coerce(func.min(_R.c.created_at), AT)).where(
        _R.c.state == S.REVIEW.value
    )


# --- the statements, made once ------------------------------------------------------------------


class StuckRow(NamedTuple):
    """The recoveries under way now that share a channel, a `PromiseKeys` key measured now and
    `unanswered` (`MetricsReads.stuck`): how many."""

    channel: str
    amount_key: int
    start_day: str | None
    start_late: int
    end_day: str | None
    over_days: int | None
    unanswered: int
    n: int


def _moment(name: str) -> Any:
    return bindparam(name, type_=AT)


class MetricsReads:
    """The metrics' statements for one database and one catalog's promises (what
    `PromiseKeys.basis` digests), each made and compiled once (`Read`) and then run with the
    period's moments as parameters, in one snapshot (`core.persistence.fast_reads`): built
    anew, they took as long to make as to run. A service keeps one per basis."""

    def __init__(self, keys: PromiseKeys) -> None:
        dialect = keys.dialect
        self.basis = keys.basis  # what the days kept were keyed by
        self._ended_parts: Read[tuple[str, int]] = Read(
            lambda: _ended_parts(_moment("first"), _moment("after"), dialect)
        )
        self._fine: dict[bool, Read[tuple[Any, ...]]] = {
            open_ones: Read(lambda o=open_ones: _fine(_moment("first"), _moment("after"), dialect, o))
            for open_ones in (True, False)
        }
        self._payouts: dict[bool, Read[tuple[Any, ...]]] = {
            open_ones: Read(lambda o=open_ones: _payouts(_moment("first"), _moment("after"), keys, o))
            for open_ones in (True, False)
        }
        self._stuck = Read(lambda: _stuck(_moment("now"), keys), row=StuckRow)
        self._queue: Read[tuple[int, dt.datetime | None]] = Read(_queue)

    def ended_parts(self, reader: Snapshot, first: dt.datetime, after: dt.datetime) -> dict[str, int]:
        """`_ended_parts`: how many transactions of each Shanghai day of the period ended."""
        return {day: int(n) for day, n in reader.rows(self._ended_parts, first=first, after=after)}

    def fine_rows(self, reader: Snapshot, first: dt.datetime, after: dt.datetime, *, open_ones: bool) -> list[FineRow]:
        """`_fine`: the period's open (or ended) recoveries added up per day, channel and carrier."""
        rows = reader.rows(self._fine[open_ones], first=first, after=after)
        # PostgreSQL's SUM of integers is a numeric
        return [FineRow(r[0], r[1], r[2], tuple(int(v) for v in r[3:])) for r in rows]

    def payout_rows(
        self, reader: Snapshot, first: dt.datetime, after: dt.datetime, *, open_ones: bool
    ) -> list[PayoutRow]:
        """`_payouts`: the period's paid recoveries per day, channel and key, with their times."""
        out = []
        for row in reader.rows(self._payouts[open_ones], first=first, after=after):
            durations = row[8] if isinstance(row[8], list) else orjson.loads(row[8])
            day, channel, amount_key, start_day, start_late, end_day, over_days = row[:7]
            ms = [int(value) for value in durations]
            out.append(PayoutRow(day, channel, amount_key, start_day, start_late, end_day, over_days, int(row[7]), ms))
        return out

    def stuck(self, reader: Snapshot, now: dt.datetime) -> list[StuckRow]:
        """`_stuck`: the recoveries under way, counted per channel and key measured at `now`."""
        return reader.rows(self._stuck, now=now)

    def queue(self, reader: Snapshot) -> tuple[int, dt.datetime | None]:
        """Recoveries in review now, and when the oldest of them was created."""
        count, oldest = reader.rows(self._queue)[0]
        return int(count), oldest
