"""The recovery engine wired together: the service, the partners' notices coming in and the
worker's partner calls going out, over one set of partner clients. The portal
(`core.bootstrap`) and the fault simulation's rig (`core.simulation.rig`) both wire it here,
each passing the collaborators it means: the portal its real risk control, agreements and
carrier check; the rig the stand-ins named for what they do."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.adapters.partners import Partners
from core.adapters.payouts import notify_url
from core.adapters.sandbox.notices import NoticeRelay
from core.domain.catalog import Catalog
from core.domain.limits import PortalLimits
from core.security.fields import BlindIndex, FieldCipher
from core.services.audit import AuditLog
from core.services.payout_notices import PayoutNoticeService
from core.services.recovery import RecoveryService
from core.services.recovery.submission import AgreementGate, NumberStatus, RiskControl
from core.services.recovery_worker import RecoveryWorker


@dataclass
class RecoveryWiring:
    engine: Engine
    recoveries: RecoveryService
    notices: PayoutNoticeService
    partners: Partners
    catalog: Callable[[], Catalog]
    public_url: str  # where partners post their notices
    clock: Callable[[], dt.datetime]

    def worker(self, **options: Any) -> RecoveryWorker:
        """A recovery worker over this engine (one per thread or process)."""
        options.setdefault("clock", self.clock)
        public_url = self.public_url
        return RecoveryWorker(
            self.engine,
            self.recoveries,
            self.partners.carrier,
            self.partners.payouts,
            self.catalog,
            lambda channel_id: notify_url(public_url, channel_id),
            **options,
        )


def wire_recoveries(
    engine: Engine,
    cipher: FieldCipher,
    index: BlindIndex,
    catalog: Callable[[], Catalog],
    limits: PortalLimits,
    partners: Partners,
    relay: NoticeRelay,
    secret_for: Callable[[str], bytes],
    *,
    risk: RiskControl,
    agreements: AgreementGate,
    carrier: NumberStatus,
    four_eyes_above_fen: int,
    public_url: str,
    clock: Callable[[], dt.datetime],
    seconds: Callable[[], float] = time.time,
    partner_fee: Callable[[str, int], int] = lambda channel_id, amount_fen: 0,
) -> RecoveryWiring:
    """The service over `partners`, and the handler of their notices connected to `relay` (the
    notifier the in-process sandbox payouts were given). Notices are accepted only for the
    channels the partners serve, signed with `secret_for(channel)`."""
    recoveries = RecoveryService(
        engine,
        cipher,
        index,
        catalog,
        limits,
        risk=risk,
        agreements=agreements,
        carrier=carrier,
        audit=AuditLog(clock),
        four_eyes_above_fen=four_eyes_above_fen,
        clock=clock,
        partner_fee=partner_fee,
    )
    served = set(partners.payouts)
    notices = PayoutNoticeService(engine, recoveries, lambda c: secret_for(c) if c in served else None, clock=seconds)
    relay.connect(notices)
    return RecoveryWiring(engine, recoveries, notices, partners, catalog, public_url, clock)
