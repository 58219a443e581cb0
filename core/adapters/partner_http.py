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
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from core.errors import OutcomeUnknown, PartnerRefused


class Requests(Protocol):
    """What a partner adapter needs of its HTTP client: `httpx.Client.request`."""

    def request(
        self, method: str, url: str, *, json: Any = ..., headers: Any = ..., timeout: Any = ...
    ) -> httpx.Response: ...


class SharedClient:
    """One partner's HTTP connections for many threads: a few connection pools (shards, each an
    `httpx.HTTPTransport`), each thread sending through one of them (given round-robin the first
    time it calls, and kept).

    A worker keeps up to WORKER_CONCURRENCY calls in flight on as many threads. Through one
    `httpx.Client` they all met at its connection pool's lock, under which the pool looks at
    every connection it holds on every request and every response: half the worker's threads
    were found waiting there. With eight shards, each pool serves a few threads and holds a few
    connections. A request goes straight to its shard's transport, as `httpx.Client.send` would
    send it, without the client's per-request work this adapter has no use for (merging default
    headers and URLs, cookies, redirects, auth): on PostgreSQL the worker used a tenth less CPU
    per recovery for it. What the client did that matters here is kept: a proxy named by the
    environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), one TLS context shared by every
    shard (making one costs milliseconds), connections kept alive, timeouts per request, and the
    same httpx errors for a timeout or a lost connection."""

    def __init__(
        self,
        base_url: str,
        *,
        shards: int = 8,
        limits: httpx.Limits = httpx.Limits(max_connections=256, max_keepalive_connections=256),  # noqa: B008
        transport: Callable[[], httpx.BaseTransport] | None = None,
    ) -> None:
        if shards < 1:
            raise ValueError("a shared client needs at least one shard")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        proxy = proxy_for(self.base_url)
        self._make = transport or (lambda: httpx.HTTPTransport(verify=_tls(), limits=limits, proxy=proxy))
        self._shards: list[httpx.BaseTransport | None] = [None] * shards
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._mine = threading.local()

    def request(
        self, method: str, url: str, *, json: Any = None, headers: Any = None, timeout: Any = None
    ) -> httpx.Response:
        """`url` relative to the partner's base URL; `timeout` an `httpx.Timeout` (5 s if None)."""
        limit = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(5.0 if timeout is None else timeout)
        request = httpx.Request(
            method,
            self.base_url + url.lstrip("/"),
            json=json,
            headers={**_HEADERS, **(headers or {})},
            extensions={"timeout": limit.as_dict()},
        )
        response = self._transport().handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def _transport(self) -> httpx.BaseTransport:
        shard = getattr(self._mine, "shard", None)
        if shard is None:
            shard = self._mine.shard = next(self._next) % len(self._shards)
        transport = self._shards[shard]
        if transport is None:
            with self._lock:
                transport = self._shards[shard]
                if transport is None:
                    transport = self._shards[shard] = self._make()
        return transport

    def close(self) -> None:
        with self._lock:
            for transport in self._shards:
                if transport is not None:
                    transport.close()
            self._shards = [None] * len(self._shards)


_HEADERS = {"User-Agent": "balance-recovery-portal", "Accept": "application/json"}
_TLS: list[ssl.SSLContext] = []


def _tls() -> ssl.SSLContext:
    """One TLS context (the system's trusted certificates) for every partner's connections."""
    if not _TLS:
        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, in either
    case; NO_PROXY exempts a host), as `httpx.Client` would use it; None: connect directly."""
    host = httpx.URL(url).host
    if urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(httpx.URL(url).scheme) or proxies.get("all")


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
