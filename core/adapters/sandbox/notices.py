"""The in-process path from the sandbox payout partners to the portal's notification handler.

Over loopback a sandbox posts its signed notices to `/partners/payouts/<channel>/notify`; in
process the same request goes through `notice_transport` straight to the handler. The handler
is made after the partners (it needs the recovery service, which needs the carrier client), so
a `NoticeRelay` is handed to the sandbox first and connected to the handler once it exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import httpx

from core.adapters.payouts import SIGNATURE_HEADER


class NoticeAnswer(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def body(self) -> dict[str, object]: ...


class NoticeReceiver(Protocol):
    """What receives a partner's notice: `core.services.payout_notices.PayoutNoticeService`."""

    def receive(self, channel_id: str, body: bytes, signature: str | None) -> NoticeAnswer: ...


def notice_transport(receiver: Callable[[], NoticeReceiver | None]) -> httpx.MockTransport:
    """Route `POST /partners/payouts/<channel>/notify` to the receiver (404 until there is one)."""

    def handle(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        service = receiver()
        if len(parts) != 4 or parts[:2] != ["partners", "payouts"] or parts[3] != "notify" or service is None:
            return httpx.Response(404, json={"error": "not_found"})
        answer = service.receive(parts[2], request.content, request.headers.get(SIGNATURE_HEADER))
        return httpx.Response(answer.status_code, json=answer.body)

    return httpx.MockTransport(handle)


class NoticeRelay:
    """A notifier for the sandbox payouts whose receiver is connected later (`connect`)."""

    def __init__(self) -> None:
        self._receiver: NoticeReceiver | None = None

    def connect(self, receiver: NoticeReceiver) -> None:
        self._receiver = receiver

    def client(self) -> httpx.Client:
        return httpx.Client(transport=notice_transport(lambda: self._receiver))
