"""Stand-ins for the collaborators a submission needs, for the engine's own tests, the fault
simulation and the benchmarks — each named for exactly what it does, so that a missed wire can
never silently approve every recovery in the portal itself (the portal wires the real ones in
`core.bootstrap`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from core.domain.carriers import Carrier
from core.domain.risk import Assessment, Decision
from core.persistence.uow import UnitOfWork
from core.services.risk import Subject


class ApproveEverything:
    """Risk control that approves every submission within the limits, with no reasons."""

    def device_index(self, descriptor: str) -> str:
        return ""

    def payee_index(self, payee: str) -> str:
        return ""

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
        return Assessment(Decision.APPROVE, ())


class NoAgreementNeeded:
    """An agreement gate that lets every submission through."""

    def require(self, uow: UnitOfWork, user_id: str) -> None:
        return None


class CarrierNotAsked:
    """Nothing is asked of the carrier before the submission: no carrier change is seen and no
    balance is checked (the worker still looks the number up before it debits)."""

    def current(self, national: str) -> tuple[Carrier | None, int | None]:
        return None, None
