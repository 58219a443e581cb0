"""The audit chain: every state change and staff action, each record hashed over the one before
it (`core.domain.audit`), so that changing or removing any record breaks every hash after it.

Any service appends in its own transaction (`AuditLog.append`); the chain is one sequence, so an
append takes the chain's lock until its transaction ends. `verify_audit_chain` names the first
broken record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.audit import GENESIS, chain_hash, first_broken
from core.persistence.tables import AuditRecord
from core.persistence.uow import UnitOfWork


class AuditLog:
    def __init__(self, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._clock = clock

    def append(self, uow: UnitOfWork, actor: str, action: str, subject: str, detail: Mapping[str, str]) -> None:
        """One record, in the caller's transaction, chained to the last one."""
        if "audit_head" not in uow.memo:
            uow.lock("audit-chain")  # one chain: appends queue until this transaction ends
            last = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
            uow.memo["audit_head"] = last.hash if last is not None else GENESIS
        previous = str(uow.memo["audit_head"])
        record = {"actor": actor, "action": action, "subject": subject, "detail": dict(detail)}
        digest = chain_hash(previous, record)
        uow.session.add(
            AuditRecord(
                at=self._clock(),
                actor=actor[:64],
                action=action,
                subject=subject,
                detail=json.dumps(dict(detail), sort_keys=True),
                previous_hash=previous,
                hash=digest,
            )
        )
        uow.memo["audit_head"] = digest


def verify_audit_chain(engine: Engine) -> tuple[int, int | None]:
    """(records checked, sequence number of the first broken record or None)."""
    with UnitOfWork(engine) as uow:
        rows = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq))).all()
    chain = [
        (
            {"actor": r.actor, "action": r.action, "subject": r.subject, "detail": json.loads(r.detail or "{}")},
            r.previous_hash,
            r.hash,
        )
        for r in rows
    ]
    broken = first_broken(chain)
    return len(rows), (rows[broken].seq if broken is not None else None)
