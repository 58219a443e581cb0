"""How every money-moving partner call is made and how its failures are read.

Each call carries our reference as the partner's `Idempotency-Key`, so asking twice can never
do the work twice. What an answer means:

    2xx                      done (or accepted), the body says which
    404 on a status query    the partner never saw that reference
    4xx (other)              refused for good: `PartnerRefused(reason)`; nothing happened
    5xx, timeout, dropped    `OutcomeUnknown`: it may or may not have happened; the caller
                             settles it by asking for status, never by calling again blind
"""

from __future__ import annotations

from typing import Any

import httpx

from core.errors import OutcomeUnknown, PartnerRefused


def call(
    client: httpx.Client,
    partner: str,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    key: str | None = None,
    timeout: httpx.Timeout,
    missing_ok: bool = False,
) -> dict[str, Any] | None:
    """One partner request. Returns the JSON body, or None for a 404 when `missing_ok`."""
    headers = {"Idempotency-Key": key} if key else {}
    try:
        response = client.request(method, path, json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise OutcomeUnknown(f"{partner}: timed out", partner=partner) from exc
    except httpx.HTTPError as exc:  # connection refused or dropped: we cannot know what it did
        raise OutcomeUnknown(f"{partner}: {type(exc).__name__}", partner=partner) from exc
    if response.status_code == 404 and missing_ok:
        return None
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise OutcomeUnknown(f"{partner}: HTTP {response.status_code}", partner=partner)
    try:
        data = response.json()
    except ValueError as exc:
        raise OutcomeUnknown(f"{partner}: unreadable answer (HTTP {response.status_code})", partner=partner) from exc
    if not isinstance(data, dict):
        raise OutcomeUnknown(f"{partner}: unexpected answer", partner=partner)
    if response.status_code >= 400:
        reason = str(data.get("error") or f"http_{response.status_code}")[:64]
        raise PartnerRefused(f"{partner}: refused ({reason})", partner=partner, reason=reason)
    return data
