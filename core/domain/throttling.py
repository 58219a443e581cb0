"""Back-off for guessing: after a threshold of failures, each further failure doubles a wait,
capped so that nobody (attacker or victim) is ever locked out for good."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleRule:
    name: str
    threshold: int  # failures allowed before any wait
    window: dt.timedelta  # failures older than this are forgotten
    first_wait: dt.timedelta
    longest_wait: dt.timedelta

    def wait_after(self, failures: int) -> dt.timedelta:
        """How long to refuse attempts after the `failures`-th failure."""
        if failures < self.threshold:
            return dt.timedelta(0)
        doublings = min(failures - self.threshold, 30)
        return min(self.first_wait * (2**doublings), self.longest_wait)


#: One account guessed from one client address: the tightest.
ACCOUNT_FROM_CLIENT = ThrottleRule(
    "account+client", 5, dt.timedelta(minutes=15), dt.timedelta(seconds=2), dt.timedelta(minutes=15)
)
#: One account guessed from anywhere: a slowdown, never a lock-out (the owner must get in).
ACCOUNT = ThrottleRule("account", 20, dt.timedelta(hours=1), dt.timedelta(seconds=1), dt.timedelta(minutes=2))
#: One client address guessing many accounts (a spray).
CLIENT = ThrottleRule("client", 30, dt.timedelta(hours=1), dt.timedelta(seconds=5), dt.timedelta(hours=1))
