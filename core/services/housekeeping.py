"""Background upkeep: slow, idempotent work done ahead of time so that no page or quote waits
for it. Each task runs at start and then every so often; one that fails is logged (its kind of
error, never a traceback with data in it) and tried again at its next turn. Several processes
may each run the same tasks: every task is safe to repeat.

Run beside the recovery worker (the portal's embedded one, or `python -m core worker`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)
#: How often the audit records written since the last time are chained in (`audit.chain_pending`).
AUDIT_CHAIN_S = 1.0
#: How often the metrics of recent ended days are brought up to date (the pages read the rest).
METRICS_UPKEEP_S = 600.0
#: How often quote-log lines past their year are deleted.
QUOTE_LOG_UPKEEP_S = 3600.0


@dataclass(frozen=True)
class Task:
    name: str
    every_s: float
    run: Callable[[], object]


class Housekeeping:
    def __init__(self, tasks: Sequence[Task], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._tasks = tuple(tasks)
        self._clock = clock
        self._due = dict.fromkeys((task.name for task in self._tasks), 0.0)  # each due at start
        self.runs = dict.fromkeys((task.name for task in self._tasks), 0)  # done, successfully

    def run_due(self) -> float:
        """Run every task that is due; seconds until the next one is."""
        for task in self._tasks:
            if self._clock() < self._due[task.name]:
                continue
            try:
                task.run()
                self.runs[task.name] += 1
            except Exception as exc:  # tried again at its next turn
                log.warning(
                    "upkeep %r failed (%s); it runs again in %.0f s", task.name, type(exc).__name__, task.every_s
                )
            self._due[task.name] = self._clock() + task.every_s
        return max(0.0, min(self._due.values(), default=60.0) - self._clock())

    def run(self, stop: threading.Event) -> None:
        """Run the tasks when due until `stop` is set."""
        while not stop.is_set():
            stop.wait(self.run_due())
