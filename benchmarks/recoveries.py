"""Completed recoveries per second, end to end: submission (idempotency, limits, encryption,
ledger, audit chain, outbox) and the worker's steps (claim, partner call, record) against the
sandbox partners in-process, until every recovery is paid.

Floor: the same number of committed write transactions, each one INSERT, done with plain
`sqlite3` on a file with the same settings (WAL, BEGIN IMMEDIATE). The transactions of the
engine's run are counted, not assumed. Target: at least 50% of the floor.

Then the same on PostgreSQL (TEST_DATABASE_URL or BENCH_DATABASE_URL) with one worker and with
two workers (threads of this process), each in a fresh schema that is dropped afterwards.

The last line is one JSON object: per_s, floor_per_s, ratio (SQLite).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import event
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.config import Settings
from core.domain.recovery import RecoveryState
from core.persistence import migrate
from core.persistence.db import engine_for, scratch_schema
from core.persistence.tables import Recovery
from core.persistence.uow import UnitOfWork
from core.reference_data import load_catalog
from core.services.recovery.views import RecoveryRequest
from core.simulation.rig import build_rig

RECOVERIES = int(os.environ.get("BENCH_RECOVERIES", "300"))
TARGET = 0.5
CATALOG = load_catalog(Settings().data_dir / "channels.json")


def run_engine(engine, workers: int) -> tuple[float, int]:
    """(seconds for RECOVERIES recoveries end to end, committed transactions)."""
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    people = []
    for i in range(RECOVERIES):
        phone = f"1390013{i:04d}"
        people.append((rig.consumer(phone), phone))
        rig.carrier.balances[phone] = 100_000
    commits = [0]
    event.listen(engine, "commit", lambda connection: commits.__setitem__(0, commits[0] + 1))
    started = time.perf_counter()
    for i, (consumer, phone) in enumerate(people):
        rig.recoveries.submit(consumer, f"bench-{i:05d}", RecoveryRequest("alipay", phone, 20_000, "payee@example.com"))
    threads = [threading.Thread(target=rig.worker(poll_s=0.01).run_until_idle) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with UnitOfWork(engine) as uow:
        states = [r.state for r in uow.session.exec(select(Recovery)).all()]
    assert states.count(RecoveryState.PAID.value) == RECOVERIES, "every recovery must end paid"
    return elapsed, commits[0]


def floor(path: Path, transactions: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL, n INTEGER NOT NULL)")
    started = time.perf_counter()
    for i in range(transactions):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (?, ?, ?)", (secrets.token_hex(16), "x" * 64, i))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def postgres(workers: int) -> str:
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"PostgreSQL, {workers} worker(s): skipped (set TEST_DATABASE_URL)"
    with scratch_schema(base, prefix="bench", pool_size=workers + 2) as engine:
        migrate.upgrade(engine)
        elapsed, commits = run_engine(engine, workers)
    return (
        f"PostgreSQL, {workers} worker(s): {RECOVERIES / elapsed:.1f} recoveries/s "
        f"({commits} transactions, {commits / elapsed:.0f}/s)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = engine_for(f"sqlite:///{directory}/portal.sqlite3")
        migrate.upgrade(engine)
        elapsed, commits = run_engine(engine, 1)
        engine.dispose()
        floor_s = floor(Path(directory) / "floor.sqlite3", commits)
    per_s, floor_per_s = RECOVERIES / elapsed, RECOVERIES / floor_s
    ratio = per_s / floor_per_s
    print(f"SQLite, 1 worker: {RECOVERIES} recoveries in {elapsed:.2f} s = {per_s:.1f}/s ({commits} transactions)")
    print(
        f"floor: {commits} one-row transactions with plain sqlite3 in {floor_s:.2f} s = {floor_per_s:.1f} recoveries/s"
    )
    print(f"ratio: {ratio:.2f} (target >= {TARGET})")
    for workers in (1, 2):
        print(postgres(workers))
    print(json.dumps({"per_s": round(per_s, 1), "floor_per_s": round(floor_per_s, 1), "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
