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
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from httpx._utils import URLPattern, get_environment_proxies

from core.errors import OutcomeUnknown, PartnerRefused


class Requests(Protocol):
    """What a partner adapter needs of its HTTP client: `httpx.Client.request`."""

    def request(
        self, method: str, url: str, *, json: Any = ..., headers: Any = ..., timeout: Any = ...
    ) -> httpx.Response: ...


#: Connections to a partner kept open between calls, per shard: as many as a worker can have
#: calls in flight (WORKER_CONCURRENCY, at most 256), where httpx keeps 20 by default: with more
#: in flight, every call past the twentieth opened a connection and closed it again.
KEEP_ALIVE = httpx.Limits(max_connections=256, max_keepalive_connections=256)


class SharedClient:
    """One partner's HTTP connections for many threads: a few connection pools (shards, each an
    `httpx.HTTPTransport`), each thread sending through one of them (given round-robin the first
    time it calls, and kept).

    A worker keeps up to WORKER_CONCURRENCY calls in flight on as many threads. Through one
    `httpx.Client` they all met at its connection pool's lock, under which the pool looks at
    every connection it holds on every request and every response: half the worker's threads
    were found waiting there. With eight shards, each pool serves a few threads and holds a few
    connections. A request goes straight to its shard's transport, as `httpx.Client.send` sends
    it, without the client's per-request work the adapters have no use for (merging URLs,
    cookies, redirects, auth): on PostgreSQL the worker used a tenth less CPU per recovery for
    it. What the client did that a partner or the caller can tell is kept: httpx's own headers
    (a caller's override them, whatever their case), the proxy the environment names, by httpx's
    own rules, one TLS context for every shard (making one costs milliseconds), connections kept
    alive, a timeout per request (5 s unless given; None: none), the response's request, and the
    same httpx errors, with their request, for a timeout or a lost connection. A proxy setting
    httpx cannot use fails here, when the client is made, not at the first call."""

    def __init__(
        self,
        base_url: str,
        *,
        shards: int = 8,
        limits: httpx.Limits = KEEP_ALIVE,
        transport: Callable[[], httpx.BaseTransport] | None = None,
    ) -> None:
        if shards < 1:
            raise ValueError("a shared client needs at least one shard")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        proxy = proxy_for(self.base_url)
        if proxy is not None:
            httpx.Proxy(proxy)  # a proxy setting httpx cannot use: ValueError now, not at each call
        self._make = transport or (lambda: httpx.HTTPTransport(verify=_tls(), limits=limits, proxy=proxy))
        self._shards: list[httpx.BaseTransport | None] = [None] * shards
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._mine = threading.local()
        self._urls: dict[str, httpx.URL] = {}
        self._closed = False

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        """`url` relative to the partner's base URL."""
        if self._closed:
            raise RuntimeError("this partner client has been closed")
        limit = _DEFAULT_TIMEOUT if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout)
        request = httpx.Request(
            method,
            self._url(url),
            json=json,
            headers=_merged(headers),
            extensions={"timeout": limit.as_dict()},
        )
        try:
            response = self._transport().handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.RequestError as error:
            error.request = request  # as httpx.Client tells it
            raise
        response.request = request
        return response

    def _url(self, path: str) -> httpx.URL:
        """The partner's URL of `path`, parsed once: an adapter calls a few fixed paths (a
        status query's carries its reference), and parsing one is a fifth of the portal's own
        work in a call. Parsed URLs are immutable; the cache starts over past `_URLS_KEPT`."""
        found = self._urls.get(path)
        if found is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            found = self._urls[path] = httpx.URL(self.base_url + path.lstrip("/"))
        return found

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
        """Close every connection; the client sends nothing more (a RuntimeError, as httpx's)."""
        with self._lock:
            self._closed = True
            for transport in self._shards:
                if transport is not None:
                    transport.close()


_DEFAULT_TIMEOUT = httpx.Timeout(5.0)  # httpx.Client's own default
_URLS_KEPT = 64  # parsed URLs a client keeps (`SharedClient._url`)
#: httpx.Client's own headers (user agent, accepted types and encodings, keep-alive), as a
#: partner saw them when every call went through one
_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
            "User-Agent": f"python-httpx/{httpx.__version__}"}  # fmt: skip
_TLS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def _merged(headers: Any) -> dict[str, str]:
    """httpx.Client's headers with the caller's over them, names compared without case."""
    if not headers:
        return _HEADERS
    given = dict(headers)
    lowered = {name.lower() for name in given}
    return {**{k: v for k, v in _HEADERS.items() if k.lower() not in lowered}, **given}


def _tls() -> ssl.SSLContext:
    """One TLS context (the system's trusted certificates) for every partner's connections."""
    with _TLS_LOCK:
        if not _TLS:
            _TLS.append(httpx.create_ssl_context())
        return _TLS[0]


def _first(pair: tuple[URLPattern, str | None]) -> URLPattern:
    return pair[0]


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY,
    in either case) by httpx's own rules, as `httpx.Client` would choose it (httpx is pinned:
    these helpers are its own, not its public API); None: connect directly."""
    target = httpx.URL(url)
    patterns = sorted(((URLPattern(key), proxy) for key, proxy in get_environment_proxies().items()), key=_first)
    for pattern, proxy in patterns:
        if pattern.matches(target):
            return proxy
    return None


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
