"""A sandbox SMS gateway: keeps what it was asked to send and writes it to the server log
(number masked, code in full: this is how a developer signs in without a phone)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import httpx

from core.adapters.sandbox import bad_request, posted_object
from core.phones import mask

log = logging.getLogger("sandbox.sms")


@dataclass
class SentMessage:
    to_masked: str
    text: str
    reference: str


@dataclass
class SandboxSmsGateway:
    down: bool = False
    sent: list[SentMessage] = field(default_factory=list)
    _by_reference: dict[str, SentMessage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path.rstrip("/") != "/messages":
            return httpx.Response(404)
        if self.down:
            return httpx.Response(503)
        body = posted_object(request)
        if body is None:
            return bad_request("bad_json")
        reference = request.headers.get("Idempotency-Key", "")
        with self._lock:
            if reference and reference in self._by_reference:  # a retried request sends nothing twice
                return httpx.Response(200, json={"status": "duplicate"})
            message = SentMessage(mask(str(body.get("to", ""))), str(body.get("text", "")), reference)
            self.sent.append(message)
            self._by_reference[reference] = message
            del self.sent[:-200]  # keep the latest few hundred
        log.info("sandbox SMS to %s: %s", message.to_masked, message.text)
        return httpx.Response(202, json={"status": "queued"})

    def latest(self, limit: int = 20) -> list[SentMessage]:
        with self._lock:
            return list(reversed(self.sent[-limit:]))
