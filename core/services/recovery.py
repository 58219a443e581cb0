"""Recoveries: idempotent submission and every state change recorded in one transaction
together with its ledger entry, its audit record and the next partner call (the outbox).

Partner calls happen after commit, from the outbox (the worker comes next); this module only
ever writes what must be true together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.audit import GENESIS, chain_hash, first_broken
from core.domain.ledger import entry_for
from core.domain.recovery import RecoveryEvent, RecoveryState, next_state
from core.errors import InputError, PortalError
from core.persistence.tables import AuditRecord, LedgerPosting, OutboxMessage, Recovery, RecoveryTransition, new_id
from core.persistence.uow import UnitOfWork
from core.services.identity import NotAllowed, Principal

#: The partner call each state asks for next.
NEXT_CALL: Mapping[RecoveryState, str] = {
    RecoveryState.DEBITING: "carrier_debit",
    RecoveryState.PAYING: "payout",
    RecoveryState.REFUNDING: "carrier_refund",
}


class IdempotencyConflict(InputError):
    key = "error.recovery.idempotency"


class UnknownRecovery(PortalError):
    key = "error.recovery.unknown"


@dataclass(frozen=True)
class SubmitRequest:
    channel_id: str
    number_index: str
    debit_fen: int
    fee_fen: int

    def fingerprint(self) -> str:
        body = json.dumps(self.__dict__, sort_keys=True).encode()
        return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class RecoveryView:
    id: str
    state: RecoveryState
    debit_fen: int
    fee_fen: int
    created: bool  # False: an earlier submission with the same key is returned


class RecoveryService:
    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self._engine = engine
        self._clock = clock

    def submit(self, caller: Principal, key: str, request: SubmitRequest) -> RecoveryView:
        """Same key + same request: the first result. Same key + another request: refused.
        Submissions with one key queue on a lock, so at once they still make one recovery."""
        if not 8 <= len(key) <= 64:
            raise InputError("an idempotency key has 8 to 64 characters", key="error.recovery.key")
        if not 0 <= request.fee_fen < request.debit_fen:
            raise InputError("the fee must be below the amount", key="error.recovery.amounts")
        fingerprint = request.fingerprint()
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"submit:{caller.user_id}:{key}")
            existing = uow.session.exec(
                select(Recovery).where(Recovery.user_id == caller.user_id, Recovery.idempotency_key == key)
            ).first()
            if existing is not None:
                if existing.request_hash != fingerprint:
                    raise IdempotencyConflict("this key was used for a different request")
                return self._view(existing, created=False)
            now = self._clock()
            recovery = Recovery(
                user_id=caller.user_id,
                idempotency_key=key,
                request_hash=fingerprint,
                state=RecoveryState.CREATED.value,
                channel_id=request.channel_id,
                number_index=request.number_index,
                debit_fen=request.debit_fen,
                fee_fen=request.fee_fen,
                created_at=now,
                updated_at=now,
            )
            uow.session.add(recovery)
            uow.session.flush()
            self._audit(uow, caller.user_id, "submit", recovery.id, {"channel": request.channel_id})
            uow.commit()
            return self._view(recovery, created=True)

    def apply(
        self, caller: Principal | str, recovery_id: str, event: RecoveryEvent, *, reason: str = ""
    ) -> RecoveryView:
        """One state change with everything that must be true with it, in one transaction."""
        actor = caller if isinstance(caller, str) else caller.user_id
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"recovery:{recovery_id}")
            recovery = uow.session.get(Recovery, recovery_id)
            if recovery is None:
                raise UnknownRecovery("no such recovery")
            if isinstance(caller, Principal) and not caller.is_staff and caller.user_id != recovery.user_id:
                raise NotAllowed("not your recovery")
            before = RecoveryState(recovery.state)
            after = next_state(before, event)
            now = self._clock()
            recovery.state, recovery.updated_at = after.value, now
            uow.session.add(
                RecoveryTransition(
                    recovery_id=recovery.id,
                    before=before.value,
                    after=after.value,
                    event=event.value,
                    actor=actor,
                    reason=reason[:200],
                    at=now,
                )
            )
            entry = entry_for(recovery.id, event, debited_fen=recovery.debit_fen, fee_fen=recovery.fee_fen)
            if entry is not None:
                entry_id = new_id()
                for posting in entry.postings:
                    uow.session.add(
                        LedgerPosting(
                            entry_id=entry_id,
                            recovery_id=recovery.id,
                            event=event.value,
                            account=posting.account.value,
                            amount_fen=posting.amount_fen,
                            at=now,
                        )
                    )
            if after in NEXT_CALL:
                uow.session.add(OutboxMessage(recovery_id=recovery.id, kind=NEXT_CALL[after], available_at=now))
            self._audit(uow, actor, event.value, recovery.id, {"from": before.value, "to": after.value})
            uow.commit()
            return self._view(recovery, created=False)

    def _audit(self, uow: UnitOfWork, actor: str, action: str, subject: str, detail: Mapping[str, str]) -> None:
        uow.lock("audit-chain")  # one chain: appends queue
        last = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc())).first()
        previous = last.hash if last is not None else GENESIS
        record = {"actor": actor, "action": action, "subject": subject, "detail": dict(detail)}
        uow.session.add(
            AuditRecord(
                at=self._clock(),
                actor=actor,
                action=action,
                subject=subject,
                detail=json.dumps(dict(detail), sort_keys=True),
                previous_hash=previous,
                hash=chain_hash(previous, record),
            )
        )

    @staticmethod
    def _view(recovery: Recovery, *, created: bool) -> RecoveryView:
        return RecoveryView(recovery.id, RecoveryState(recovery.state), recovery.debit_fen, recovery.fee_fen, created)


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
