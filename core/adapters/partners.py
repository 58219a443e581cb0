"""The portal's partners as clients: the carrier's API and one payout API per channel, over
the configured URLs, or over the in-process sandboxes when a URL is `sandbox`."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from core.adapters.carrier import CarrierApi
from core.adapters.partner_http import SharedClient
from core.adapters.payouts import PayoutApi
from core.adapters.sandbox.books import PartnerBook
from core.adapters.sandbox.carrier import SandboxCarrier
from core.adapters.sandbox.faults import Faults
from core.adapters.sandbox.payouts import SandboxPayouts
from core.config import SANDBOX
from core.security.keys import PortalKeys


@dataclass
class Partners:
    carrier: CarrierApi
    payouts: dict[str, PayoutApi]
    sandbox_carrier: SandboxCarrier | None = None  # the in-process sandboxes, when mounted
    sandbox_payouts: SandboxPayouts | None = None


def partner_links(
    carrier_url: str,
    payout_url: str,
    channel_ids: Iterable[str],
    *,
    timeout_s: float,
    secret_for: Callable[[str], bytes],
    notifier: httpx.Client,
    faults: Faults | None = None,
    seconds: Callable[[], float] = time.time,
    book: PartnerBook | None = None,
) -> Partners:
    """Clients for the carrier and every channel's payouts. The in-process sandboxes sign their
    notices with `secret_for(channel)`, post them through `notifier`, keep time by `seconds`,
    inject `faults` (none by default) and keep their records in `book` (one of this process
    only by default)."""
    faults = faults or Faults()
    sandbox_carrier = sandbox_payouts = None
    if SANDBOX in (carrier_url, payout_url) and book is None:
        book = PartnerBook()
    if carrier_url == SANDBOX:
        sandbox_carrier = SandboxCarrier(faults=faults, book=book, clock=seconds)
        in_process = httpx.MockTransport(sandbox_carrier)  # one, shared: it holds no connections
        carrier_http = SharedClient("http://carrier.sandbox/", shards=1, transport=lambda: in_process)
    else:
        carrier_http = SharedClient(carrier_url)
    transport: httpx.BaseTransport | None = None
    base = payout_url.rstrip("/")
    if payout_url == SANDBOX:
        sandbox_payouts = SandboxPayouts(
            secret_for=secret_for, notifier=notifier, faults=faults, clock=seconds, book=book
        )
        transport, base = httpx.MockTransport(sandbox_payouts), "http://payouts.sandbox"
    payouts = {
        channel_id: PayoutApi(
            SharedClient(f"{base}/{channel_id}/", shards=1, transport=lambda: transport)
            if transport is not None  # in-process: no connections to share
            else SharedClient(f"{base}/{channel_id}/"),
            channel_id,
            timeout_s=timeout_s,
        )
        for channel_id in channel_ids
    }
    carrier = CarrierApi(carrier_http, timeout_s=timeout_s)
    return Partners(carrier, payouts, sandbox_carrier, sandbox_payouts)


def notify_secret(keys: PortalKeys, env: Mapping[str, str], channel_id: str) -> bytes:
    """The secret a payout partner signs its notifications with: configured per channel
    (PAYOUT_NOTIFY_SECRET_ALIPAY ...), or derived from the portal's keys for the sandbox."""
    configured = env.get(f"PAYOUT_NOTIFY_SECRET_{channel_id.upper()}")
    if configured:
        return configured.encode()
    return hmac.new(keys.index_key, b"payout-notify:" + channel_id.encode(), hashlib.sha256).digest()
