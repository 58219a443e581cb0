"""The SMS gateway over httpx: `POST {base}/messages` with our reference as idempotency key."""

from __future__ import annotations

import httpx

from core.errors import PartnerError


class SmsUnavailable(PartnerError):
    key = "error.sms.unavailable"


class SmsGateway:
    def __init__(self, client: httpx.Client, *, timeout_s: float = 5.0) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)

    def send(self, to: str, text: str, *, reference: str) -> None:
        try:
            response = self._client.post(
                "messages", json={"to": to, "text": text}, headers={"Idempotency-Key": reference}, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise SmsUnavailable(f"sms gateway: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201, 202):
            raise SmsUnavailable(f"sms gateway: HTTP {response.status_code}")
