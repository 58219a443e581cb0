"""Fault knobs shared by the sandbox partners, drawn from one seeded random source so that a
run with the same seed fails in the same places.

    latency_s           sleep before answering
    error_rate          answer 503 before doing anything
    timeout_lost_rate   time out before doing anything (the request never took effect)
    timeout_done_rate   do the work, then time out (it took effect; the caller cannot know)

A sandbox's knobs can be changed at run time: POST /_sandbox/knobs with a JSON object.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

import httpx


class SandboxTimeout(httpx.ReadTimeout):
    """What an in-process caller sees; over loopback the server holds the connection instead."""


@dataclass
class Faults:
    latency_s: float = 0.0
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

    def before(self, request: httpx.Request) -> httpx.Response | None:
        """Latency, then maybe an error or a lost request. None: go on and do the work."""
        if self.latency_s:
            time.sleep(self.latency_s)
        if self.chance(self.error_rate):
            return httpx.Response(503, json={"error": "sandbox_unavailable"})
        if self.chance(self.timeout_lost_rate):
            raise SandboxTimeout("sandbox: timed out before the work", request=request)
        return None

    def after(self, request: httpx.Request) -> None:
        if self.chance(self.timeout_done_rate):
            raise SandboxTimeout("sandbox: timed out after the work", request=request)

    def update(self, knobs: dict[str, Any], extra: Any = None) -> list[str]:
        """Set known knobs (on this object, or on `extra` for a sandbox's own); returns unknown names."""
        names = {f.name for f in fields(self)} - {"rng", "lock"}
        unknown = []
        for name, value in knobs.items():
            if name in names:
                setattr(self, name, value)
                if name == "seed":
                    self.rng.seed(value)
            elif extra is not None and name in getattr(extra, "KNOBS", ()):
                setattr(extra, name, value)
            else:
                unknown.append(name)
        return unknown
