"""Submitting a recovery: validate → plan → check the limits and the balance → assess the risk →
create the transactions and move them as the risk rules decided, in one transaction.

Same key + same request: the first result. Same key + another request: refused. A duplicate that
arrives while the first is still being written is refused (on PostgreSQL; SQLite writes one at a
time, so there it simply sees the first result). A number's balance is promised to a recovery
from its submission until its debit is confirmed: a second submission may take only what is
left, checked under the same per-number lock as the limits.

The checks the consumer journey needs are collaborators, never optional: risk control, the
agreement, and what the carrier says of the number. Tests and the fault simulation pass
stand-ins named for what they do (`core.services.recovery.standins`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine

from core.adapters.carrier import CarrierApi
from core.domain.access import NotAllowed, Principal, require_consumer
from core.domain.carriers import Carrier
from core.domain.catalog import Catalog, Channel
from core.domain.limits import LimitExceeded, Part, PortalLimits, limit_problems, plan_parts, serves
from core.domain.payee import parse_payee
from core.domain.quotes import transaction_size
from core.domain.recovery import RecoveryEvent, RecoveryState
from core.domain.risk import Assessment, Decision
from core.errors import InputError, PartnerError
from core.persistence.fast_reads import Read, snapshot
from core.persistence.tables import QuoteLock, Recovery, VerifiedNumber, new_id
from core.persistence.uow import UnitOfWork
from core.phones import MobileNumber, parse_mobile
from core.security.fields import BlindIndex, FieldCipher
from core.services.audit import AuditLog
from core.services.recovery.holdings import committed_on, usage
from core.services.recovery.transitions import ENGINE, Settling
from core.services.recovery.views import (
    RECOVERY_COLUMNS,
    PlainRecovery,
    RecoveryRequest,
    RecoveryView,
    row_of,
    view_of,
)
from core.services.risk import Subject


class IdempotencyConflict(InputError):
    key = "error.recovery.idempotency"


class SubmissionInFlight(InputError):
    key = "error.recovery.in_flight"


class QuoteExpired(InputError):
    key = "error.quote.expired"


class QuoteUnusable(InputError):
    key = "error.quote.unusable"


class BalanceCommitted(InputError):
    """The amount is more than the number's balance less what open recoveries already hold."""

    key = "error.recovery.balance_committed"


class CarrierUnavailable(InputError):
    key = "error.journey.number_unavailable"


class ChannelNotServed(InputError):
    """The channel takes no balance from the carrier the number is with (the worker would fail
    the debit: refused here, before anything is written)."""

    key = "error.recovery.not_served"


class RiskControl(Protocol):
    def device_index(self, descriptor: str) -> str: ...
    def payee_index(self, payee: str) -> str: ...
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
    ) -> Assessment: ...


class AgreementGate(Protocol):
    def require(self, uow: UnitOfWork, user_id: str) -> object: ...


class NumberStatus(Protocol):
    def current(self, national: str) -> tuple[Carrier | None, int | None]:
        """(the carrier the number is with now, its balance in fen); None where not known."""
        ...


class AskTheCarrier:
    """What the carrier's own API says of a number. A carrier that cannot answer stops the
    submission: what it holds cannot be checked against what is already promised."""

    def __init__(self, carrier: CarrierApi) -> None:
        self._carrier = carrier

    def current(self, national: str) -> tuple[Carrier | None, int | None]:
        try:
            info = self._carrier.lookup(national)
            return info.current_carrier, self._carrier.balance(national) if info.active else 0
        except PartnerError as error:
            raise CarrierUnavailable("the carrier did not answer; try again in a moment") from error


@dataclass(frozen=True)
class Checked:
    """A submission that passed the checks that need no database."""

    key: str
    number: MobileNumber
    index: str
    channel: Channel
    payee: str
    amount_fen: int
    fingerprint: str
    device_index: str  # the keyed hash risk control knows the device by ("" when unknown)


