"""How fast a partner's statement is reconciled: a 200,000-row Alipay statement (GBK, `#` lines)
against a ledger that booked the same 200,000 payouts on that day (SQLite, inserted in bulk), with
a few breaks in it (amounts changed, rows missing, rows not ours).

Measured (median of `BENCH_RUNS`):
    parse + match   what reconciliation itself does before it stores anything, through the
                    service module's own two calls: the statement read in its dialect
                    (`read_statement`), then `compare` — our bookings of the day read from the
                    ledger, those of other days for the references it lists, and the match
    import          the whole service call (`ReconciliationService.reconcile`): the above, plus
                    storing the statement's rows and the breaks, and the audit record
Floor: the same parse and join written directly with pandas — `read_csv` of the same bytes, the
day's payout postings of the partner's recoveries by `read_sql` (the same join to recoveries
for the channel that the service makes), the reference built with vectorised string operations, an
outer merge and the amount comparison. Target: parse + match within 2x the floor.

The last line is one JSON object: rows, seconds (parse + match), floor_s, ratio, import_s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.domain.access import Principal, Role
from core.domain.calendar import day_start
from core.domain.statements import StatementRow, write_statement
from core.persistence import migrate
from core.persistence.db import engine_for
from core.persistence.tables import LedgerPosting, ReconciliationBreak, Recovery, StatementImport, StatementLine, User
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.console.approvals import FourEyesService
from core.services.reconciliation import ReconciliationService, compare, read_statement
from core.services.recovery_worker import reference
from core.statement_dialect_files import dialect_for

ROWS = int(os.environ.get("BENCH_ROWS", "200000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BREAKS = 10  # of each kind: amounts changed, rows missing, rows not ours
TARGET = 2.0
DAY = dt.date(2026, 11, 30)
PARTNER = "alipay"


def history(engine: Engine, rng: random.Random) -> list[StatementRow]:
    """The ledger's payouts of the day, inserted in bulk, and the partner's statement rows."""
    user = str(uuid.UUID(int=rng.getrandbits(128)))
    start = day_start(DAY)
    recoveries, postings, rows = [], [], []
    for i in range(ROWS):
        rid = str(uuid.UUID(int=rng.getrandbits(128)))
        amount = rng.randrange(1_000, 500_000)
        at = start + dt.timedelta(seconds=rng.uniform(60, 86_000))
        recoveries.append(_recovery(rid, user, amount, at, i))
        entry = str(uuid.UUID(int=rng.getrandbits(128)))
        for account, fen in (("payouts_in_flight", amount), ("payouts_settled", -amount)):
            postings.append(
                {"id": str(uuid.UUID(int=rng.getrandbits(128))), "entry_id": entry, "recovery_id": rid,
                 "event": "payout_confirmed", "account": account, "amount_fen": fen, "at": at.astimezone(dt.UTC)}
            )  # fmt: skip
        their_ref = f"2088{i:020d}"
        rows.append(
            StatementRow(
                at - dt.timedelta(seconds=30), their_ref, reference(rid, "payout"), "payout", "success", amount
            )
        )
    with engine.begin() as conn:
        conn.execute(insert(User), [{"id": user, "role": "consumer", "created_at": start}])
        for table, batch in ((Recovery, recoveries), (LedgerPosting, postings)):
            for i in range(0, len(batch), 5_000):
                conn.execute(insert(table), batch[i : i + 5_000])
    for i in rng.sample(range(ROWS), BREAKS):  # the partner paid another amount
        rows[i] = dataclasses.replace(rows[i], amount_fen=rows[i].amount_fen + 100)
    for i in sorted(rng.sample(range(ROWS), BREAKS), reverse=True):  # the partner left it out
        del rows[i]
    for n in range(BREAKS):  # not ours
        rows.append(
            StatementRow(start + dt.timedelta(hours=12), f"2099{n:020d}", f"OTHER-{n}", "payout", "success", 9_900)
        )
    return rows


def _recovery(rid: str, user: str, amount: int, at: dt.datetime, i: int) -> dict[str, Any]:
    return {
        "id": rid, "group_id": rid, "part": 1, "parts": 1, "user_id": user, "idempotency_key": f"bench-{i}",
        "request_hash": "0" * 64, "state": "paid", "channel_id": PARTNER, "carrier": "china_mobile",
        "number_index": f"{i:064d}", "number_cipher": b"\0" * 48, "masked_number": "139****0000",
        "payee_cipher": b"\0" * 48, "debit_fen": amount + 100, "fee_fen": 100, "reason": "",
        "device_index": "0" * 64, "risk_decision": "approve", "risk_reasons": "",
        "created_at": at.astimezone(dt.UTC), "updated_at": at.astimezone(dt.UTC),
    }  # fmt: skip


def parse_and_match(engine: Engine, data: bytes) -> tuple[int, int]:
    """What the service does before it stores anything: the same two calls."""
    statement = read_statement(PARTNER, data)
    with UnitOfWork(engine) as uow:
        result = compare(uow, PARTNER, statement, DAY)
    return result.matched, len(result.breaks)


def floor(engine: Engine, data: bytes) -> tuple[int, int]:
    """The same parse and join in pandas."""
    theirs = pd.read_csv(io.BytesIO(data), encoding="gbk", comment="#", dtype=str)
    theirs = theirs[theirs["状态"] == "成功"]
    theirs_fen = (theirs["金额（元）"].str.replace(".", "", regex=False)).astype("int64")
    theirs = pd.DataFrame({"reference": theirs["商户订单号"], "theirs": theirs_fen})
    first = day_start(DAY).astimezone(dt.UTC)
    ours = pd.read_sql(  # the partner's payouts of the day: its channel's recoveries, as the service keeps to
        "SELECT recovery_id, -amount_fen AS ours FROM ledger_postings JOIN recoveries ON recoveries.id = recovery_id "
        "WHERE event = 'payout_confirmed' AND account = 'payouts_settled' AND at >= ? AND at < ? "
        "AND channel_id = 'alipay'",
        engine.raw_connection().driver_connection,
        params=(first.isoformat(sep=" "), (first + dt.timedelta(days=1)).isoformat(sep=" ")),
    )
    ours["reference"] = "rcv-" + ours["recovery_id"].str.replace("-", "", regex=False) + "-p"
    both = theirs.merge(ours[["reference", "ours"]], on="reference", how="outer")
    matched = int((both["theirs"] == both["ours"]).sum())
    return matched, len(both) - matched


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def main() -> None:
    rng = random.Random(20261130)
    with tempfile.TemporaryDirectory() as home:
        engine = engine_for(f"sqlite:///{Path(home) / 'reconcile.sqlite3'}")
        migrate.upgrade(engine)
        load_s, rows = timed(lambda: history(engine, rng))
        data = write_statement(rows, dialect_for(PARTNER))
        print(
            f"{ROWS:,} payouts booked and a {len(rows):,}-row statement ({len(data) / 2**20:.1f} MB) in {load_s:.1f} s"
        )
        ours_runs, floor_runs, imports = [], [], []
        for _ in range(RUNS):
            seconds, ours_result = timed(lambda: parse_and_match(engine, data))
            ours_runs.append(seconds)
            seconds, floor_result = timed(lambda: floor(engine, data))
            floor_runs.append(seconds)
        assert ours_result == floor_result, (ours_result, floor_result)  # the same answer, both ways
        audit = AuditLog()
        service = ReconciliationService(engine, audit, FourEyesService(engine, audit, lapse_s=60), lambda: [PARTNER])
        with engine.begin() as conn:
            conn.execute(insert(User), [{"id": "bench-op", "role": "operator", "created_at": dt.datetime.now(dt.UTC)}])
        operator = Principal("bench-op", Role.OPERATOR)
        for _ in range(RUNS):
            with engine.begin() as conn:  # a fresh import each time (the same bytes are imported once)
                for table in (ReconciliationBreak, StatementLine, StatementImport):
                    conn.execute(delete(table))
            seconds, report = timed(lambda: service.reconcile(operator, PARTNER, data, day=DAY))
            imports.append(seconds)
        ours_s, floor_s, import_s = (statistics.median(x) for x in (ours_runs, floor_runs, imports))
        ratio = ours_s / floor_s
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"  parse + match  {ours_s:6.2f} s   ({ours_result[0]:,} matched, {ours_result[1]} breaks)")
        print(f"  floor (pandas) {floor_s:6.2f} s   read_csv + read_sql + merge: the same counts")
        print(f"  ratio          {ratio:6.2f}     [target <= {TARGET}x: {verdict}]")
        stored = f"{report.rows:,} rows and {len(report.breaks)} breaks stored, audited"
        print(f"  whole import   {import_s:6.2f} s   (parse, match, {stored})")
        print(json.dumps({"rows": len(rows), "seconds": round(ours_s, 3), "floor_s": round(floor_s, 3),
                          "ratio": round(ratio, 2), "import_s": round(import_s, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
