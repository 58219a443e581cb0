"""A sandbox carrier: subscriber balances, ported numbers, and its own record of every debit
and refund by the caller's reference (the idempotency key), with the fault knobs of `faults`.

Routes (JSON; numbers only in bodies):
    POST /numbers/lookup    {"msisdn"}                          -> current and allocated carrier
    POST /numbers/balance   {"msisdn"}                          -> {"balance_fen"}
    POST /debits            {"msisdn", "amount_fen"}            Idempotency-Key: reference
    POST /refunds           {"msisdn", "amount_fen", "debit_reference"}
    GET  /debits/{ref}, GET /refunds/{ref}                      -> the record, or 404
    POST /_sandbox/knobs, POST /_sandbox/accounts {"msisdn", "balance_fen", "carrier"?}

A number nobody has set up has a balance derived from its digits (50 to 800 CNY) and is on the
carrier its segment was allocated to.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.adapters.sandbox import bad_request, posted_object
from core.adapters.sandbox.books import PartnerBook
from core.adapters.sandbox.faults import Faults, knobs_answer
from core.domain.carriers import Carrier
from core.errors import InputError
from core.phones import parse_mobile


@dataclass
class Record:
    reference: str
    kind: str  # debit | refund
    msisdn: str
    amount_fen: int
    status: str  # done | refused
    reason: str = ""
    debit_reference: str = ""
    replays: int = 0  # later requests with the same key, answered from this record

    def public(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "status": self.status,
            "amount_fen": self.amount_fen,
            "reason": self.reason,
        }


@dataclass
class SandboxCarrier:
    faults: Faults = field(default_factory=Faults)
    balances: dict[str, int] = field(default_factory=dict)
    carriers: dict[str, Carrier] = field(default_factory=dict)  # ported numbers: their current carrier
    inactive: set[str] = field(default_factory=set)
    debits: dict[str, Record] = field(default_factory=dict)
    refunds: dict[str, Record] = field(default_factory=dict)
    book: PartnerBook | None = None  # its own books, where its statements come from
    clock: Callable[[], float] = time.time
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: each number's allocated carrier as the number plan names it, worked out once (a carrier
    #: keeps its numbers on file; parsing one costs tens of microseconds)
    _allocated: dict[str, Carrier | None] = field(default_factory=dict, repr=False)

    def balance_of(self, msisdn: str) -> int:
        """A number's balance: as set or last moved (here, or by another process of this sandbox
        or before its restart: its book keeps it), else one made up from its digits."""
        with self._lock:
            if msisdn not in self.balances:
                kept = self.book.balance(msisdn) if self.book is not None else None
                digest = int.from_bytes(hashlib.sha256(msisdn.encode()).digest()[:4], "big")
                self.balances[msisdn] = kept if kept is not None else 5_000 + digest % 75_001  # 50.00 to 800.00 CNY
            return self.balances[msisdn]

    def set_balance(self, msisdn: str, balance_fen: int) -> None:
        """A number's balance from now on, kept in the book too."""
        with self._lock:
            self.balances[msisdn] = balance_fen
            if self.book is not None:
                self.book.keep_balance(msisdn, balance_fen)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.strip("/")
        body = posted_object(request)
        if body is None:
            return bad_request("bad_json")
        if path == "_sandbox/knobs" and request.method == "POST":
            return knobs_answer(self.faults.update, body)
        if path == "_sandbox/accounts" and request.method == "POST":
            return self._set_up(body)
        refused = self.faults.before(request)
        if refused is not None:
            return refused
        with self._lock:
            response = self._route(request, path, body)
        if request.method == "POST" and response.status_code < 500:
            self.faults.after(request)
        return response

    def _route(self, request: httpx.Request, path: str, body: dict[str, Any]) -> httpx.Response:
        parts = path.split("/")
        if request.method == "GET" and len(parts) == 2 and parts[0] in ("debits", "refunds"):
            record = (self.debits if parts[0] == "debits" else self.refunds).get(parts[1])
            if record is not None:
                return httpx.Response(200, json=record.public())
            return self._from_book(parts[0][:-1], parts[1])
        if request.method != "POST":
            return httpx.Response(404, json={"error": "not_found"})
        msisdn = body.get("msisdn")
        if not isinstance(msisdn, str):
            return httpx.Response(400, json={"error": "msisdn_required"})
        if path == "numbers/lookup":
            if msisdn in self._allocated:
                allocated = self._allocated[msisdn]
            else:
                if len(self._allocated) >= 100_000:  # bounded, whatever it is asked
                    self._allocated.clear()
                try:
                    allocated = self._allocated[msisdn] = parse_mobile(msisdn).allocated_carrier
                except InputError:
                    return httpx.Response(422, json={"error": "not_a_mobile_number"})
            if allocated is None:
                return httpx.Response(422, json={"error": "unknown_segment"})
            current = self.carriers.get(msisdn, allocated)
            return httpx.Response(
                200,
                json={
                    "current_carrier": current.value,
                    "allocated_carrier": allocated.value,
                    "active": msisdn not in self.inactive,
                },
            )
        if path == "numbers/balance":
            return httpx.Response(200, json={"balance_fen": self.balance_of(msisdn)})
        if path in ("debits", "refunds"):
            return self._operation(path[:-1], request.headers.get("Idempotency-Key", ""), msisdn, body)
        return httpx.Response(404, json={"error": "not_found"})

    def _operation(self, kind: str, reference: str, msisdn: str, body: dict[str, Any]) -> httpx.Response:
        amount = body.get("amount_fen")
        if not reference or isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return httpx.Response(400, json={"error": "reference_and_amount_required"})
        book = self.debits if kind == "debit" else self.refunds
        earlier = book.get(reference)
        if earlier is not None:
            if (earlier.msisdn, earlier.amount_fen) != (msisdn, amount):
                return httpx.Response(409, json={"error": "key_reused"})
            earlier.replays += 1
            return httpx.Response(200, json=earlier.public())
        recorded = self.book.get("carrier", kind, reference) if self.book is not None else None
        if recorded is not None:  # done by another process of this sandbox: its record answers
            if recorded.amount_fen != amount:
                return httpx.Response(409, json={"error": "key_reused"})
            return self._from_book(kind, reference)
        record = Record(reference, kind, msisdn, amount, "done", debit_reference=str(body.get("debit_reference", "")))
        balance = self.balance_of(msisdn)
        if kind == "debit":
            if msisdn in self.inactive:
                record.status, record.reason = "refused", "inactive_number"
            elif balance < amount:
                record.status, record.reason = "refused", "insufficient_balance"
            else:
                self.set_balance(msisdn, balance - amount)
        else:
            debit = self.debits.get(record.debit_reference) or self._debit_in_book(record.debit_reference, msisdn)
            refunded = sum(r.amount_fen for r in self.refunds.values() if r.debit_reference == record.debit_reference)
            if debit is None or debit.status != "done" or debit.msisdn != msisdn:
                record.status, record.reason = "refused", "no_such_debit"
            elif refunded + amount > debit.amount_fen:
                record.status, record.reason = "refused", "exceeds_debit"
            else:
                self.set_balance(msisdn, balance + amount)
        book[reference] = record
        if self.book is not None:
            status = "success" if record.status == "done" else "failed"
            self.book.record("carrier", kind, reference, amount, status, self.clock())
        return httpx.Response(201, json=record.public())

    def _debit_in_book(self, reference: str, msisdn: str) -> Record | None:
        """A debit done before this process started (the book keeps no number: the refund's is
        taken as the debit's, as the carrier's own records would show)."""
        row = self.book.get("carrier", "debit", reference) if self.book is not None and reference else None
        if row is None:
            return None
        return Record(reference, "debit", msisdn, row.amount_fen, "done" if row.status == "success" else "refused")

    def _from_book(self, kind: str, reference: str) -> httpx.Response:
        """An operation another process of this sandbox recorded (the book is shared)."""
        row = self.book.get("carrier", kind, reference) if self.book is not None else None
        if row is None:
            return httpx.Response(404, json={"error": "unknown"})
        status = "done" if row.status == "success" else "refused"
        public = {"reference": reference, "status": status, "amount_fen": row.amount_fen, "reason": ""}
        return httpx.Response(200, json=public)

    def _set_up(self, body: dict[str, Any]) -> httpx.Response:
        msisdn, balance = body.get("msisdn"), body.get("balance_fen")
        if not isinstance(msisdn, str) or (balance is not None and (not isinstance(balance, int) or balance < 0)):
            return httpx.Response(400, json={"error": "msisdn_and_balance_fen"})
        with self._lock:
            if balance is not None:
                self.set_balance(msisdn, balance)
            if body.get("carrier"):
                self.carriers[msisdn] = Carrier(body["carrier"])
            if body.get("active") is False:
                self.inactive.add(msisdn)
        return httpx.Response(204)
