"""Pausing Python's cyclic garbage collector while a large batch of plain objects is built.

Reading a 200,000-row statement or a day's bookings allocates millions of tuples, strings and
rows, none of which form cycles; the collector, triggered by the allocation count alone, would
walk all of them again and again (about a third of the time of a reconciliation). Reference
counting still frees everything as usual; only the cycle search waits until the batch is done.
Process-wide and re-entrant across threads: the collector runs again when the last batch ends,
and is left off if something else had turned it off."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
