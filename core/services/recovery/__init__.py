"""Recoveries: the engine's service, one home per use case.

    views.py        what a recovery looks like (RecoveryView, Step, RecoveryRequest), built from rows
    submission.py   submit: validate → plan → limits and balance → risk → create, one transaction
    holdings.py     what a user and a number already have in recoveries (limits, held balance)
    transitions.py  every state change with its ledger entry, audit record and next partner call;
                    cancel (owner), review (operator), settle (the partners' answers)
    queries.py      reading: one recovery, a user's list, the review queue, a timeline
    standins.py     collaborators named for what they do, for tests and the fault simulation

Partner calls happen after commit, from the outbox (`core.services.recovery_worker`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.engine import Engine

from core.domain.catalog import Catalog
from core.domain.limits import PortalLimits
from core.security.fields import BlindIndex, FieldCipher
from core.services.audit import AuditLog
from core.services.recovery.queries import Queries
from core.services.recovery.submission import AgreementGate, NumberStatus, RiskControl, Submission
from core.services.recovery.transitions import Transitions


class RecoveryService(Submission, Transitions, Queries):
    """Every collaborator is required: the portal passes the real ones, tests pass stand-ins
    (`core.services.recovery.standins`)."""

    def __init__(
        self,
        engine: Engine,
        cipher: FieldCipher,
        number_index: BlindIndex,
        catalog: Callable[[], Catalog],
        limits: PortalLimits,
        *,
        risk: RiskControl,
        agreements: AgreementGate,
        carrier: NumberStatus,
        audit: AuditLog,
        four_eyes_above_fen: int,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        partner_fee: Callable[[str, int], int] = lambda channel_id, amount_fen: 0,
    ) -> None:
        self._engine = engine
        #: the payout partner's fee for one transaction through a channel (the live cost schedule)
        self.partner_fee = partner_fee
        self.four_eyes_above_fen = four_eyes_above_fen  # approving more takes a second operator
        self._cipher = cipher
        self._number_index = number_index
        self._catalog = catalog
        self.limits = limits
        self.risk = risk
        self.agreements = agreements
        self.carrier = carrier
        self.audit = audit
        self._clock = clock
