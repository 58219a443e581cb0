"""Risk control around a submission: the facts the rules need, read in the submission's own
transaction (so two submissions at once see each other), and the deny list.

The rules themselves are pure (`core.domain.risk`); this module only gathers what they read.
Every attempt counts towards velocity and structuring except one its owner cancelled: a
refused attempt is still an attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.access import Principal, require_operator
from core.domain.carriers import Carrier
from core.domain.payee import canonical_payee
from core.domain.recovery import RecoveryState
from core.domain.risk import Assessment, Past, RiskFacts, RiskThresholds, assess
from core.errors import InputError
from core.persistence.tables import DenyEntry, Recovery, User
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import MOBILE_NUMBER, BlindIndex

DENY_KINDS = ("user", "number", "device", "payee")
NOT_COUNTED = (RecoveryState.CANCELLED.value,)


@dataclass(frozen=True)
class Subject:
    """Who and what a submission is about, as the rules see them (blind indexes only)."""

    user_id: str
    number_index: str
    device_index: str  # "" when the device is unknown (the command line)
    payee_index: str


@dataclass(frozen=True)
class DenyView:
    kind: str
    key: str
    reason: str
    added_by: str
    added_at: dt.datetime


class RiskService:
    def __init__(self, engine: Engine, index_key: bytes, thresholds: RiskThresholds, limit_fen: int) -> None:
        self._engine = engine
        self.thresholds = thresholds
        self.limit_fen = limit_fen
        self._number_index = BlindIndex(index_key, MOBILE_NUMBER)
        self._device_index = BlindIndex(index_key, "device")
        self._payee_index = BlindIndex(index_key, "payee")

    def device_index(self, descriptor: str) -> str:
        """A device as the rules know it: a keyed hash of what the browser sent (address
        prefix and user agent), never the raw values."""
        return self._device_index(descriptor) if descriptor else ""

    def payee_index(self, payee: str) -> str:
        """A payee as the deny list knows it: the keyed hash of its one canonical form."""
        return self._payee_index(canonical_payee(payee))

    # --- a decision ----------------------------------------------------------------------------

    def assess(
        self,
        uow: UnitOfWork,
        subject: Subject,
        amount_fen: int,
        now: dt.datetime,
        *,
        watched_limits: Sequence[int] = (),
        allocated: Carrier | None = None,
        current: Carrier | None = None,
        quoted: Carrier | None = None,
    ) -> Assessment:
        """The rules' decision on one submission, from the history in this transaction."""
        t = self.thresholds
        since = now - dt.timedelta(seconds=max(t.velocity_window_s, t.structuring_window_s))
        user = uow.session.get(User, subject.user_id)
        facts = RiskFacts(
            now=now,
            amount_fen=amount_fen,
            account_created_at=user.created_at if user is not None else now,
            user_history=self._history(uow, since, col(Recovery.user_id) == subject.user_id),
            number_history=self._history(uow, since, col(Recovery.number_index) == subject.number_index),
            device_history=(
                self._history(uow, since, col(Recovery.device_index) == subject.device_index)
                if subject.device_index
                else ()
            ),
            limit_fen=self.limit_fen,
            watched_limits=tuple(sorted({t.review_amount_fen, self.limit_fen, *watched_limits})),
            allocated_carrier=allocated,
            current_carrier=current,
            quoted_carrier=quoted,
            denied=self._denied(uow, subject),
        )
        return assess(facts, t)

    @staticmethod
    def _history(uow: UnitOfWork, since: dt.datetime, who: Any) -> tuple[Past, ...]:
        """Earlier recoveries (one per group, its whole amount) created since `since`."""
        rows = uow.session.exec(
            select(func.min(Recovery.created_at), func.sum(Recovery.debit_fen))
            .where(who, col(Recovery.created_at) >= since, col(Recovery.state).not_in(NOT_COUNTED))
            .group_by(Recovery.group_id)
        ).all()
        return tuple(Past(at, int(amount)) for at, amount in rows)

    @staticmethod
    def _denied(uow: UnitOfWork, subject: Subject) -> frozenset[str]:
        keys = {
            f"user:{subject.user_id}": "user",
            f"number:{subject.number_index}": "number",
            f"payee:{subject.payee_index}": "payee",
        }
        if subject.device_index:
            keys[f"device:{subject.device_index}"] = "device"
        found = uow.session.exec(select(DenyEntry.key).where(col(DenyEntry.key).in_(list(keys)))).all()
        return frozenset(keys[key] for key in found)

    # --- the deny list (operators) ---------------------------------------------------------------

    def deny(self, caller: Principal, kind: str, value: str, reason: str) -> str:
        """Put a user id, a number, a device descriptor or a payee on the deny list; returns its key."""
        require_operator(caller, "only an operator manages risk")
        key = self._key(kind, value)
        reason = reason.strip()
        if not 3 <= len(reason) <= 200:
            raise InputError("give a reason (3 to 200 characters)", key="error.review.reason")
        with UnitOfWork(self._engine) as uow:
            if uow.session.get(DenyEntry, key) is None:
                uow.session.add(DenyEntry(key=key, kind=kind, reason=reason, added_by=caller.user_id))
                uow.commit()
        return key

    def allow(self, caller: Principal, kind: str, value: str) -> bool:
        """Take an entry off the deny list; False when it was not on it."""
        require_operator(caller, "only an operator manages risk")
        key = self._key(kind, value)
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(DenyEntry, key)
            if row is None:
                return False
            uow.session.delete(row)
            uow.commit()
        return True

    def deny_list(self, caller: Principal) -> list[DenyView]:
        require_operator(caller, "only an operator manages risk")
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(select(DenyEntry).order_by(col(DenyEntry.added_at))).all()
        return [DenyView(r.kind, r.key, r.reason, r.added_by, r.added_at) for r in rows]

    def _key(self, kind: str, value: str) -> str:
        if kind not in DENY_KINDS:
            raise InputError(f"deny a user, number, device or payee, not {kind[:20]!r}", key="error.review.kind")
        value = value.strip()
        if not value:
            raise InputError("say what to deny", key="error.review.kind")
        if kind == "number":
            value = self._number_index(parse_mobile(value).national)
        elif kind == "device" and not (len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
            raise InputError("name a device by its 64-character index", key="error.review.kind")
        elif kind == "payee":
            value = self.payee_index(value)
        return f"{kind}:{value}"
