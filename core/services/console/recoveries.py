"""The operators' view of every recovery: search with filters a link can carry (never a full
number: a number is looked up by its blind index, and the link carries the index), keyset paging
that stays fast on a large table, a detail with every part, the timeline, ledger entries, audit
records and partner calls, and a CSV export of what the filters select (masked numbers only,
audited)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import Table, and_, bindparam, func, or_, select
from sqlalchemy.engine import Engine

from core.domain.access import Principal, require_operator
from core.domain.calendar import SHANGHAI
from core.domain.recovery import RecoveryState
from core.errors import InputError
from core.persistence.fast_reads import Read, snapshot
from core.persistence.tables import AuditRecord, LedgerPosting, OutboxMessage, RecoveryTransition
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.services.audit import AuditLog
from core.services.console.part_rows import RECOVERIES, PartRow, select_parts, views_of
from core.services.recovery import RecoveryService
from core.services.recovery.queries import timeline
from core.services.recovery.views import RecoveryView, Step, UnknownRecovery
from core.services.recovery_worker import CALL_SUFFIX, recovery_of

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000


@dataclass(frozen=True)
class RecoveryFilter:
    """What to look for; every field optional. `number_index` is a full number's blind index
    (`RecoverySearchService.number_index`), never the number."""

    recovery_id: str = ""  # a recovery id, or at least its first 8 characters
    reference: str = ""  # our reference for a partner call (rcv-...-d|p|r)
    number_index: str = ""
    state: str = ""
    channel: str = ""
    carrier: str = ""
    min_fen: int | None = None
    max_fen: int | None = None
    date_from: dt.date | None = None  # Asia/Shanghai, inclusive
    date_to: dt.date | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last row's (created_at, group id); the next page starts after it."""

    created_at: dt.datetime
    group_id: str

    @classmethod
    def checked(cls, created_at: dt.datetime, group_id: str) -> Cursor | None:
        """A place in the results, or None when these cannot be one: a moment with no UTC time
        (year 1 at +23:59 or 9999 at -23:59 overflows), outside the days a search may name, or
        an id that is no recovery's."""
        if not isinstance(created_at, dt.datetime) or created_at.utcoffset() is None:
            return None
        try:
            at = created_at.astimezone(dt.UTC)
        except OverflowError:
            return None
        if not FIRST_DAY <= at.date() <= LAST_DAY or not isinstance(group_id, str) or not UUID.fullmatch(group_id):
            return None
        return cls(at, group_id)


@dataclass(frozen=True)
class SearchPage:
    views: tuple[RecoveryView, ...]
    carriers: dict[str, str]
    next: Cursor | None


class CallView(NamedTuple):
    part: int
    kind: str
    available_at: dt.datetime
    attempts: int
    last_error: str
    done_at: dt.datetime | None


class PostingView(NamedTuple):
    part: int
    entry_id: str
    event: str
    account: str
    amount_fen: int
    at: dt.datetime


class AuditView(NamedTuple):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, str]


@dataclass(frozen=True)
class RecoveryDetail:
    view: RecoveryView
    carrier: str
    steps: tuple[Step, ...]
    postings: tuple[PostingView, ...]
    audit: tuple[AuditView, ...]
    calls: tuple[CallView, ...]


