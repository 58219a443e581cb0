"""The carrier API over httpx: number lookup (the current carrier, after porting), balance,
debit, refund, and the status of a debit or refund by our reference.

Numbers travel only in request bodies, never in URLs (which end up in access logs).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import httpx

from core.adapters.partner_http import Requests, call
from core.domain.carriers import Carrier
from core.errors import OutcomeUnknown

PARTNER = "carrier"


class Outcome(enum.Enum):
    DONE = "done"
    REFUSED = "refused"


@dataclass(frozen=True)
class NumberInfo:
    current_carrier: Carrier
    allocated_carrier: Carrier
    active: bool

    @property
    def ported(self) -> bool:
        return self.current_carrier is not self.allocated_carrier


@dataclass(frozen=True)
class Operation:
    """A debit or refund as the carrier recorded it."""

    reference: str
    outcome: Outcome
    amount_fen: int
    reason: str = ""


class CarrierApi:
    def __init__(self, client: Requests, *, timeout_s: float = 5.0) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)

    def lookup(self, msisdn: str) -> NumberInfo:
        data = self._call("POST", "numbers/lookup", {"msisdn": msisdn})
        try:
            return NumberInfo(
                Carrier(data["current_carrier"]), Carrier(data["allocated_carrier"]), bool(data["active"])
            )
        except (KeyError, ValueError) as exc:
            raise OutcomeUnknown("carrier: unreadable lookup", partner=PARTNER) from exc

    def balance(self, msisdn: str) -> int:
        data = self._call("POST", "numbers/balance", {"msisdn": msisdn})
        return _fen(data, "balance_fen")

    def debit(self, reference: str, msisdn: str, amount_fen: int) -> Operation:
        """Take `amount_fen` off the number's balance. Refusals (insufficient balance, inactive
        number) come back as an `Operation` with outcome REFUSED, since the carrier records them
        under our reference too; an unknown outcome raises `OutcomeUnknown`."""
        return self._operation("debits", reference, {"msisdn": msisdn, "amount_fen": amount_fen})

    def refund(self, reference: str, msisdn: str, amount_fen: int, debit_reference: str) -> Operation:
        body = {"msisdn": msisdn, "amount_fen": amount_fen, "debit_reference": debit_reference}
        return self._operation("refunds", reference, body)

    def debit_status(self, reference: str) -> Operation | None:
        """None: the carrier never saw this reference, so the debit did not happen."""
        return self._status("debits", reference)

    def refund_status(self, reference: str) -> Operation | None:
        return self._status("refunds", reference)

    def _operation(self, kind: str, reference: str, body: dict[str, object]) -> Operation:
        data = call(self._client, PARTNER, "POST", kind, body=body, key=reference, timeout=self._timeout)
        assert data is not None
        return _read_operation(data, reference)

    def _status(self, kind: str, reference: str) -> Operation | None:
        data = call(self._client, PARTNER, "GET", f"{kind}/{reference}", timeout=self._timeout, missing_ok=True)
        return None if data is None else _read_operation(data, reference)

    def _call(self, method: str, path: str, body: dict[str, object]) -> dict[str, object]:
        data = call(self._client, PARTNER, method, path, body=body, timeout=self._timeout)
        assert data is not None
        return data


def _fen(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OutcomeUnknown(f"carrier: {name} is not a count of fen", partner=PARTNER)
    return value


def _read_operation(data: dict[str, object], reference: str) -> Operation:
    if data.get("reference") != reference:
        raise OutcomeUnknown("carrier: answered for another reference", partner=PARTNER)
    try:
        outcome = Outcome(data.get("status"))
    except ValueError as exc:
        raise OutcomeUnknown("carrier: unknown status", partner=PARTNER) from exc
    return Operation(reference, outcome, _fen(data, "amount_fen"), str(data.get("reason") or "")[:64])
