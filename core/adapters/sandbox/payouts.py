"""Sandbox payout partners, one per channel, keeping their own record of every payout by the
caller's reference, and posting signed notifications back to the portal, at least once.

Routes, under /{channel}:
    POST /payouts          {"reference", "amount_fen", "payee", "notify_url"}  Idempotency-Key
    GET  /payouts/{ref}    the record, or 404
    POST /_sandbox/knobs   the `faults` knobs plus the ones in `KNOBS`

Knobs beyond `faults`:
    settle_s               processing time; 0 pays at once (an instant channel)
    reject_rate            refused at once for good (payee account closed); nothing paid
    fail_rate              accepted, then fails for good while processing
    notify_delay_s         notifications arrive this much later than the payout settles
    duplicate_rate         a notification is posted twice
    lost_rate              a notification is never posted (the portal must ask for status)

A payee on the domain `fail.sandbox` (e.g. `payout@fail.sandbox`) is accepted and then fails
for good, like a test card number at a card processor: the way to watch a refund end to end.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.adapters.payouts import SIGNATURE_HEADER, sign
from core.adapters.sandbox import bad_request, posted_object
from core.adapters.sandbox.books import PartnerBook
from core.adapters.sandbox.faults import Faults, knobs_answer

log = logging.getLogger(__name__)
MAX_DELIVERY_ATTEMPTS = 30
FAILING_PAYEE = "@fail.sandbox"


@dataclass
class PayoutRecord:
    channel_id: str
    reference: str
    amount_fen: int
    payee: str
    notify_url: str
    settles_at: float
    final: str  # paid | failed: decided when accepted, visible from `settles_at`
    reason: str = ""
    replays: int = 0

    def status(self, now: float) -> str:
        return self.final if now >= self.settles_at else "processing"

    def public(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        return {
            "reference": self.reference,
            "status": status,
            "amount_fen": self.amount_fen,
            "reason": self.reason if status == "failed" else "",
        }


@dataclass(order=True)
class _Notice:
    due: float
    seq: int
    channel_id: str = field(compare=False)
    reference: str = field(compare=False)
    event_id: str = field(compare=False)
    attempts: int = field(default=0, compare=False)


@dataclass
class SandboxPayouts:
    secret_for: Callable[[str], bytes]  # the channel's notification signing secret
    notifier: httpx.Client  # posts notifications to the portal
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], float] = time.time
    settle_s: float = 0.5
    reject_rate: float = 0.0
    fail_rate: float = 0.0
    notify_delay_s: float = 0.0
    duplicate_rate: float = 0.0
    lost_rate: float = 0.0
    book: PartnerBook | None = None  # the partners' own books, where their statements come from
    records: dict[str, dict[str, PayoutRecord]] = field(default_factory=dict)
    refused: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    delivered: int = 0
    KNOBS = ("settle_s", "reject_rate", "fail_rate", "notify_delay_s", "duplicate_rate", "lost_rate")
    _queue: list[_Notice] = field(default_factory=list, repr=False)
    _seq: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if len(parts) < 2:
            return httpx.Response(404, json={"error": "not_found"})
        channel_id, rest = parts[0], parts[1:]
        body = posted_object(request)
        if body is None:
            return bad_request("bad_json")
        if rest == ["_sandbox", "knobs"] and request.method == "POST":
            return knobs_answer(lambda knobs: self.faults.update(knobs, self), body)
        refused = self.faults.before(request)
        if refused is not None:
            return refused
        with self._lock:
            if request.method == "GET" and len(rest) == 2 and rest[0] == "payouts":
                record = self.records.get(channel_id, {}).get(rest[1])
                if record is not None:
                    return httpx.Response(200, json=record.public(self.clock()))
                earlier = self.refused.get(channel_id, {}).get(rest[1])
                return httpx.Response(200, json=earlier) if earlier else self._from_book(channel_id, rest[1])
            if request.method != "POST" or rest != ["payouts"]:
                return httpx.Response(404, json={"error": "not_found"})
            response = self._pay(channel_id, request.headers.get("Idempotency-Key", ""), body)
        if response.status_code < 500:
            self.faults.after(request)
        return response

    def _pay(self, channel_id: str, key: str, body: dict[str, Any]) -> httpx.Response:
        amount, payee, notify_url = body.get("amount_fen"), body.get("payee"), body.get("notify_url")
        if (
            not key
            or body.get("reference") != key
            or isinstance(amount, bool)
            or not isinstance(amount, int)
            or amount <= 0
            or not isinstance(payee, str)
            or not isinstance(notify_url, str)
        ):
            return httpx.Response(400, json={"error": "bad_request"})
        now = self.clock()
        book = self.records.setdefault(channel_id, {})
        earlier = book.get(key)
        if earlier is not None:
            if (earlier.amount_fen, earlier.payee) != (amount, payee):
                return httpx.Response(409, json={"error": "key_reused"})
            earlier.replays += 1
            return httpx.Response(200, json=earlier.public(now))
        recorded = self.book.get(channel_id, "payout", key) if self.book is not None else None
        if recorded is not None:  # accepted by another process of this sandbox: its record answers
            if recorded.amount_fen != amount:
                return httpx.Response(409, json={"error": "key_reused"})
            return self._from_book(channel_id, key)
        if key in self.refused.get(channel_id, {}):
            return httpx.Response(422, json={"error": "payee_rejected"})
        if self.faults.chance(self.reject_rate):
            self.refused.setdefault(channel_id, {})[key] = {
                "reference": key,
                "status": "failed",
                "amount_fen": amount,
                "reason": "payee_rejected",
            }
            self._book(channel_id, key, amount, "failed", now)
            return httpx.Response(422, json={"error": "payee_rejected"})
        failed = self.faults.chance(self.fail_rate) or payee.lower().endswith(FAILING_PAYEE)
        record = PayoutRecord(
            channel_id,
            key,
            amount,
            payee,
            notify_url,
            settles_at=now + self.settle_s,
            final="failed" if failed else "paid",
            reason="payee_account_closed" if failed else "",
        )
        book[key] = record
        self._book(channel_id, key, amount, record.final.replace("paid", "success"), record.settles_at)
        if not self.faults.chance(self.lost_rate):
            copies = 2 if self.faults.chance(self.duplicate_rate) else 1
            for _ in range(copies):
                notice = _Notice(
                    record.settles_at + self.notify_delay_s, next(self._seq), channel_id, key, f"evt-{key}"
                )
                heapq.heappush(self._queue, notice)
        return httpx.Response(201 if self.settle_s else 200, json=record.public(now))

    def _book(self, channel_id: str, reference: str, amount: int, status: str, at: float) -> None:
        if self.book is not None:
            self.book.record(channel_id, "payout", reference, amount, status, at)

    def _from_book(self, channel_id: str, reference: str) -> httpx.Response:
        """A payout another process of this sandbox accepted (the book is shared)."""
        row = self.book.get(channel_id, "payout", reference) if self.book is not None else None
        if row is None:
            return httpx.Response(404, json={"error": "unknown"})
        status = "processing" if row.at.timestamp() > self.clock() else {"success": "paid"}.get(row.status, "failed")
        reason = "payee_account_closed" if status == "failed" else ""
        return httpx.Response(
            200, json={"reference": reference, "status": status, "amount_fen": row.amount_fen, "reason": reason}
        )

    # --- notifications -----------------------------------------------------------------------

    def pending_notifications(self) -> int:
        with self._lock:
            return len(self._queue)

    def next_notice_due(self) -> float | None:
        """When the next notification is due (sandbox clock seconds), or None if none is waiting."""
        with self._lock:
            return self._queue[0].due if self._queue else None

    def deliver_due(self) -> int:
        """Post every notification that is due; a refused or failed post is tried again later
        (at least once). Returns how many the portal accepted."""
        accepted = 0
        while True:
            with self._lock:
                if not self._queue or self._queue[0].due > self.clock():
                    return accepted
                notice = heapq.heappop(self._queue)
                record = self.records[notice.channel_id][notice.reference]
                payload = {"event_id": notice.event_id, **record.public(max(self.clock(), record.settles_at))}
            body = json.dumps(payload, sort_keys=True).encode()
            signature = sign(self.secret_for(notice.channel_id), body, int(self.clock()))
            try:
                response = self.notifier.post(
                    record.notify_url,
                    content=body,
                    headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
                    timeout=5.0,
                )
                ok = 200 <= response.status_code < 300
            except httpx.HTTPError:
                ok = False
            if ok:
                accepted += 1
                self.delivered += 1
                continue
            notice.attempts += 1
            if notice.attempts >= MAX_DELIVERY_ATTEMPTS:
                log.warning("sandbox payouts: gave up notifying %s after %d tries", notice.reference, notice.attempts)
                continue
            notice.due = self.clock() + min(60.0, 0.5 * 2**notice.attempts)
            with self._lock:
                heapq.heappush(self._queue, notice)

    def start(self, every_s: float = 0.2) -> None:
        """Deliver notifications from a background thread (the in-process default)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.deliver_due()
                except Exception:  # a sandbox must not die of the portal's answer
                    log.exception("sandbox payouts: delivery failed")

        self._thread = threading.Thread(target=run, name="sandbox-payout-notices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