_RECOVERIES = Recovery.__table__  # type: ignore[attr-defined]
#: a recovery this user submitted under this idempotency key, if any
_SEEN: Read[tuple[str]] = Read(
    lambda: (
        core_select(_RECOVERIES.c.id)
        .where(_RECOVERIES.c.user_id == bindparam("user"), _RECOVERIES.c.idempotency_key == bindparam("key"))
        .limit(1)
    )
)
#: the recovery (every part, every column) an earlier submission with this key made
_EARLIER: Read[PlainRecovery] = Read(
    lambda: (
        core_select(*RECOVERY_COLUMNS)
        .where(_RECOVERIES.c.user_id == bindparam("user"), _RECOVERIES.c.idempotency_key == bindparam("key"))
        .order_by(_RECOVERIES.c.part)
    ),
    row=PlainRecovery,
)
_NUMBERS = VerifiedNumber.__table__  # type: ignore[attr-defined]
#: the caller verified this number
_VERIFIED: Read[tuple[str]] = Read(
    lambda: (
        core_select(_NUMBERS.c.id)
        .where(_NUMBERS.c.number_index == bindparam("number"), _NUMBERS.c.user_id == bindparam("user"))
        .limit(1)
    )
)


class Submission:
    _engine: Engine
    _clock: Callable[[], dt.datetime]
    _cipher: FieldCipher
    _number_index: BlindIndex
    _catalog: Callable[[], Catalog]
    limits: PortalLimits
    risk: RiskControl
    agreements: AgreementGate
    carrier: NumberStatus
    audit: AuditLog
    move: Callable[..., None]
    partner_fee: Callable[[str, int], int]

    def submit(self, caller: Principal, key: str, request: RecoveryRequest) -> RecoveryView:
        checked = self._validate(caller, key, request)
        # a retry is answered without asking the carrier again; whether it is one is read
        # without the write lock (a snapshot), and only a retry reads its recovery in full
        with snapshot(self._engine) as reader:
            seen = reader.rows(_SEEN, user=caller.user_id, key=checked.key)
        if seen:
            with UnitOfWork(self._engine) as uow:
                earlier = self._earlier(uow, caller, checked)
            if earlier is not None:
                return earlier
        current, balance = self.carrier.current(checked.number.national)
        carrier = current or checked.number.allocated_carrier
        if carrier is not None and not serves(checked.channel, carrier):
            raise ChannelNotServed(f"{checked.channel.id} takes no balance from {carrier.value}")
        # batched: its recoveries, transitions, outbox messages and audit records go in at commit (it
        # reads none back)
        # without the ORM (its reads and writes are compile-once statements; on a SQLite file
        # outside the pool, `core.persistence.kept_writes`), but for a locked quote, which it uses up
        with UnitOfWork(self._engine, batched=True, orm=bool(request.quote_lock_id)) as uow:
            if not uow.try_lock(f"submit:{caller.user_id}:{checked.key}"):
                raise SubmissionInFlight("the same request is being processed; look again in a moment")
            # before anything is read: an account being deleted holds this lock while it checks
            # that nothing is under way, so a recovery can never start for an erased account
            uow.lock(f"limits:user:{caller.user_id}")
            retried = uow.rows(_SEEN, user=caller.user_id, key=checked.key)
            earlier = self._earlier(uow, caller, checked) if retried else None
            if earlier is not None:
                return earlier
            self._require_verified(uow, caller, checked.index)
            self.agreements.require(uow, caller.user_id)
            now, group_id = self._clock(), new_id()
            plan, lock = self._plan(uow, caller, request, checked, now, group_id)
            self._check_limits(uow, caller, checked, balance, now)
            assessment = self._assess(uow, caller, request, checked, now, current, lock)
            rows = self._create(uow, caller, request, checked, plan, assessment, now, group_id)
            for row in rows:
                row["carrier"] = carrier.value if carrier is not None else ""
            self._decide(uow, rows, assessment, now)
            uow.commit()
            return view_of([row_of(row) for row in rows], created=True)  # as written: nothing is read back

    def _validate(self, caller: Principal, key: str, request: RecoveryRequest) -> Checked:
        key = key.strip()
        if not 8 <= len(key) <= 64 or not key.isprintable():
            raise InputError("an idempotency key has 8 to 64 printable characters", key="error.recovery.key")
        require_consumer(caller, "only a consumer recovers their own balance")
        number = parse_mobile(request.phone)
        channel = self._catalog().by_id().get(request.channel_id)
        if channel is None:
            raise InputError("no such channel", key="error.recovery.channel")
        payee = parse_payee(channel.payout_form, request.payee)  # one stored form, whoever typed it
        amount = request.amount_fen
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InputError("the amount must be a positive number of fen", key="error.recovery.amount")
        index = self._number_index(number.national)
        fingerprint = hashlib.sha256(
            json.dumps([request.channel_id, index, amount, payee, request.quote_lock_id]).encode()
        ).hexdigest()
        return Checked(key, number, index, channel, payee, amount, fingerprint, self.risk.device_index(request.device))

    @staticmethod
    def _earlier(uow: UnitOfWork, caller: Principal, checked: Checked) -> RecoveryView | None:
        """The recovery an earlier submission with this key made, if the request is the same."""
        earlier = cast(list[Recovery], uow.rows(_EARLIER, user=caller.user_id, key=checked.key))
        if not earlier:
            return None
        if earlier[0].request_hash != checked.fingerprint:
            raise IdempotencyConflict("this key was used for a different request")
        return view_of(earlier, created=False)

    @staticmethod
    def _require_verified(uow: UnitOfWork, caller: Principal, index: str) -> None:
        if not uow.rows(_VERIFIED, number=index, user=caller.user_id):
            raise NotAllowed("verify this number first", key="error.recovery.number_not_verified")

    def _plan(
        self,
        uow: UnitOfWork,
        caller: Principal,
        request: RecoveryRequest,
        checked: Checked,
        now: dt.datetime,
        group_id: str,
    ) -> tuple[list[Part], QuoteLock | None]:
        """The linked transactions: those of the locked quote (used up here), or cut afresh."""
        if not request.quote_lock_id:
            return plan_parts(checked.channel, checked.amount_fen), None
        lock = uow.session.get(QuoteLock, request.quote_lock_id)
        if lock is None or lock.user_id != caller.user_id:
            raise QuoteUnusable("this quote is not yours or does not exist")
        if lock.used_by is not None:
            raise QuoteUnusable("this quote was already used for a recovery", key="error.quote.used")
        asked = (checked.index, checked.channel.id, checked.amount_fen)
        if (lock.number_index, lock.channel_id, lock.amount_fen) != asked:
            raise QuoteUnusable("the request does not match the locked quote")
        if now > lock.expires_at:
            raise QuoteExpired("the quote's ten minutes are over; look at the new quote")
        lock.used_by = group_id
        uow.session.add(lock)
        return [Part(debit, fee) for debit, fee in json.loads(lock.plan)], lock

    def _check_limits(
        self, uow: UnitOfWork, caller: Principal, checked: Checked, balance: int | None, now: dt.datetime
    ) -> None:
        """The portal's and the channel's limits, then the balance open recoveries leave."""
        uow.lock(f"limits:number:{checked.index}")
        used = usage(uow, now, caller.user_id, checked.index, checked.channel.id)
        problems = limit_problems(checked.amount_fen, checked.channel, self.limits, used)
        if problems:
            first = problems[0]
            raise LimitExceeded(f"over a limit ({first.key})", key=first.key, **first.params)
        if balance is None:
            return
        committed = sum(committed_on(uow, checked.index).values())
        left = max(0, balance - committed)
        if checked.amount_fen > left:
            raise BalanceCommitted(
                "open recoveries already hold this balance", balance_fen=balance, committed_fen=committed, left_fen=left
            )

    def _assess(
        self,
        uow: UnitOfWork,
        caller: Principal,
        request: RecoveryRequest,
        checked: Checked,
        now: dt.datetime,
        current: Carrier | None,
        lock: QuoteLock | None,
    ) -> Assessment:
        subject = Subject(caller.user_id, checked.index, checked.device_index, self.risk.payee_index(checked.payee))
        return self.risk.assess(
            uow,
            subject,
            checked.amount_fen,
            now,
            watched_limits=[limit for limit in (transaction_size(checked.channel, None),) if limit],
            allocated=checked.number.allocated_carrier,
            current=current,
            quoted=Carrier.parse(lock.carrier) if lock is not None else None,
        )

    def _create(
        self,
        uow: UnitOfWork,
        caller: Principal,
        request: RecoveryRequest,
        checked: Checked,
        plan: list[Part],
        assessment: Assessment,
        now: dt.datetime,
        group_id: str,
    ) -> list[dict[str, Any]]:
        """The transactions' rows (every column), written to the batched unit of work first, so
        that they go in before the rows that refer to them; `_decide` then moves them, and they
        go in at commit with the state it leaves them in."""
        if not uow.batched:
            raise RuntimeError("a submission writes its rows in a batched unit of work")
        encrypt, reasons = self._cipher.encrypt, assessment.to_json()
        rows = []
        for i, part in enumerate(plan, start=1):
            row_id = group_id if i == 1 else new_id()
            row = {
                "id": row_id,
                "group_id": group_id,
                "part": i,
                "parts": len(plan),
                "user_id": caller.user_id,
                "idempotency_key": checked.key,
                "request_hash": checked.fingerprint,
                "state": RecoveryState.CREATED.value,
                "channel_id": checked.channel.id,
                "carrier": "",
                "number_index": checked.index,
                "number_cipher": encrypt(checked.number.national, table="recoveries", column="number", row_id=row_id),
                "masked_number": checked.number.masked,
                "payee_cipher": encrypt(checked.payee, table="recoveries", column="payee", row_id=row_id),
                "debit_fen": part.debit_fen,
                "fee_fen": part.fee_fen,
                "partner_fee_fen": self.partner_fee(checked.channel.id, part.debit_fen),
                "reason": "",
                "device_index": checked.device_index,
                "quote_lock_id": request.quote_lock_id,
                "risk_decision": assessment.decision.value,
                "risk_reasons": reasons,
                "created_at": now,
                "updated_at": now,
            }
            uow.write(_RECOVERIES, row)
            rows.append(row)
        details = {"channel": checked.channel.id, "parts": str(len(plan))}
        self.audit.append(uow, caller.user_id, "submit", group_id, details)
        return rows

    def _decide(self, uow: UnitOfWork, rows: list[dict[str, Any]], assessment: Assessment, now: dt.datetime) -> None:
        """Move every transaction as the risk rules decided: on to the debit, to review, or
        refused. Each row is moved as a `Settling` (what `move` changes), and the row, not yet
        sent, takes the state, time and reason the moves left."""
        rules = ",".join(r.rule for r in assessment.reasons)
        approval = "risk: approve" if rules else "within limits"
        for row in rows:
            recovery = Settling(
                row["id"], row["state"], row["reason"], row["debit_fen"], row["fee_fen"], row["partner_fee_fen"]
            )
            if assessment.decision is Decision.APPROVE:
                self.move(uow, recovery, RecoveryEvent.APPROVE, ENGINE, approval, now)
                self.move(uow, recovery, RecoveryEvent.START_DEBIT, ENGINE, "approved", now)
            elif assessment.decision is Decision.REVIEW:
                self.move(uow, recovery, RecoveryEvent.REVIEW, ENGINE, f"risk: {rules}", now)
            else:
                self.move(uow, recovery, RecoveryEvent.REJECT, ENGINE, f"risk: {rules}", now)
            row.update(state=recovery.state, reason=recovery.reason, updated_at=recovery.updated_at)
