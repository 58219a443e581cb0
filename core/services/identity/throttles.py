"""What every sign-in path shares: counters that slow down guessing (`throttles`, by blind
index of the number, account or client address), and the record of every attempt
(`auth_events`, without secrets)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from core.domain.throttling import ThrottleRule
from core.errors import PortalError
from core.persistence.tables import AuthEvent, Throttle
from core.persistence.uow import UnitOfWork

log = logging.getLogger("core.services.identity")


class Throttled(PortalError):
    key = "error.signin.throttled"


class Throttles:
    _clock: Callable[[], dt.datetime]

    def _blocked(self, uow: UnitOfWork, key: str, now: dt.datetime) -> bool:
        row = uow.session.get(Throttle, key)
        return row is not None and row.blocked_until is not None and row.blocked_until > now

    def _count(self, uow: UnitOfWork, key: str, now: dt.datetime, rule: ThrottleRule) -> int:
        """One more failure under `key`; returns the count in the current window."""
        uow.lock(f"throttle:{key}")
        row = uow.session.get(Throttle, key)
        if row is None:
            row = Throttle(key=key, failures=0, window_started_at=now)
            uow.session.add(row)
        elif now - row.window_started_at > rule.window:
            row.failures, row.window_started_at, row.blocked_until = 0, now, None
        row.failures += 1
        wait = rule.wait_after(row.failures)
        row.blocked_until = now + wait if wait else None
        return row.failures

    def _event(
        self,
        uow: UnitOfWork,
        kind: str,
        outcome: str,
        *,
        user_id: str | None = None,
        subject: str = "",
        client: str = "",
        reason: str = "",
    ) -> None:
        uow.session.add(
            AuthEvent(
                at=self._clock(),
                kind=kind,
                outcome=outcome,
                user_id=user_id,
                subject=subject,
                client=client,
                reason=reason,
            )
        )
        log.info("auth %s %s user=%s reason=%s", kind, outcome, user_id or "-", reason or "-")
