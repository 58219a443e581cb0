"""A sandbox terms feed that publishes changing terms, like a partner running promotions.

Time is cut into periods; in some periods a channel runs a promotion (a lower tier rate),
so the portal sees real changes, ETags and all. Knobs: `down` (answers 503), `latency_s`,
and `corrupt` (answers terms that fail validation).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.adapters.sandbox import bad_request, posted_object
from core.adapters.sandbox.faults import knob_value, knobs_answer
from core.domain.calendar import SHANGHAI

#: channel id -> (which periods, modulo what) -> tier index -> promotional rate
PROMOTIONS: dict[str, tuple[int, int, int, str]] = {
    # channel: (modulus, period remainder when on, tier index, promotional rate)
    "alipay": (2, 1, 1, "0.035"),
    "wechat_pay": (3, 2, 1, "0.025"),
}


_KNOBS = ("down", "corrupt", "latency_s", "period_s")  # POST /_sandbox/knobs


@dataclass
class SandboxTermsFeed:
    catalog: dict[str, Any]
    period_s: float = 300.0
    clock: Callable[[], float] = time.time
    down: bool = False
    corrupt: bool = False
    latency_s: float = 0.0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def period(self) -> int:
        return int(self.clock() // self.period_s)

    def terms(self, channel_id: str) -> dict[str, Any] | None:
        base = next((c for c in self.catalog["channels"] if c["id"] == channel_id), None)
        if base is None:
            return None
        terms = copy.deepcopy(base)
        # The feed vouches for its terms as of the start of the current period (China time).
        started = dt.datetime.fromtimestamp(self.period() * self.period_s, SHANGHAI)
        terms["as_of"] = started.date().isoformat()
        promo = PROMOTIONS.get(channel_id)
        if promo is not None:
            modulus, on, tier, rate = promo
            if self.period() % modulus == on:
                terms["fee"]["tiers"][tier]["rate"] = rate
        if self.corrupt:
            terms["fee"] = {"rule": "tiered_percent", "tiers": [{"up_to_yuan": None, "rate": "1.5"}]}
        return terms

    def update(self, knobs: dict[str, Any]) -> list[str]:
        """Set the feed's knobs (`_KNOBS`) as `Faults.update` sets a partner's: unknown names
        returned and a bad value a ValueError, and then nothing changes."""
        unknown = [name for name in knobs if name not in _KNOBS]
        if unknown:
            return unknown
        values = {name: knob_value(name, value) for name, value in knobs.items()}
        if values.get("period_s") == 0:
            raise ValueError("period_s is a number above 0")
        for name, value in values.items():
            setattr(self, name, value)
        return []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        if request.url.path == "/_sandbox/knobs" and request.method == "POST":
            knobs = posted_object(request)
            if knobs is None:
                return bad_request("bad_json")
            return knobs_answer(self.update, knobs)
        if self.down:
            return httpx.Response(503, json={"error": "sandbox feed is down"})
        parts = request.url.path.strip("/").split("/")
        if request.method != "GET" or len(parts) != 2 or parts[0] != "channels":
            return httpx.Response(404, json={"error": "not found"})
        terms = self.terms(parts[1])
        if terms is None:
            return httpx.Response(404, json={"error": "no such channel"})
        body = json.dumps(terms, ensure_ascii=False, sort_keys=True).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if request.headers.get("If-None-Match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        return httpx.Response(200, content=body, headers={"ETag": etag, "Content-Type": "application/json"})
