"""The risk decision as the engine makes it on every submission: `RiskService.assess` inside a
unit of work (SQLite's BEGIN IMMEDIATE included), reading the history of the user, the number
and the device and the deny list from a database that holds realistic history, then running
every rule.

History: 20,000 recoveries (some split into linked parts) by 2,000 users over the last 30 days
in every state, 1,000 deny-list entries, and the measured subject at its busiest: a user, a
number shared with other accounts and a device shared across users, each with tens of
recoveries in the last week and several in the last hour (so velocity, structuring and the
deny list all have rows to read). 2,000 decisions for that subject, then 2,000 for ordinary
users picked at random.

Floor: the target of 10 ms at the 99th percentile (a decision must not be what a person
waits for), and the article's leading platforms, which answer "in under 1 s".
Then the same on PostgreSQL (TEST_DATABASE_URL or BENCH_DATABASE_URL), in a fresh schema that
is dropped afterwards.

The last line is one JSON object: p50_ms, p99_ms (SQLite, busiest subject), and more.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.config import Settings
from core.domain.carriers import Carrier
from core.domain.risk import Assessment, RiskThresholds
from core.persistence import migrate
from core.persistence.db import engine_for, scratch_schema
from core.persistence.tables import DenyEntry, Recovery, User
from core.persistence.uow import UnitOfWork
from core.security.fields import MOBILE_NUMBER, BlindIndex
from core.services.risk import RiskService, Subject

DECISIONS = int(os.environ.get("BENCH_DECISIONS", "2000"))
USERS, RECOVERIES, DENIED, DEVICES = 2_000, 20_000, 1_000, 800
TARGET_P99_MS = 10.0
ARTICLE_MS = 1_000.0  # the article's leaders: a decision "in under 1 s"
NOW = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)
STATES = ["paid"] * 80 + ["cancelled"] * 5 + ["rejected"] * 5 + ["review"] * 3 + ["refunded"] * 3 + ["debiting"] * 4
THRESHOLDS = RiskThresholds()
LIMIT_FEN = Settings().limit_per_recovery_fen
MOBILE = Carrier.CHINA_MOBILE


class History:
    """Rows for one database, made from one seeded random source (both databases get the same)."""

    def __init__(self, risk: RiskService, number_index: BlindIndex) -> None:
        self.rng = random.Random(20261118)  # a replayable benchmark, not a secret
        self.risk = risk
        self.numbers = [number_index(f"139{i:08d}") for i in range(USERS)]
        self.devices = [risk.device_index(f"10.{i // 250}.{i % 250}.0/24|agent-{i}") for i in range(DEVICES)]
        self.users: list[dict[str, Any]] = []
        self.recoveries: list[dict[str, Any]] = []
        self.deny: list[dict[str, Any]] = []
        self.busy: Subject | None = None

    def build(self) -> None:
        rng = self.rng
        self.users = [
            {"id": _uuid(rng), "role": "consumer", "created_at": NOW - dt.timedelta(days=rng.uniform(1, 400))}
            for _ in range(USERS)
        ]
        for _ in range(RECOVERIES):  # 80,000 fen and more: two or more linked parts
            u = rng.randrange(USERS)
            at = NOW - dt.timedelta(seconds=rng.uniform(0, 30 * 86_400))
            self.recovery(
                u, self.numbers[u], rng.choice(self.devices), at, rng.choice([2_000, 20_000, 80_000, 120_000])
            )
        # The measured subject: a user whose number two other accounts also used, on a device
        # shared by many accounts, busy over the last week and in the last hour.
        busy_user, partners = 0, (1, 2)
        number, device = self.numbers[busy_user], self.devices[0]
        for i in range(60):  # the last week, several just under the 1,000 CNY review amount
            at = NOW - dt.timedelta(seconds=rng.uniform(3_600, 7 * 86_400))
            self.recovery(busy_user, number, device, at, 95_000 if i % 6 == 0 else rng.choice([5_000, 30_000]))
        for minutes in (5, 12, 20, 33, 41, 55):  # the last hour
            self.recovery(busy_user, number, device, NOW - dt.timedelta(minutes=minutes), 10_000)
        for partner in partners:  # the same number from other accounts
            for minutes in (3, 25):
                self.recovery(partner, number, self.devices[partner], NOW - dt.timedelta(minutes=minutes), 10_000)
        for u in range(3, 15):  # the same device from other accounts
            self.recovery(u, self.numbers[u], device, NOW - dt.timedelta(minutes=rng.uniform(1, 59)), 10_000)
        self.busy = Subject(self.users[busy_user]["id"], number, device, self.risk.payee_index("busy@example.com"))
        for i in range(DENIED):
            kind = ("user", "number", "device", "payee")[i % 4]
            value = {
                "user": self.users[-1 - i]["id"],
                "number": self.numbers[-1 - i],
                "device": self.devices[DEVICES // 2 + i % (DEVICES // 2)],  # never the measured one
                "payee": self.risk.payee_index(f"fraud{i}@example.com"),
            }[kind]
            self.deny.append({"key": f"{kind}:{value}", "kind": kind, "reason": "benchmark", "added_by": "bench"})
        self.deny = list({row["key"]: row for row in self.deny}.values())

    def recovery(self, u: int, number: str, device: str, at: dt.datetime, amount: int) -> None:
        """One recovery by user `u`: linked parts of at most 500 CNY, as Alipay takes them."""
        rng = self.rng
        state = rng.choice(STATES)
        parts = (
            [amount] if amount <= 50_000 else [50_000] * (amount // 50_000) + [amount % 50_000] * (amount % 50_000 > 0)
        )
        group = _uuid(rng)
        key = f"bench-{group[:12]}"
        for part, debit in enumerate(parts, start=1):
            self.recoveries.append(
                {
                    "id": group if part == 1 else _uuid(rng),
                    "group_id": group,
                    "part": part,
                    "parts": len(parts),
                    "user_id": self.users[u]["id"],
                    "idempotency_key": key,
                    "request_hash": "0" * 64,
                    "state": state,
                    "channel_id": "alipay",
                    "number_index": number,
                    "number_cipher": b"\0" * 48,
                    "masked_number": "139****0000",
                    "payee_cipher": b"\0" * 48,
                    "debit_fen": debit,
                    "fee_fen": debit // 40,
                    "reason": "",
                    "device_index": device,
                    "risk_decision": "approve",
                    "risk_reasons": "",
                    "created_at": at,
                    "updated_at": at,
                }
            )

    def load(self, engine: Engine) -> None:
        with engine.begin() as connection:
            connection.execute(insert(User), self.users)
            for start in range(0, len(self.recoveries), 2_000):
                connection.execute(insert(Recovery), self.recoveries[start : start + 2_000])
            connection.execute(insert(DenyEntry), [{**row, "added_at": NOW} for row in self.deny])
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text("ANALYZE"))


def _uuid(rng: random.Random) -> str:
    hexa = f"{rng.getrandbits(128):032x}"
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def decide(engine: Engine, risk: RiskService, subject: Subject, amount_fen: int) -> Assessment:
    """One decision, as `RecoveryService.submit` makes it: in a transaction, from its history."""
    with UnitOfWork(engine) as uow:
        return risk.assess(
            uow,
            subject,
            amount_fen,
            NOW,
            watched_limits=[50_000],
            allocated=MOBILE,
            current=MOBILE,
            quoted=MOBILE,
        )


def measure(engine: Engine, risk: RiskService, history: History) -> dict[str, Any]:
    assert history.busy is not None
    busy = history.busy
    for _ in range(50):  # warm the connection pool, the statement cache and the page cache
        decide(engine, risk, busy, 95_000)
    busy_ms = []
    for i in range(DECISIONS):
        start = time.perf_counter()
        decide(engine, risk, busy, 95_000 if i % 2 else 10_000)
        busy_ms.append((time.perf_counter() - start) * 1000)
    rng = random.Random(7)  # a replayable benchmark, not a secret
    ordinary_ms = []
    for _ in range(DECISIONS):
        u = rng.randrange(15, USERS)
        subject = Subject(
            history.users[u]["id"], history.numbers[u], rng.choice(history.devices), risk.payee_index(f"p{u}@x.cn")
        )
        start = time.perf_counter()
        decide(engine, risk, subject, 20_000)
        ordinary_ms.append((time.perf_counter() - start) * 1000)
    assessment = decide(engine, risk, busy, 95_000)
    return {
        "p50_ms": statistics.median(busy_ms),
        "p99_ms": _p99(busy_ms),
        "max_ms": max(busy_ms),
        "ordinary_p50_ms": statistics.median(ordinary_ms),
        "ordinary_p99_ms": _p99(ordinary_ms),
        "decision": assessment.decision.value,
        "rules": [f"{r.rule}({r.params.get('count', '')})" for r in assessment.reasons],
    }


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def run(engine: Engine, history: History | None = None) -> dict[str, Any]:
    index_key = b"\x01" * 32
    risk = RiskService(engine, index_key, THRESHOLDS, LIMIT_FEN)
    started = time.perf_counter()
    if history is None:
        history = History(risk, BlindIndex(index_key, MOBILE_NUMBER))
        history.build()
    migrate.upgrade(engine)
    history.load(engine)
    loaded_s = time.perf_counter() - started
    groups = len({row["group_id"] for row in history.recoveries})
    return measure(engine, risk, history) | {"rows": len(history.recoveries), "groups": groups, "load_s": loaded_s}


def report(label: str, figures: dict[str, Any]) -> None:
    print(
        f"{label}: history of {USERS:,} users, {figures['groups']:,} recoveries in {figures['rows']:,} rows, "
        f"{DENIED:,} deny-list "
        f"entries (built and loaded in {figures['load_s']:.1f} s)"
    )
    print(
        f"  {DECISIONS} decisions for the busiest subject: p50 {figures['p50_ms']:.2f} ms, "
        f"p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms"
    )
    print(
        f"  {DECISIONS} decisions for ordinary users: p50 {figures['ordinary_p50_ms']:.2f} ms, "
        f"p99 {figures['ordinary_p99_ms']:.2f} ms"
    )
    print(f"  the busiest subject's decision: {figures['decision']}: {', '.join(figures['rules'])}")


def postgres() -> dict[str, Any] | None:
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        print("PostgreSQL: skipped (set TEST_DATABASE_URL)")
        return None
    with scratch_schema(base, prefix="bench") as engine:
        figures = run(engine)
    report("PostgreSQL", figures)
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = engine_for(f"sqlite:///{directory}/portal.sqlite3")
        figures = run(engine)
        engine.dispose()
    report("SQLite (file)", figures)
    ok = "meets" if figures["p99_ms"] <= TARGET_P99_MS else "MISSES"
    print(
        f"floor: target p99 <= {TARGET_P99_MS:.0f} ms ({ok} it); the article's leaders decide in under "
        f"{ARTICLE_MS / 1000:.0f} s (this p99 is {ARTICLE_MS / figures['p99_ms']:.0f}x below that)"
    )
    pg = postgres()
    result = {
        "p50_ms": round(figures["p50_ms"], 3),
        "p99_ms": round(figures["p99_ms"], 3),
        "ordinary_p99_ms": round(figures["ordinary_p99_ms"], 3),
        "target_p99_ms": TARGET_P99_MS,
        "decisions": DECISIONS,
    }
    if pg is not None:
        result |= {"pg_p50_ms": round(pg["p50_ms"], 3), "pg_p99_ms": round(pg["p99_ms"], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
