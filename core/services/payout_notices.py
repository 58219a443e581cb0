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


class PayoutNotices:
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
        try:
            notice = json.loads(body)
            recovery_id = recovery_of(str(notice["reference"]), "payout")
            status, amount = str(notice["status"]), notice["amount_fen"]
            event_id = str(notice.get("event_id", ""))[:64]
        except (ValueError, KeyError, TypeError):
            return NoticeAnswer(400, {"error": "bad_notice"})
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
            reason=str(notice.get("reason") or status)[:64],
            audit={"event_id": event_id, "status": status},
        )
        return NoticeAnswer(200, {"accepted": True, "applied": applied})
