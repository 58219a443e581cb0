"""The audit chain off the critical path, on SQLite and PostgreSQL: an append writes its record
unchained and waits for nobody; the chainer hashes records in, in the order their transactions
made them visible, each at its own place; a record whose transaction commits late is chained
late; records appended from many threads at once are each chained exactly once; the chain still
names the first altered record."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog, chain_pending, verify_audit_chain

MOMENT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
LOG = AuditLog(lambda: MOMENT)


def append(engine, subject: str, *, batched: bool = False) -> None:
    with UnitOfWork(engine, batched=batched) as uow:
        LOG.append(uow, "op-1", "review", subject, {"reason": "identity_confirmed"})
        uow.commit()


def chain_rows(engine) -> list[tuple[int, int | None, str | None]]:
    with engine.connect() as db:
        return [tuple(r) for r in db.execute(text("SELECT seq, chain_seq, hash FROM audit_records ORDER BY seq"))]


def test_an_append_is_written_unchained_and_the_chainer_chains_in_order(engine):
    for n in range(3):
        append(engine, f"r{n}", batched=n == 1)
    assert [(chain, digest) for _, chain, digest in chain_rows(engine)] == [(None, None)] * 3
    assert chain_pending(engine) == 3
    assert [chain for _, chain, _ in chain_rows(engine)] == [1, 2, 3]
    assert chain_pending(engine) == 0  # nothing waits: nothing changes
    append(engine, "r3")
    assert verify_audit_chain(engine) == (4, None)  # verify chains what waits, then checks it all
    assert [chain for _, chain, _ in chain_rows(engine)] == [1, 2, 3, 4]


def test_the_chainer_names_the_first_altered_record_after_chaining(engine):
    for n in range(4):
        append(engine, f"r{n}")
    chain_pending(engine)
    with engine.begin() as db:
        db.execute(text("UPDATE audit_records SET subject = 'someone-else' WHERE seq = 2"))
    append(engine, "r4")  # chained after the altered one: the check still names the first
    assert verify_audit_chain(engine) == (5, 2)


def test_records_appended_from_many_threads_are_each_chained_exactly_once(engine):
    stop = threading.Event()

    def chainer() -> None:  # chaining while the appends run, as the upkeep does
        while not stop.is_set():
            chain_pending(engine)

    with ThreadPoolExecutor(5) as pool:
        running = pool.submit(chainer)
        list(pool.map(lambda n: append(engine, f"r{n}", batched=n % 2 == 0), range(60)))
        stop.set()
        running.result(timeout=60)
    assert verify_audit_chain(engine) == (60, None)
    places = sorted(chain for _, chain, _ in chain_rows(engine))
    assert places == list(range(1, 61))


def test_no_append_waits_for_another_transactions_append_and_a_late_commit_is_chained_late(engine):
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writer at a time whatever the chain does; PostgreSQL shows the difference")
    with UnitOfWork(engine) as slow:
        LOG.append(slow, "op-1", "review", "slow", {})  # appended, its transaction still open
        done = threading.Event()
        other = threading.Thread(target=lambda: (append(engine, "quick"), done.set()))
        other.start()
        assert done.wait(10), "an append waited for another transaction's append"
        other.join()
        assert chain_pending(engine) == 1  # the quick one, committed first, is chained first
        slow.commit()
    assert chain_pending(engine) == 1
    rows = {subject: (seq, chain) for seq, chain, subject in _by_subject(engine)}
    assert rows["slow"][0] < rows["quick"][0]  # the slow one was written first ...
    assert rows["slow"][1] > rows["quick"][1]  # ... and chained after the one committed before it
    assert verify_audit_chain(engine) == (2, None)


def _by_subject(engine) -> list[tuple[int, int, str]]:
    with engine.connect() as db:
        return [tuple(r) for r in db.execute(text("SELECT seq, chain_seq, subject FROM audit_records"))]
