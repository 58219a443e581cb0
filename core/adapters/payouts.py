"""A channel's payout API over httpx: pay, status, and the signed notification the partner
posts to the portal when a payout settles.

Notifications are signed with HMAC-SHA256 over `"{timestamp}.{body}"` and sent in the header
`X-Partner-Signature: t=<unix seconds>,v1=<hex>`; a partner posts them at least once, so the
receiver treats a duplicate as already handled.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from core.adapters.partner_http import Requests, call
from core.errors import OutcomeUnknown

SIGNATURE_HEADER = "X-Partner-Signature"
MAX_TIMESTAMP_DIGITS = 12
SIGNATURE_TOLERANCE_S = 24 * 3600  # late notifications are still genuine; replays are harmless anyway
NOTIFY_PATH = "/partners/payouts/{channel}/notify"  # on the portal's own server


def notify_url(portal_url: str, channel_id: str) -> str:
    """Where a channel's payout partner posts its notifications (we tell it with each payout)."""
    return portal_url.rstrip("/") + NOTIFY_PATH.format(channel=channel_id)


class PayoutStatus(enum.Enum):
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"  # for good: the money came back to us


@dataclass(frozen=True)
class Payout:
    reference: str
    status: PayoutStatus
    amount_fen: int
    reason: str = ""


class PayoutApi:
    def __init__(self, client: Requests, channel_id: str, *, timeout_s: float = 5.0) -> None:
        self._client = client
        self.channel_id = channel_id
        self._partner = f"payout:{channel_id}"
        self._timeout = httpx.Timeout(timeout_s)

    def pay(self, reference: str, amount_fen: int, payee: str, notify_url: str) -> Payout:
        """Ask the partner to pay. A refusal raises `PartnerRefused` (nothing was paid); an
        unknown outcome raises `OutcomeUnknown`."""
        body = {"reference": reference, "amount_fen": amount_fen, "payee": payee, "notify_url": notify_url}
        data = call(self._client, self._partner, "POST", "payouts", body=body, key=reference, timeout=self._timeout)
        assert data is not None
        return self._read(data, reference)

    def status(self, reference: str) -> Payout | None:
        """None: the partner never saw this reference, so nothing was paid."""
        data = call(self._client, self._partner, "GET", f"payouts/{reference}", timeout=self._timeout, missing_ok=True)
        return None if data is None else self._read(data, reference)

    def _read(self, data: Mapping[str, object], reference: str) -> Payout:
        amount = data.get("amount_fen")
        if data.get("reference") != reference or isinstance(amount, bool) or not isinstance(amount, int):
            raise OutcomeUnknown(f"{self._partner}: unreadable answer", partner=self._partner)
        try:
            status = PayoutStatus(data.get("status"))
        except ValueError as exc:
            raise OutcomeUnknown(f"{self._partner}: unknown status", partner=self._partner) from exc
        return Payout(reference, status, amount, str(data.get("reason") or "")[:64])


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_valid(secret: bytes, body: bytes, header: str | None, now: float) -> bool:
    if not header:
        return False
    if not header.isascii():  # headers arrive decoded as latin-1: anything else is not ours
        return False
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    # Unix seconds have 10 digits until the year 2286: anything longer is not ours, and is
    # refused before int() (which gives up on thousands of digits with a ValueError).
    if not (0 < len(timestamp) <= MAX_TIMESTAMP_DIGITS and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_S:
        return False
    expected = sign(secret, body, int(timestamp))
    return hmac.compare_digest(expected.encode(), f"t={timestamp},v1={fields.get('v1', '')}".encode())