class RecoverySearchService:
    def __init__(self, engine: Engine, recoveries: RecoveryService, audit: AuditLog) -> None:
        self._engine = engine
        self._recoveries = recoveries
        self._audit = audit

    def number_index(self, caller: Principal, phone: str) -> str:
        """The blind index to search a full number by (a link carries this, not the number)."""
        require_operator(caller, "only an operator searches recoveries")
        return self._recoveries.number_index(parse_mobile(phone).national)

    def search(
        self, caller: Principal, wanted: RecoveryFilter, *, after: Cursor | None = None, limit: int = PAGE_SIZE
    ) -> SearchPage:
        """One page of recoveries, newest first."""
        require_operator(caller, "only an operator searches recoveries")
        limit = max(1, min(limit, 200))
        params = _parameters(wanted) | {"limit": limit + 1}
        if after is not None:
            place = Cursor.checked(after.created_at, after.group_id)
            if place is None:  # a place in the results is a moment in time and a recovery
                raise InputError("not a place in these results", key="error.search.cursor")
            params |= {"after_at": place.created_at, "after_id": place.group_id}
        read = _page_read(frozenset(params), after is not None)
        with snapshot(self._engine) as reader:
            rows = reader.rows(read, **params)
        views = views_of(rows)  # newest first, as the statement orders them
        carriers = {r.group_id: r.carrier for r in rows if r.part == 1}
        if len(views) <= limit:
            return SearchPage(tuple(views), carriers, None)
        last = views[limit - 1]
        return SearchPage(tuple(views[:limit]), carriers, Cursor(last.created_at, last.id))

    def detail(self, caller: Principal, group_id: str) -> RecoveryDetail:
        """Everything recorded about one recovery."""
        require_operator(caller, "only an operator reads any recovery")
        if not UUID.fullmatch(group_id):  # an address typed by hand: no such recovery
            raise UnknownRecovery("no such recovery")
        with snapshot(self._engine) as reader:
            parts = reader.rows(_PARTS, group_id=group_id)
            if not parts:  # an operator reads any recovery (checked above)
                raise UnknownRecovery("no such recovery")
            ids = [p.id for p in parts]
            transitions = reader.rows(_TRANSITIONS, ids=ids)
            postings = reader.rows(_POSTINGS, ids=ids)
            records = reader.rows(_AUDIT, subjects=[*ids, group_id])
            calls = reader.rows(_CALLS, ids=ids)
        view = views_of(parts)[0]
        part_of = {p.id: p.part for p in view.parts}
        return RecoveryDetail(
            view=view,
            carrier=next((p.carrier for p in parts if p.id == view.id), ""),  # the first part's
            steps=tuple(timeline(view, transitions)),
            postings=tuple(
                PostingView(part_of[recovery_id], entry_id, event, account, amount_fen, at)
                for recovery_id, entry_id, event, account, amount_fen, at in postings
            ),
            audit=tuple(
                AuditView(seq or 0, at, actor, action, subject, orjson.loads(detail or "{}"))
                for seq, at, actor, action, subject, detail in records
            ),
            calls=tuple(
                CallView(part_of[recovery_id], kind, available_at, attempts, last_error, done_at)
                for recovery_id, kind, available_at, attempts, last_error, done_at in calls
            ),
        )

    def export_csv(self, caller: Principal, wanted: RecoveryFilter) -> str:
        """What the filters select, as CSV (masked numbers only), written to the audit chain."""
        require_operator(caller, "only an operator exports recoveries")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["id", "created_at_shanghai", "number", "channel", "carrier", "amount_fen", "fee_fen", "state", "parts"]
        )
        after, written = None, 0
        while written < EXPORT_LIMIT:
            page = self.search(caller, wanted, after=after, limit=200)
            for v in page.views:
                created = v.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
                carrier = page.carriers.get(v.id, "")
                writer.writerow(
                    [
                        v.id,
                        created,
                        v.masked_number,
                        v.channel_id,
                        carrier,
                        v.amount_fen,
                        v.fee_fen,
                        v.state.value,
                        len(v.parts),
                    ]
                )
            written += len(page.views)
            if page.next is None:
                break
            after = page.next
        with UnitOfWork(self._engine) as uow:
            shown = {k: str(v) for k, v in described(wanted).items()}
            self._audit.append(uow, caller.user_id, "recoveries.export", "recoveries", {**shown, "rows": str(written)})
            uow.commit()
        return out.getvalue()


def described(wanted: RecoveryFilter) -> dict[str, object]:
    """The filters that are set, as the audit chain records them (a number only as 'given')."""
    fields = {k: v for k, v in vars(wanted).items() if v not in ("", None)}
    if "number_index" in fields:
        fields["number_index"] = "given"
    return fields


def _parameters(wanted: RecoveryFilter) -> dict[str, Any]:
    """The filters that are set, checked, as the page statement's parameters."""
    _check_shapes(wanted)
    params: dict[str, Any] = {}
    if wanted.recovery_id:
        params["id_prefix"] = wanted.recovery_id.strip().lower() + "%"
    if wanted.reference:
        part_ids = [p for kind in CALL_SUFFIX if (p := recovery_of(wanted.reference.strip(), kind))]
        if not part_ids:
            raise InputError("not a reference of ours (rcv-…-d, -p or -r)", key="error.search.reference")
        params["part_ids"] = part_ids
    if wanted.state:
        if wanted.state not in {state.value for state in RecoveryState}:
            raise InputError("not a state a recovery can be in", key="error.search.state")
        params["state"] = wanted.state
    for name in ("number_index", "channel", "carrier"):
        if getattr(wanted, name):
            params[name] = getattr(wanted, name)
    if wanted.min_fen is not None and wanted.max_fen is not None and wanted.min_fen > wanted.max_fen:
        raise InputError("the smallest amount is above the largest", key="error.search.amounts")
    params |= {k: v for k, v in (("min_fen", wanted.min_fen), ("max_fen", wanted.max_fen)) if v is not None}
    for day in (wanted.date_from, wanted.date_to):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise InputError(f"a day from {FIRST_DAY} to {LAST_DAY}", key="error.search.day_range")
    if wanted.date_from and wanted.date_to and wanted.date_from > wanted.date_to:
        raise InputError("the first day is after the last", key="error.search.dates")
    if wanted.date_from is not None:
        params["from_at"] = _start_of(wanted.date_from)
    if wanted.date_to is not None:
        params["to_at"] = _start_of(wanted.date_to + dt.timedelta(days=1))
    return params


@functools.lru_cache(maxsize=256)
def _page_read(names: frozenset[str], after: bool) -> Read[PartRow]:
    """The page statement for the filters `names`, compiled once per combination of filters
    (and per number of part ids a reference gives) and reused with new parameters."""
    lists = ("part_ids",) if "part_ids" in names else ()
    return Read(functools.partial(_page_statement, names, after), lists=lists, row=PartRow)


