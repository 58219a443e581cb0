"""The audit chain: every state change and staff action, each record hashed over the one before
it (`core.domain.audit`), so that changing or removing any record breaks every hash after it.

Any service appends in its own transaction (`AuditLog.append`), unchained: no lock and no read of
the chain's head, so no transaction waits for another's append. One chainer (`chain_pending`, run
every second by the background upkeep beside each worker, and before anything reads the chain:
`verify_audit_chain`, a filing, a receipt) hashes the records in, in batches, each at its place in
the chain (`chain_seq`). Between its commit and the next chaining (about a second) a record is
stored but not yet covered by the chain. `verify_audit_chain` names the first broken record.

Operators and admins read it through `AuditService`: verify the chain on demand, search by
subject and/or actor (newest first, a page at a time), and export a search as CSV (itself
audited). What they read is masked: the chain holds no full number, and anything that looks
like one is masked on the way out all the same.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from core.domain.access import Principal, require_operator
from core.domain.audit import GENESIS, chain_hash, first_broken
from core.domain.notes import masked_numbers
from core.errors import InputError
from core.persistence.fast_reads import Read, snapshot
from core.persistence.tables import AuditRecord, User
from core.persistence.uow import UnitOfWork

PAGE_SIZE = 50
EXPORT_MAX = 10_000  # rows in one export
SEARCH_MAX = 80  # characters of a subject or actor searched for
_SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class AuditLog:
    def __init__(self, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._clock = clock

    def append(self, uow: UnitOfWork, actor: str, action: str, subject: str, detail: Mapping[str, str]) -> None:
        """One record, in the caller's transaction, unchained: no lock, no read of the chain's
        head; `chain_pending` chains it once its transaction has committed (in a batched unit of
        work the row goes in with the others at commit)."""
        uow.write(_RECORDS, self._row(actor, action, subject, detail))

    def append_now(self, uow: UnitOfWork, actor: str, action: str, subject: str, detail: Mapping[str, str]) -> int:
        """`append`, written at once; its sequence number (for a caller that names its own record,
        as a filing names the chain's head once it is chained)."""
        if uow.session.new or uow.session.dirty:
            uow.session.flush()
        insert_one = insert(_RECORDS).returning(_R.seq)
        row = self._row(actor, action, subject, detail)
        return int(uow.session.connection().execute(insert_one, [row]).scalar_one())

    def _row(self, actor: str, action: str, subject: str, detail: Mapping[str, str]) -> dict[str, Any]:
        return {
            "at": self._clock(),
            "actor": str(actor)[:64],
            "action": action,
            "subject": subject,
            # as written, not \u-escaped: a reason in Chinese fits the column
            "detail": json.dumps(dict(detail), sort_keys=True, ensure_ascii=False),
            "previous_hash": None,
            "hash": None,
            "chain_seq": None,
        }


_RECORDS = AuditRecord.__table__  # type: ignore[attr-defined]
_R = _RECORDS.c
#: The chain's last record: its place and its hash.
_HEAD = select_columns(_R.chain_seq, _R.hash).where(_R.chain_seq.is_not(None)).order_by(_R.chain_seq.desc()).limit(1)
_UNCHAINED = (
    select_columns(_R.seq, _R.actor, _R.action, _R.subject, _R.detail).where(_R.hash.is_(None)).order_by(_R.seq)
)
_CHAIN = (
    update(_RECORDS)
    .where(_R.seq == bindparam("record"))
    .values(previous_hash=bindparam("previous"), hash=bindparam("digest"), chain_seq=bindparam("place"))
)
#: Whether any record waits to be chained (the chainer's look before it takes the chain).
_WAITING: Read[tuple[int]] = Read(lambda: select_columns(_R.seq).where(_R.hash.is_(None)).limit(1))
#: Records chained in one transaction of the chainer (a short write, however much waits).
CHAIN_BATCH = 2_000


def _content(actor: str, action: str, subject: str, detail: str) -> dict[str, Any]:
    """What a record's hash covers, read back from its row (as `verify_audit_chain` reads it)."""
    return {"actor": actor, "action": action, "subject": subject, "detail": json.loads(detail or "{}")}


def chain_pending(engine: Engine, *, most: int = 100 * CHAIN_BATCH) -> int:
    """Chain the records written since the last run, in the order of their sequence numbers as
    their transactions made them visible: each one's hash over the chain's head, in batches of
    `CHAIN_BATCH` per transaction. One chainer at a time (the chain's lock); a record whose
    transaction commits later is chained in a later batch, at a later place. How many it chained
    (at most about `most`)."""
    chained = 0
    while chained < most:
        with snapshot(engine) as reader:  # a plain read first: an idle chainer never takes the write lock
            if not reader.rows(_WAITING):
                return chained
        with UnitOfWork(engine) as uow:
            uow.lock("audit-chain")  # one chainer at a time: no append ever waits for it
            connection = uow.session.connection()
            head = connection.execute(_HEAD).first()
            place, previous = (int(head[0]), str(head[1])) if head is not None else (0, GENESIS)
            batch = connection.execute(_UNCHAINED.limit(CHAIN_BATCH)).all()
            if not batch:
                return chained
            updates = []
            for seq, actor, action, subject, detail in batch:
                place += 1
                digest = chain_hash(previous, _content(actor, action, subject, detail))
                updates.append({"record": seq, "previous": previous, "digest": digest, "place": place})
                previous = digest
            connection.execute(_CHAIN, updates)
            uow.commit()
        chained += len(batch)
    return chained


def verify_audit_chain(engine: Engine) -> tuple[int, int | None]:
    """(records checked, sequence number of the first broken record or None): the records waiting
    are chained first, then the whole chain is walked in its order."""
    chain_pending(engine)
    with UnitOfWork(engine) as uow:
        rows = uow.session.exec(
            select(AuditRecord).where(col(AuditRecord.chain_seq).is_not(None)).order_by(col(AuditRecord.chain_seq))
        ).all()
    chain = [(_content(r.actor, r.action, r.subject, r.detail), r.previous_hash or "", r.hash or "") for r in rows]
    broken = first_broken(chain)
    return len(rows), (rows[broken].seq if broken is not None else None)


@dataclass(frozen=True)
class ChainCheck:
    checked: int
    broken: int | None  # the sequence number of the first broken record


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str  # a user name when the actor is an account, else as recorded ("worker", ...)
    actor_id: str
    action: str
    subject: str
    detail: dict[str, str]  # masked


@dataclass(frozen=True)
class AuditPage:
    entries: tuple[AuditEntry, ...]
    page: int  # from 0
    has_next: bool


class AuditService:
    """The audit chain as operators and admins read it."""

    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def verify(self, caller: Principal) -> ChainCheck:
        """Every record checked against the one before it; names the first broken one."""
        require_operator(caller, "only an operator or admin reads the audit trail")
        checked, broken = verify_audit_chain(self._engine)
        return ChainCheck(checked, broken)

    def search(self, caller: Principal, *, subject: str = "", actor: str = "", page: int = 0) -> AuditPage:
        """Records whose subject starts with `subject` and whose actor is `actor` (a user name or
        id), newest first, `PAGE_SIZE` a page."""
        require_operator(caller, "only an operator or admin reads the audit trail")
        if not isinstance(page, int) or not 0 <= page <= 10**6:
            raise InputError("no such page", key="error.audit.search")
        with UnitOfWork(self._engine) as uow:
            query = self._query(uow, subject, actor)
            rows = uow.session.exec(query.offset(page * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
            entries = _entries(uow, rows[:PAGE_SIZE])
        return AuditPage(entries, page, len(rows) > PAGE_SIZE)

    def export(self, caller: Principal, *, subject: str = "", actor: str = "") -> str:
        """The search as CSV (newest first, at most `EXPORT_MAX` rows, masked), audited as
        `audit.export` with the search and the number of rows."""
        require_operator(caller, "only an operator or admin exports the audit trail")
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(self._query(uow, subject, actor).limit(EXPORT_MAX)).all()
            entries = _entries(uow, rows)
            searched = {"subject": masked_numbers(subject.strip()), "actor": masked_numbers(actor.strip())}
            searched["rows"] = str(len(rows))
            self._audit.append(uow, caller.user_id, "audit.export", "audit", searched)
            uow.commit()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["seq", "at", "actor", "actor_id", "action", "subject", "detail"])
        for e in entries:
            detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
            row = [str(e.seq), e.at.isoformat(), e.actor, e.actor_id, e.action, e.subject, detail]
            writer.writerow([_cell(value) for value in row])
        return out.getvalue()

    @staticmethod
    def _query(uow: UnitOfWork, subject: str, actor: str) -> SelectOfScalar[AuditRecord]:
        subject, actor = _search_text(subject), _search_text(actor)
        query = select(AuditRecord).order_by(col(AuditRecord.seq).desc())
        if subject:
            query = query.where(col(AuditRecord.subject).startswith(subject, autoescape=True))
        if actor:
            named = uow.session.exec(select(User.id).where(User.username == actor)).first()
            query = query.where(or_(col(AuditRecord.actor) == actor, col(AuditRecord.actor) == (named or actor)))
        return query


def _search_text(text: str) -> str:
    text = str(text).strip()
    if len(text) > SEARCH_MAX or any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise InputError("search for a subject or an actor of at most 80 characters", key="error.audit.search")
    return text


def usernames(uow: UnitOfWork, ids: Iterable[str]) -> dict[str, str]:
    """User names by account id, for the ids that have one (a consumer has none, nor does an
    actor such as "worker"): each caller says what stands in for the others."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = uow.session.exec(select(User.id, User.username).where(col(User.id).in_(wanted))).all()
    return {str(user_id): str(name) for user_id, name in rows if name}


def _entries(uow: UnitOfWork, rows: Sequence[AuditRecord]) -> tuple[AuditEntry, ...]:
    names = usernames(uow, {r.actor for r in rows})
    return tuple(
        AuditEntry(
            seq=r.seq or 0,
            at=r.at,
            actor=names.get(r.actor) or r.actor,
            actor_id=r.actor,
            action=r.action,
            subject=masked_numbers(r.subject),
            detail={str(k): masked_numbers(str(v)) for k, v in json.loads(r.detail or "{}").items()},
        )
        for r in rows
    )


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_SPREADSHEET_FORMULA) else value
