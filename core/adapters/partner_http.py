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

import itertools
import ssl
import threading
from typing import Any, Protocol

import httpx

from core.errors import OutcomeUnknown, PartnerRefused


class Requests(Protocol):
    """What a partner adapter needs of its HTTP client: `httpx.Client.request`."""

    def request(
        self, method: str, url: str, *, json: Any = ..., headers: Any = ..., timeout: Any = ...
    ) -> httpx.Response: ...


class SharedClient:
    """One partner's HTTP client for many threads: a few `httpx.Client`s (shards), each thread
    sending through one of them (given round-robin the first time it calls, and kept).

    A worker keeps up to WORKER_CONCURRENCY calls in flight on as many threads. Through one
    `httpx.Client` they all meet at its connection pool's lock, and under it the pool looks at
    every connection it holds on every request and every response (measured: half the worker's
    threads were waiting there, and a worker with 8 shards did about a tenth more recoveries per
    second for less CPU). With shards, each pool serves a few threads and holds a few
    connections. The shards share one TLS context (making one costs milliseconds) and are made
    when first used."""

    def __init__(self, base_url: str, *, shards: int = 8, **options: Any) -> None:
        if shards < 1:
            raise ValueError("a shared client needs at least one shard")
        self.base_url = base_url
        self._options = {"verify": _tls(), **options}
        self._clients: list[httpx.Client | None] = [None] * shards
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._mine = threading.local()

    def request(
        self, method: str, url: str, *, json: Any = None, headers: Any = None, timeout: Any = httpx.USE_CLIENT_DEFAULT
    ) -> httpx.Response:
        return self._client().request(method, url, json=json, headers=headers, timeout=timeout)

    def _client(self) -> httpx.Client:
        shard = getattr(self._mine, "shard", None)
        if shard is None:
            shard = self._mine.shard = next(self._next) % len(self._clients)
        client = self._clients[shard]
        if client is None:
            with self._lock:
                client = self._clients[shard]
                if client is None:
                    client = self._clients[shard] = httpx.Client(base_url=self.base_url, **self._options)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                if client is not None:
                    client.close()
            self._clients = [None] * len(self._clients)


_TLS: list[ssl.SSLContext] = []


def _tls() -> ssl.SSLContext:
    """One TLS context (the system's trusted certificates) for every partner client."""
    if not _TLS:
        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


def call(
    client: Requests,
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