def _page_statement(names: frozenset[str], after: bool, part_ids: Any = None) -> Any:
    """Every part of one page of recoveries, newest first, for the filters `names`. The page's
    recoveries are found by their first part through `ix_recoveries_head_created`, scanning
    newest first until the page is full; a state or an amount is checked per candidate through
    the group's index."""
    heads = RECOVERIES.alias("head")
    part = RECOVERIES.alias("part")
    c = heads.c
    where: list[Any] = [c.part == 1]
    if "id_prefix" in names:
        where.append(c.group_id.like(bindparam("id_prefix")))
    if "part_ids" in names:
        where.append(c.group_id.in_(select(part.c.group_id).where(part.c.id.in_(part_ids))))
    if "state" in names:
        where.append(
            select(part.c.id).where(part.c.group_id == c.group_id, part.c.state == bindparam("state")).exists()
        )
    for name, column in (("number_index", c.number_index), ("channel", c.channel_id), ("carrier", c.carrier)):
        if name in names:
            where.append(column == bindparam(name))
    total = select(func.sum(part.c.debit_fen)).where(part.c.group_id == c.group_id).scalar_subquery()
    if "min_fen" in names:
        where.append(total >= bindparam("min_fen"))
    if "max_fen" in names:
        where.append(total <= bindparam("max_fen"))
    if "from_at" in names:
        where.append(c.created_at >= bindparam("from_at"))
    if "to_at" in names:
        where.append(c.created_at < bindparam("to_at"))
    if after:
        at: Any = bindparam("after_at")
        group_id: Any = bindparam("after_id")
        where.append(or_(c.created_at < at, and_(c.created_at == at, c.group_id < group_id)))
    page = select(c.group_id).where(*where).order_by(c.created_at.desc(), c.group_id.desc()).limit(bindparam("limit"))
    r = RECOVERIES.c
    return select_parts().where(r.group_id.in_(page)).order_by(r.created_at.desc(), r.group_id.desc(), r.part)


class TransitionRow(NamedTuple):
    recovery_id: str
    at: dt.datetime
    event: str
    after: str
    actor: str
    reason: str


_T = cast(Table, RecoveryTransition.__table__).c  # type: ignore[attr-defined]
_P = cast(Table, LedgerPosting.__table__).c  # type: ignore[attr-defined]
_A = cast(Table, AuditRecord.__table__).c  # type: ignore[attr-defined]
_O = cast(Table, OutboxMessage.__table__).c  # type: ignore[attr-defined]
#: A recovery's whole record, read together by `RecoverySearchService.detail`.
_PARTS: Read[PartRow] = Read(
    lambda: select_parts().where(RECOVERIES.c.group_id == bindparam("group_id")).order_by(RECOVERIES.c.part),
    row=PartRow,
)
_TRANSITIONS: Read[TransitionRow] = Read(
    lambda ids: select(_T.recovery_id, _T.at, _T.event, _T.after, _T.actor, _T.reason).where(_T.recovery_id.in_(ids)),
    lists=("ids",),
    row=TransitionRow,
)
_POSTINGS: Read[tuple[str, str, str, str, int, dt.datetime]] = Read(
    lambda ids: (
        select(_P.recovery_id, _P.entry_id, _P.event, _P.account, _P.amount_fen, _P.at)
        .where(_P.recovery_id.in_(ids))
        .order_by(_P.at)
    ),
    lists=("ids",),
)
_AUDIT: Read[tuple[int | None, dt.datetime, str, str, str, str]] = Read(
    lambda subjects: (
        select(_A.seq, _A.at, _A.actor, _A.action, _A.subject, _A.detail)
        .where(_A.subject.in_(subjects))
        .order_by(_A.seq)
    ),
    lists=("subjects",),
)
_CALLS: Read[tuple[str, str, dt.datetime, int, str, dt.datetime | None]] = Read(
    lambda ids: (
        select(_O.recovery_id, _O.kind, _O.available_at, _O.attempts, _O.last_error, _O.done_at)
        .where(_O.recovery_id.in_(ids))
        .order_by(_O.seq)
    ),
    lists=("ids",),
)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RECOVERY_ID = re.compile(r"[0-9a-f][0-9a-f-]{7,35}")
NAME = re.compile(r"[a-z0-9_]{1,32}")
INDEX = re.compile(r"[0-9a-f]{64}")


def _check_shapes(wanted: RecoveryFilter) -> None:
    """Each text filter has the shape its values have, or the search is refused with a message
    (nothing else ever reaches the database: no stray or NUL characters, no wildcards)."""
    if wanted.recovery_id and not RECOVERY_ID.fullmatch(wanted.recovery_id.strip().lower()):
        raise InputError("give at least the first 8 characters of a recovery id", key="error.search.id")
    for value in (wanted.channel, wanted.carrier):
        if value and not NAME.fullmatch(value):
            raise InputError("choose a channel and a carrier from the lists", key="error.search.choice")
    if wanted.number_index and not INDEX.fullmatch(wanted.number_index):
        raise InputError("that number filter is not one this portal made", key="error.search.number")


#: The days a search may name (a day outside is a typo, and beyond the calendar's ends in UTC).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI).astimezone(dt.UTC)
