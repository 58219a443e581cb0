"""The background upkeep: each task at start and then at its own interval, a failing task logged
by its kind (never its message) and tried again at its next turn, and the loop stops when told."""

from __future__ import annotations

import logging
import threading

from core.services.housekeeping import Housekeeping, Task


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_task_runs_at_start_then_at_its_own_interval():
    clock, done = Clock(), []
    upkeep = Housekeeping(
        [Task("often", 10, lambda: done.append("often")), Task("rarely", 60, lambda: done.append("rarely"))],
        clock=clock,
    )
    assert upkeep.run_due() == 10 and done == ["often", "rarely"]
    clock.now = 9.9
    assert upkeep.run_due() > 0 and done == ["often", "rarely"]  # nothing due yet
    clock.now = 10
    upkeep.run_due()
    clock.now = 60
    assert upkeep.run_due() == 10
    assert done == ["often", "rarely", "often", "often", "rarely"]
    assert upkeep.runs == {"often": 3, "rarely": 2}


def test_a_failing_task_is_logged_by_its_kind_and_tried_again_at_its_next_turn(caplog):
    clock, calls = Clock(), []

    def fails() -> None:
        calls.append(clock.now)
        raise RuntimeError("secret detail 13900139000")

    upkeep = Housekeeping([Task("flaky", 30, fails), Task("fine", 30, lambda: None)], clock=clock)
    with caplog.at_level(logging.WARNING):
        upkeep.run_due()
    assert upkeep.runs == {"flaky": 0, "fine": 1}  # the other task still ran
    assert "RuntimeError" in caplog.text and "13900139000" not in caplog.text and "Traceback" not in caplog.text
    clock.now = 30
    upkeep.run_due()
    assert calls == [0, 30]


def test_the_loop_stops_when_told():
    ran = threading.Event()
    stop = threading.Event()
    upkeep = Housekeeping([Task("once", 3600, ran.set)])
    thread = threading.Thread(target=upkeep.run, args=(stop,))
    thread.start()
    assert ran.wait(5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
