"""Payout partners' notifications: signature-checked, accepted at least once, duplicates
harmless. A notice settles a payout only while it is still being paid; any later copy (or
one that arrives after the worker asked for status and settled it) changes nothing and is
still answered 200, so the partner stops sending it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.adapters.payouts import signature_valid
from core.domain.recovery import RecoveryEvent, RecoveryState
from core.persistence.tables import Recovery
from core.persistence.uow import UnitOfWork
from core.services.recovery import RecoveryService
from core.services.recovery_worker import recovery_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoticeAnswer:
    status_code: int
    body: dict[str, object]


@dataclass(frozen=True)
class Notice:
    reference: str
    status: str
    amount_fen: int
    event_id: str
    reason: str


def _read_notice(body: bytes) -> Notice | None:
    """The notice a signed body carries, or None if it is not one: JSON an attacker with a
    leaked secret (or a broken partner) shapes at will must not be able to crash the route."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # JSON, UTF-8 and int-digit errors are ValueErrors
        return None
    if not isinstance(data, dict):
        return None
    reference, status, amount = data.get("reference"), data.get("status"), data.get("amount_fen")
    event_id, reason = data.get("event_id"), data.get("reason")  # both optional
    event_id, reason = "" if event_id is None else event_id, "" if reason is None else reason
    if not (isinstance(reference, str) and isinstance(status, str) and isinstance(event_id, str)):
        return None
    if not isinstance(reason, str) or isinstance(amount, bool) or not isinstance(amount, int):
        return None
    return Notice(reference, status, amount, event_id[:64], reason)


class PayoutNoticeService:
    def __init__(
        self,
        engine: Engine,
        recoveries: RecoveryService,
        secret_for: Callable[[str], bytes | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._recoveries = recoveries
        self._secret_for = secret_for
        self._clock = clock
        self.received = 0

    def receive(self, channel_id: str, body: bytes, signature: str | None) -> NoticeAnswer:
        secret = self._secret_for(channel_id)
        if secret is None:
            return NoticeAnswer(404, {"error": "unknown_channel"})
        if not signature_valid(secret, body, signature, self._clock()):
            log.warning("payout notice for %s with a bad signature refused", channel_id)
            return NoticeAnswer(401, {"error": "bad_signature"})
        notice = _read_notice(body)
        if notice is None:
            return NoticeAnswer(400, {"error": "bad_notice"})
        recovery_id = recovery_of(notice.reference, "payout")
        status, amount, event_id = notice.status, notice.amount_fen, notice.event_id
        if recovery_id is None:
            return NoticeAnswer(400, {"error": "bad_reference"})
        with UnitOfWork(self._engine) as uow:
            recovery = uow.session.get(Recovery, recovery_id)
        if recovery is None or recovery.channel_id != channel_id:
            return NoticeAnswer(404, {"error": "unknown_reference"})
        if amount != recovery.payout_fen:
            log.error("payout notice for %s names %r fen, not what was paid out", recovery_id, amount)
            return NoticeAnswer(409, {"error": "amount_mismatch"})
        self.received += 1
        events = {"paid": (RecoveryEvent.PAYOUT_CONFIRMED,), "failed": (RecoveryEvent.PAYOUT_FAILED,)}.get(status)
        if events is None:  # still processing: nothing to do yet
            return NoticeAnswer(200, {"accepted": True, "applied": False})
        applied = self._recoveries.settle(
            recovery_id,
            RecoveryState.PAYING,
            events,
            actor=f"partner:{channel_id}"[:64],
            reason=(notice.reason or status)[:64],
            audit={"event_id": event_id, "status": status},
        )
        return NoticeAnswer(200, {"accepted": True, "applied": applied})
