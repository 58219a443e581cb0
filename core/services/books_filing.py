"""The money flow and the information flow filed together (资金流-信息流): per recovery created or
moved in a period, its ledger entries beside its transitions (who moved it, when, why) and the
audit records about it, as JSON lines (`BooksService.filing`).

    {"type": "filing", "from", "to", "filed_at", "filed_by", "format"}      first line
    {"type": "recovery", "recovery", "masked_number", "channel", "carrier", "created_at",
     "parts": [{"id", "part", "state", "debit_fen", "fee_fen", "reason",
                "ledger": [{"entry", "event", "at", "reference", "postings": [{"account", "amount_fen"}]}],
                "transitions": [{"at", "event", "from", "to", "actor", "actor_name", "reason"}]}],
     "audit": [{"seq", "at", "actor", "actor_name", "action", "subject", "detail", "hash"}]}
    {"type": "audit_head", "seq", "hash"}                                   last line

A recovery is a group of linked transactions (one line each), in the order they were created.
What is filed is what was recorded up to the end of the period, and of the audit chain up to
its head when the filing was made (the filing's own record): the last line names that head, so
the file can be checked against the chain (its records and every hash up to the head). Numbers
are masked only; the number's cipher and blind index never leave the database, and free text
(reasons, audit details) is masked again on the way out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

from core.domain.notes import masked_numbers as masked_text
from core.persistence.tables import AuditRecord, LedgerPosting, RecoveryTransition
from core.persistence.uow import UnitOfWork
from core.services.audit import usernames
from core.services.books_formats import event_rank, partner_reference

BATCH = 200  # recoveries read at a time
_R = SQLModel.metadata.tables["recoveries"]
_T = SQLModel.metadata.tables["recovery_transitions"]
#: What a filing reads of a transaction: never the number's cipher or blind index.
_PART_COLUMNS = tuple(
    _R.c[name]
    for name in (
        "id", "group_id", "part", "state", "channel_id", "carrier", "masked_number", "debit_fen", "fee_fen", "reason",
        "created_at",
    )
)  # fmt: skip


def line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


def groups_in_period(engine: Engine, first: dt.datetime, after: dt.datetime) -> list[str]:
    """The recoveries (group ids) created in the period or with a transaction moved in it,
    in the order they were created."""
    moved = select_columns(_T.c.recovery_id).where(_T.c.at >= first, _T.c.at < after)
    created = and_(_R.c.created_at >= first, _R.c.created_at < after)
    query = (
        select_columns(_R.c.group_id, func.min(_R.c.created_at).label("created"))
        .where(or_(created, _R.c.id.in_(moved)))
        .group_by(_R.c.group_id)
        .order_by("created", _R.c.group_id)
    )
    with UnitOfWork(engine) as uow:
        return [str(row[0]) for row in uow.session.execute(query).all()]


def recovery_lines(engine: Engine, group_ids: Sequence[str], after: dt.datetime, head_seq: int) -> Iterator[str]:
    """One line per recovery, read `BATCH` recoveries at a time."""
    for i in range(0, len(group_ids), BATCH):
        batch = list(group_ids[i : i + BATCH])
        with UnitOfWork(engine) as uow:
            yield from _batch(uow, batch, after, head_seq)


def _batch(uow: UnitOfWork, group_ids: list[str], after: dt.datetime, head_seq: int) -> list[str]:
    """The lines of a few recoveries, each read once per kind of record."""
    parts = uow.session.execute(
        select_columns(*_PART_COLUMNS).where(_R.c.group_id.in_(group_ids)).order_by(_R.c.group_id, _R.c.part)
    ).all()
    ids = [p.id for p in parts]
    ledger = _ledger(uow, ids, after)
    moves: dict[str, list[RecoveryTransition]] = {}
    for s in uow.session.exec(
        select(RecoveryTransition)
        .where(col(RecoveryTransition.recovery_id).in_(ids), col(RecoveryTransition.at) < after)
        .order_by(col(RecoveryTransition.at))
    ).all():
        moves.setdefault(s.recovery_id, []).append(s)
    audit: dict[str, list[AuditRecord]] = {}
    for r in uow.session.exec(
        select(AuditRecord)
        .where(col(AuditRecord.subject).in_([*ids, *group_ids]), col(AuditRecord.seq) <= head_seq)
        .order_by(col(AuditRecord.seq))
    ).all():
        audit.setdefault(r.subject, []).append(r)
    actors = {s.actor for steps in moves.values() for s in steps} | {r.actor for rs in audit.values() for r in rs}
    names = usernames(uow, actors)  # a consumer has no user name: their id stands
    out: list[str] = []
    for group_id in group_ids:
        mine = [p for p in parts if p.group_id == group_id]
        if not mine:
            continue
        subjects = dict.fromkeys([group_id, *(p.id for p in mine)])  # a group's id is its first part's
        about = sorted((r for s in subjects for r in audit.get(s, [])), key=lambda r: r.seq or 0)
        record = {
            "type": "recovery",
            "recovery": group_id,
            "masked_number": mine[0].masked_number,
            "channel": mine[0].channel_id,
            "carrier": mine[0].carrier,
            "created_at": mine[0].created_at.isoformat(),
            "parts": [_part(p, ledger.get(p.id, {}), moves.get(p.id, []), names) for p in mine],
            "audit": [_record(r, names) for r in about],
        }
        out.append(line(record))
    return out


def _ledger(uow: UnitOfWork, ids: list[str], after: dt.datetime) -> dict[str, dict[str, dict[str, Any]]]:
    """recovery id -> entry id -> the entry with its postings (debits first), in time order."""
    ledger: dict[str, dict[str, dict[str, Any]]] = {}
    for p in uow.session.exec(
        select(LedgerPosting)
        .where(col(LedgerPosting.recovery_id).in_(ids), col(LedgerPosting.at) < after)
        .order_by(
            col(LedgerPosting.at),
            event_rank(col(LedgerPosting.event)),
            col(LedgerPosting.entry_id),
            col(LedgerPosting.amount_fen).desc(),
        )
    ).all():
        entry = ledger.setdefault(p.recovery_id, {}).setdefault(
            p.entry_id,
            {
                "entry": p.entry_id,
                "event": p.event,
                "at": p.at.isoformat(),
                "reference": partner_reference(p.recovery_id, p.event),
                "postings": [],
            },
        )
        entry["postings"].append({"account": p.account, "amount_fen": p.amount_fen})
    return ledger


def _part(
    p: Any, entries: Mapping[str, dict[str, Any]], steps: Sequence[RecoveryTransition], names: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "id": p.id,
        "part": p.part,
        "state": p.state,
        "debit_fen": p.debit_fen,
        "fee_fen": p.fee_fen,
        "reason": masked_text(p.reason),
        "ledger": list(entries.values()),
        "transitions": [
            {
                "at": s.at.isoformat(),
                "event": s.event,
                "from": s.before,
                "to": s.after,
                "actor": s.actor,
                "actor_name": names.get(s.actor, s.actor),
                "reason": masked_text(s.reason),
            }
            for s in steps
        ],
    }


def _record(r: AuditRecord, names: Mapping[str, str]) -> dict[str, Any]:
    detail = json.loads(r.detail or "{}")
    return {
        "seq": r.seq,
        "at": r.at.isoformat(),
        "actor": r.actor,
        "actor_name": names.get(r.actor, r.actor),
        "action": r.action,
        "subject": r.subject,
        "detail": {str(k): masked_text(str(v)) for k, v in detail.items()},
        "hash": r.hash,
    }
