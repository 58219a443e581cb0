"""Fault knobs shared by the sandbox partners, drawn from one seeded random source so that a
run with the same seed fails in the same places.

    latency_s           sleep before answering
    latency_max_s       when above latency_s, each answer sleeps a uniform draw between the two
                        (a partner that answers in 50 to 300 ms: latency_s=0.05, latency_max_s=0.3)
    error_rate          answer 503 before doing anything
    timeout_lost_rate   time out before doing anything (the request never took effect)
    timeout_done_rate   do the work, then time out (it took effect; the caller cannot know)

A sandbox's knobs can be changed at run time: POST /_sandbox/knobs with a JSON object.

`parse_latency("50-300")` reads a latency setting in milliseconds (SANDBOX_LATENCY_MS, the
sandbox server's --latency-ms): one figure, or a range drawn uniformly.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import httpx

from core.adapters.sandbox import bad_request


class SandboxTimeout(httpx.ReadTimeout):
    """What an in-process caller sees; over loopback the server holds the connection instead."""


@dataclass
class Faults:
    latency_s: float = 0.0
    latency_max_s: float = 0.0
    error_rate: float = 0.0
    timeout_lost_rate: float = 0.0
    timeout_done_rate: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self.rng.seed(self.seed)

    def chance(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.rng.random() < rate

    def delay(self) -> float:
        """How long this answer waits: latency_s, or a draw up to latency_max_s."""
        if self.latency_max_s > self.latency_s:
            with self.lock:
                return self.rng.uniform(self.latency_s, self.latency_max_s)
        return self.latency_s

    def before(self, request: httpx.Request) -> httpx.Response | None:
        """Latency, then maybe an error or a lost request. None: go on and do the work."""
        delay = self.delay()
        if delay > 0:
            time.sleep(delay)
        if self.chance(self.error_rate):
            return httpx.Response(503, json={"error": "sandbox_unavailable"})
        if self.chance(self.timeout_lost_rate):
            raise SandboxTimeout("sandbox: timed out before the work", request=request)
        return None

    def after(self, request: httpx.Request) -> None:
        if self.chance(self.timeout_done_rate):
            raise SandboxTimeout("sandbox: timed out after the work", request=request)

    def update(self, knobs: dict[str, Any], extra: Any = None) -> list[str]:
        """Set known knobs (on this object, or on `extra` for a sandbox's own); returns unknown
        names, and then no knob is changed. A value out of its knob's range (`knob_value`) is a
        ValueError, and no knob is changed either."""
        names = {f.name for f in fields(self)} - {"rng", "lock"}
        own = set(getattr(extra, "KNOBS", ())) if extra is not None else set()
        unknown = [name for name in knobs if name not in names and name not in own]
        if unknown:
            return unknown
        values = {name: knob_value(name, value) for name, value in knobs.items()}
        for name, value in values.items():
            setattr(self if name in names else extra, name, value)
            if name == "seed":
                self.rng.seed(value)
        return unknown


def knobs_answer(update: Callable[[dict[str, Any]], list[str]], knobs: dict[str, Any]) -> httpx.Response:
    """The answer to POST /_sandbox/knobs, whichever sandbox's `update` (unknown names returned,
    a bad value a ValueError; either way nothing changed): 204, or 400 saying what was wrong."""
    try:
        unknown = update(knobs)
    except ValueError as wrong:
        return bad_request("bad_knob", str(wrong))
    return httpx.Response(400, json={"unknown": unknown}) if unknown else httpx.Response(204)


#: The longest wait a knob may ask for: a minute of latency, a day for a feed's period (as
#: SANDBOX_FEED_PERIOD_S), thirty days for anything else (a payout that never settles in a test).
_MOST_S = {"latency_s": 60.0, "latency_max_s": 60.0, "period_s": 86_400.0}
_LONGEST_S = 30 * 86_400.0


def knob_value(name: str, value: Any) -> Any:
    """A knob's value checked: a seed is a whole number (or null), a rate a number from 0 to 1,
    a time (`…_s`) seconds from 0 up to its most (`_MOST_S`, else thirty days), a switch true
    or false. ValueError saying which and why."""
    if name == "seed":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"{name} is a whole number or null")
    if name.endswith(("_rate", "_s")):
        high = 1.0 if name.endswith("_rate") else _MOST_S.get(name, _LONGEST_S)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
            raise ValueError(f"{name} is a number from 0 to {high:g}")
        return float(value)
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name} is true or false")


def parse_latency(text: str) -> tuple[float, float]:
    """(latency_s, latency_max_s) from "100" or "50-300" (milliseconds, 0 to 60,000)."""
    low, _, high = text.strip().partition("-")
    try:
        first, last = float(low), float(high or low)
    except ValueError:
        raise ValueError(f"{text!r} is not a latency in milliseconds (e.g. 100 or 50-300)") from None
    if not (0 <= first <= last <= 60_000):
        raise ValueError(f"{text!r}: give milliseconds from 0 to 60000, the smaller first")
    return first / 1000, last / 1000
