"""Live channel terms over HTTP: `GET {base}/channels/{id}` returns one channel in the
catalog's schema. Conditional requests (ETag / If-None-Match) keep refreshes cheap; every
failure is translated into `FeedUnavailable` here, at the boundary."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.domain.catalog import Channel, channel_from_dict
from core.errors import CatalogError, FeedUnavailable


@dataclass(frozen=True)
class FeedAnswer:
    channel: Channel | None  # None when the feed said "not modified"
    etag: str | None


class TermsFeed:
    def __init__(self, client: httpx.Client, *, timeout_s: float = 2.0) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)

    def fetch(self, channel_id: str, *, etag: str | None = None) -> FeedAnswer:
        headers = {"If-None-Match": etag} if etag else {}
        path = f"channels/{channel_id}"
        try:
            response = self._client.get(path, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise FeedUnavailable(f"terms feed for {channel_id}: {type(exc).__name__}", channel=channel_id) from exc
        if response.status_code == 304:
            return FeedAnswer(None, etag)
        if response.status_code != 200:
            raise FeedUnavailable(f"terms feed for {channel_id}: HTTP {response.status_code}", channel=channel_id)
        try:
            data = response.json()
            channel = channel_from_dict(data, source=f"feed {channel_id}")
        except (ValueError, CatalogError) as exc:
            raise FeedUnavailable(
                f"terms feed for {channel_id}: unusable terms ({exc})"[:300], channel=channel_id
            ) from exc
        if channel.id != channel_id:
            raise FeedUnavailable(f"terms feed for {channel_id}: answered for {channel.id}", channel=channel_id)
        return FeedAnswer(channel, response.headers.get("ETag"))
