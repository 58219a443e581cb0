"""The recovery engine wired in-process against sandbox partners over httpx transports, with
notices posted straight to the portal's notification handler: the rig the fault simulation,
the engine's tests and the benchmark share. It is wired by `wire_recoveries`, as the portal is;
only the collaborators differ (stand-ins that approve everything, need no agreement and do not
ask the carrier, named for exactly that)."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from core.adapters.carrier import CarrierApi
from core.adapters.partners import partner_links
from core.adapters.payouts import PayoutApi
from core.adapters.sandbox.carrier import SandboxCarrier
from core.adapters.sandbox.faults import Faults
from core.adapters.sandbox.notices import NoticeRelay
from core.adapters.sandbox.payouts import SandboxPayouts
from core.config import SANDBOX
from core.domain.access import Principal, Role
from core.domain.catalog import Catalog, PayoutForm
from core.domain.limits import PortalLimits
from core.domain.payee import luhn_ok
from core.persistence.db import engine_for
from core.persistence.tables import User, VerifiedNumber
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.services.recovery.standins import ApproveEverything, CarrierNotAsked, NoAgreementNeeded
from core.services.recovery.wiring import RecoveryWiring, wire_recoveries

EPOCH = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)
RIG_URL = "http://portal.test"  # where the rig's partners would post their notices


class SimClock:
    """One clock for the database (datetimes) and the sandboxes (seconds)."""

    def __init__(self, start: dt.datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance_to(self, moment: dt.datetime) -> None:
        self.now = max(self.now, moment)


@dataclass
class Rig(RecoveryWiring):
    """A wired recovery engine whose partners are the in-process sandboxes (`Rig.over`), with
    the keys that seal the numbers its consumers verify."""

    carrier: SandboxCarrier
    payouts: SandboxPayouts
    cipher: FieldCipher
    index: BlindIndex

    @classmethod
    def over(cls, wiring: RecoveryWiring, cipher: FieldCipher, index: BlindIndex) -> Rig:
        carrier, payouts = wiring.partners.sandbox_carrier, wiring.partners.sandbox_payouts
        if carrier is None or payouts is None:
            raise ValueError("a rig runs against the in-process sandbox partners")
        base = {f.name: getattr(wiring, f.name) for f in fields(RecoveryWiring)}
        return cls(**base, carrier=carrier, payouts=payouts, cipher=cipher, index=index)

    @property
    def carrier_api(self) -> CarrierApi:
        return self.partners.carrier

    @property
    def payout_apis(self) -> dict[str, PayoutApi]:
        return self.partners.payouts

    def consumer(self, phone: str) -> Principal:
        return add_verified_consumer(self.engine, self.cipher, self.index, phone, self.clock())


def add_verified_consumer(
    engine: Engine, cipher: FieldCipher, index: BlindIndex, phone: str, now: dt.datetime
) -> Principal:
    """A consumer who has verified `phone`, as the SMS sign-up leaves them (for simulations,
    benchmarks and tests that start past sign-up)."""
    number = parse_mobile(phone)
    with UnitOfWork(engine) as uow:
        user = User(role=Role.CONSUMER, created_at=now)
        uow.session.add(user)
        uow.session.flush()
        row = VerifiedNumber(
            user_id=user.id, number_cipher=b"", number_index=index(number.national), masked=number.masked
        )
        row.number_cipher = cipher.encrypt(number.national, table="verified_numbers", column="number", row_id=row.id)
        uow.session.add(row)
        uow.commit()
        return Principal(user.id, Role.CONSUMER)


def sim_secret(channel_id: str) -> bytes:
    """The rig's sandbox partners sign their notices with this."""
    return b"sim-secret:" + channel_id.encode()


def build_rig(
    engine: Engine,
    catalog: Catalog,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    seconds: Callable[[], float] | None = None,
    faults: Faults | None = None,
    limits: PortalLimits | None = None,
    settle_s: float = 0.0,
    timeout_s: float = 5.0,
    keys: tuple[bytes, bytes] | None = None,
    four_eyes_above_fen: int = 100_000,
) -> Rig:
    """Everything a recovery needs, wired in-process, on `clock` (datetimes) and `seconds`."""
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    seconds = seconds or time.time
    data_key, index_key = keys or (secrets.token_bytes(32), secrets.token_bytes(32))
    cipher, index = FieldCipher(data_key), BlindIndex(index_key, MOBILE_NUMBER)
    relay = NoticeRelay()
    channel_ids = [c.id for c in catalog.channels]
    partners = partner_links(
        SANDBOX,
        SANDBOX,
        channel_ids,
        timeout_s=timeout_s,
        secret_for=sim_secret,
        notifier=relay.client(),
        faults=faults,
        seconds=seconds,
    )
    wiring = wire_recoveries(
        engine,
        cipher,
        index,
        lambda: catalog,
        limits or PortalLimits(10**9, 10**9, 10**10),
        partners,
        relay,
        sim_secret,
        risk=ApproveEverything(),
        agreements=NoAgreementNeeded(),
        carrier=CarrierNotAsked(),
        four_eyes_above_fen=four_eyes_above_fen,
        public_url=RIG_URL,
        clock=clock,
        seconds=seconds,
    )
    rig = Rig.over(wiring, cipher, index)
    rig.payouts.settle_s = settle_s
    return rig


def memory_engine() -> Engine:
    """A private in-memory SQLite database with the current tables (fast, for simulation runs)."""
    engine = engine_for("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    return engine


def sample_payee(form: PayoutForm, i: int) -> str:
    """A payout account of the kind `form` takes: a wallet e-mail, or a card number with a valid
    check digit (vouchers need none)."""
    if form is PayoutForm.CASH_WALLET:
        return f"payee-{i}@example.com"
    body = f"62{i:013d}"
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("one check digit always fits")
