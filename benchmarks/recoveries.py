"""Completed recoveries per second, end to end (submission with idempotency, limits, encryption,
ledger, audit chain and outbox; then the worker's claim, partner calls and records) until every
recovery is paid, against the sandbox partners — and what each figure is compared with, measured
in the same run:

1. SQLite, one process, partners in-process and instant, run twice, each after an untimed
   warm-up of BENCH_WARMUP recoveries on the same database (first compiles and lazy loads, which
   a running portal paid long ago). First as in production, with no cursor listener:
   recoveries/s. Then again with a listener capturing every SQL statement
   the engine executes, in its transactions (BEGIN IMMEDIATE … COMMIT, read-only ones too) and
   order; the floor is that run's statements **replayed** with plain `sqlite3`, in the same
   transactions, on a copy of the database as it was before the run. (The capture is not timed
   as the engine's: a listener on every statement also sends the page reads through a
   `Connection`, as listeners expect; both runs are printed.) What is left between run and
   floor is the engine's own Python: the domain, encryption, hashing, and the in-process
   partners' answers. Target: ≥ 0.5. The disk's fsync latency is measured beside it (a commit in
   WAL mode costs about one).
   Beside it, the ratio's ceiling: the same run once more with the worker's steps run one after
   another on the thread that claimed them (`steps_inline`: no pool, no thread handing work to
   another, one partner call at a time; measurement only). Its CPU per recovery is the engine's
   Python with nothing spent on threads; the floor over that CPU is the ratio an engine with this
   Python would reach were its commits' fsyncs free, which none is.
2. CPU per recovery: user + system CPU of this process over the first run of 1, in milliseconds,
   less what the in-process sandbox partners spent answering (their handlers, timed on the
   calling thread): the portal's own, as when partners answer from their own machines. Both are
   printed. (And of the PostgreSQL backends in run 4, read from /proc where the server runs on
   this machine.) Target: SQLite ≤ 4 ms.
3. Partner latency hidden: the partners served over loopback HTTP answering at once, then in
   100 ms; the worker keeps WORKER_CONCURRENCY calls in flight. Ratio of the two. Target ≥ 0.8.
4. PostgreSQL (BENCH_DATABASE_URL or TEST_DATABASE_URL), 1 and 2 worker processes: the worker
   processes start and each first works BENCH_WARMUP recoveries of its own, one process at a
   time, untimed (as the SQLite runs warm up: a worker that has run a while compiled its
   statements long ago); then the recoveries are submitted by 4 threads at once (timed on their
   own), then the worker processes, waiting, are released and timed until every recovery is paid.
   Target ≥ 150/s with one process. Where the CPU of that phase goes is printed beside it: the
   worker processes', PostgreSQL's backends' and this process's (the loopback partners).

The last line is one JSON object: per_s, replay_floor_per_s, ratio, cpu_ms (the portal's own),
cpu_ms_process (with the partners' answers), latency_hidden, pg_per_s_1, pg_per_s_2, fsync_ms
(null where a part was skipped), inline_cpu_ms_process and ceiling_ratio (the steps inline).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.adapters.partners import partner_links
from core.adapters.sandbox.server import make_server, serve_in_thread
from core.config import Settings
from core.domain.recovery import RecoveryState
from core.persistence import migrate
from core.persistence.db import engine_for, scratch_schema
from core.persistence.tables import Recovery
from core.persistence.uow import UnitOfWork
from core.reference_data import load_catalog
from core.services import recovery_worker
from core.services.recovery.views import RecoveryRequest
from core.services.recovery_worker import RecoveryWorker
from core.simulation.rig import Rig, build_rig

RECOVERIES = int(os.environ.get("BENCH_RECOVERIES", "300"))
#: Recoveries worked, untimed, before run 1's timed part, in the same process and database: the
#: first run of each statement compiles it, and a few modules and the number metadata load on
#: first use. A portal pays that once after it starts, not per recovery.
WARMUP = int(os.environ.get("BENCH_WARMUP", "50"))
CONCURRENCY = Settings.from_env().worker_concurrency
CATALOG = load_catalog(Settings().data_dir / "channels.json")
NOWHERE = "http://127.0.0.1:9/notices"  # notices are never posted here: the workers ask for status


# --- a run ------------------------------------------------------------------------------------


def prepare(rig: Rig, count: int, prefix: str) -> list[tuple[Any, str]]:
    """Consumers with verified numbers and a balance (before the timed part)."""
    people = []
    for i in range(count):
        phone = f"139{hash(prefix) % 10:01d}{i:07d}"
        people.append((rig.consumer(phone), phone))
        rig.carrier.balances[phone] = 100_000
    rig.payouts.lost_rate = 1.0  # nobody listens for notices: workers learn outcomes by asking
    return people


def submit(rig: Rig, people: list[tuple[Any, str]], prefix: str, threads: int = 1) -> float:
    """Submit every recovery (`threads` at once); the seconds it took."""

    def one(i: int) -> None:
        consumer, phone = people[i]
        rig.recoveries.submit(consumer, f"{prefix}-{i:05d}", RecoveryRequest("alipay", phone, 20_000, "p@example.com"))

    started = time.perf_counter()
    if threads == 1:
        for i in range(len(people)):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(len(people))))
    return time.perf_counter() - started


def paid(engine) -> int:
    with UnitOfWork(engine) as uow:
        query = select(func.count()).select_from(Recovery).where(Recovery.state == RecoveryState.PAID.value)
        return int(uow.session.exec(query).one())


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- 1. SQLite beside its replay floor ----------------------------------------------------------


class Capture:
    """Every statement the engine sends to the database, grouped in its transactions, in the
    order the transactions ended (SQLite runs one writer at a time, so this is their order)."""

    def __init__(self, engine) -> None:
        self.transactions: list[tuple[list[tuple[str, Any, bool]], str]] = []
        self._open: dict[int, list[tuple[str, Any, bool]]] = {}
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", lambda connection: self._end(connection, "COMMIT"))
        event.listen(engine, "rollback", lambda connection: self._end(connection, "ROLLBACK"))

    def _statement(self, connection, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("BEGIN") and self._open.get(id(connection)):
            self._end(connection, "ROLLBACK")  # a snapshot read ends by the driver's rollback, no event
        self._open.setdefault(id(connection), []).append((statement, parameters, executemany))

    def _end(self, connection, how: str) -> None:
        statements = self._open.pop(id(connection), [])
        if statements:
            with self._lock:
                self.transactions.append((statements, how))

    def finish(self) -> None:
        """Reads whose end no event reported (snapshots) are replayed too, as read-only transactions."""
        for key in list(self._open):
            self.transactions.append((self._open.pop(key), "ROLLBACK"))

    @property
    def statements(self) -> int:
        return sum(len(s) for s, _ in self.transactions)


def replay(path: Path, capture: Capture) -> tuple[float, float]:
    """The captured transactions, replayed with plain sqlite3 on `path`: the seconds it took,
    and the CPU seconds (the rest of the time it waits for the disk)."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("PRAGMA foreign_keys = ON", "PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = 30000"):
        connection.execute(pragma)
    cursor = connection.cursor()
    cpu0, started = cpu_s(), time.perf_counter()
    for statements, how in capture.transactions:
        if not statements[0][0].startswith("BEGIN"):
            cursor.execute("BEGIN")  # a read the engine began without a statement of its own
        for statement, parameters, many in statements:
            # an "insertmanyvalues" batch is one statement with its rows' parameters in one flat list
            if many and parameters and isinstance(parameters[0], (list, tuple, dict)):
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
                if cursor.description is not None:
                    cursor.fetchall()
        cursor.execute(how)
    elapsed, cpu = time.perf_counter() - started, cpu_s() - cpu0
    connection.close()
    return elapsed, cpu


def fsync_ms(directory: Path, rounds: int = 40) -> float:
    """The median time to write 4 KiB and fsync it, in this directory."""
    times = []
    with open(directory / "fsync.probe", "wb") as probe:
        for _ in range(rounds):
            probe.write(b"x" * 4096)
            started = time.perf_counter()
            probe.flush()
            os.fsync(probe.fileno())
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


@contextlib.contextmanager
def partners_answering() -> Iterator[list[float]]:
    """The CPU seconds the in-process sandbox partners spend answering while the block runs:
    each request's handler, timed on the thread that calls it (httpx's MockTransport runs it
    inline there). A real partner answers on its own machine; what the portal spends on a call
    (building the request, reading the answer) is outside the handler and stays the portal's."""
    spent = [0.0]
    lock = threading.Lock()
    original = httpx.MockTransport.handle_request

    def timed(transport: httpx.MockTransport, request: httpx.Request) -> httpx.Response:
        start = time.thread_time()
        try:
            return original(transport, request)
        finally:
            with lock:
                spent[0] += time.thread_time() - start

    httpx.MockTransport.handle_request = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        httpx.MockTransport.handle_request = original  # type: ignore[method-assign]


class _Inline:
    """An executor that runs each task as it is submitted, on the submitting thread (see
    `steps_inline`)."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def submit(self, fn, /, *args, **kwargs) -> Future[Any]:  # type: ignore[no-untyped-def]
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # as a pool thread would keep it
            future.set_exception(error)
        _INLINE_RAN[0] += 1
        return future


_INLINE_RAN = [0]


@contextlib.contextmanager
def steps_inline() -> Iterator[None]:
    """The worker's steps run one after another on the thread that claimed them, each as soon as
    it is claimed, in place of its pool of threads: the same claims (as many at once as there
    are slots), the same steps and transactions, with no thread handing work to another. What
    this costs less than the pool is what the threads cost. (Measurement only: a worker that
    works this way keeps one partner call in flight.)"""
    original = recovery_worker.ThreadPoolExecutor
    recovery_worker.ThreadPoolExecutor = _Inline  # type: ignore[misc, assignment]
    before = _INLINE_RAN[0]
    try:
        yield
    finally:
        recovery_worker.ThreadPoolExecutor = original  # type: ignore[misc]
    assert _INLINE_RAN[0] > before, "the worker no longer makes its pool where steps_inline replaces it"


def engine_run(directory: Path, name: str, *, captured: bool, inline: bool = False) -> dict[str, Any]:
    """Every recovery submitted and worked until paid, partners in-process and instant: the
    seconds, this process's CPU and the partners' part of it; with `captured`, the statements
    too (the replay's), and the copy of the database as it was before the run (the replay's);
    with `inline`, the timed work's steps on one thread (`steps_inline`)."""
    path = directory / f"{name}.sqlite3"
    engine = engine_for(f"sqlite:///{path}")
    migrate.upgrade(engine)
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    people = prepare(rig, WARMUP + RECOVERIES, "sqlite")
    worker = rig.worker()
    submit(rig, people[:WARMUP], "warm-up")  # untimed: what a running portal did long ago
    worker.run_until_idle(concurrency=CONCURRENCY)
    people = people[WARMUP:]
    if captured:
        before = sqlite3.connect(path)
        copy = sqlite3.connect(directory / "replay.sqlite3")
        before.backup(copy)  # the database as it is before the run, for the replay
        before.close(), copy.close()
    capture = Capture(engine) if captured else None
    with partners_answering() as partners:
        cpu0, started = cpu_s(), time.perf_counter()
        submit(rig, people, "sqlite")
        with steps_inline() if inline else contextlib.nullcontext():
            worker.run_until_idle(concurrency=CONCURRENCY)
        elapsed, cpu = time.perf_counter() - started, cpu_s() - cpu0
    assert paid(engine) == WARMUP + RECOVERIES, "every recovery must end paid"
    if capture is not None:
        event.remove(engine, "before_cursor_execute", capture._statement)
        capture.finish()
    engine.dispose()
    return {"elapsed": elapsed, "cpu_s": cpu, "partners_cpu_s": partners[0], "capture": capture}


def sqlite_run(directory: Path) -> dict[str, Any]:
    """Run 1: the engine timed as it runs in production (no cursor listener), then again with
    the capture on (a listener on every statement, and snapshots read through a `Connection`,
    as with any listener), whose statements the floor replays."""
    plain = engine_run(directory, "portal", captured=False)
    inline = engine_run(directory, "inline", captured=False, inline=True)
    seen = engine_run(directory, "captured", captured=True)
    capture = seen["capture"]
    floor_s, floor_cpu_s = replay(directory / "replay.sqlite3", capture)
    return {
        "elapsed": plain["elapsed"],
        "captured_elapsed": seen["elapsed"],
        "cpu_ms_process": plain["cpu_s"] / RECOVERIES * 1000,
        "partners_cpu_ms": plain["partners_cpu_s"] / RECOVERIES * 1000,
        "cpu_ms": (plain["cpu_s"] - plain["partners_cpu_s"]) / RECOVERIES * 1000,
        "inline_elapsed": inline["elapsed"],
        "inline_cpu_s": inline["cpu_s"],
        "floor_s": floor_s,
        "floor_cpu_ms": floor_cpu_s / RECOVERIES * 1000,
        "transactions": len(capture.transactions),
        "statements": capture.statements,
        "fsync_ms": fsync_ms(directory),
    }


# --- 3. partner latency hidden ------------------------------------------------------------------


def loopback_run(directory: Path, latency_s: float) -> float:
    """Recoveries/s end to end with the partners over loopback HTTP answering in `latency_s`."""
    engine = engine_for(f"sqlite:///{directory}/loopback-{int(latency_s * 1000)}.sqlite3")
    migrate.upgrade(engine)
    rig = build_rig(engine, CATALOG, settle_s=0.0)
    people = prepare(rig, RECOVERIES, f"loop{latency_s}")
    rig.carrier.faults.latency_s = latency_s  # the payouts share the carrier's faults
    server = make_server({"/carrier": rig.carrier, "/payouts": rig.payouts}, hang_s=1.0)
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    links = partner_links(
        f"{base}/carrier", f"{base}/payouts", [c.id for c in CATALOG.channels],
        timeout_s=5.0, secret_for=lambda _: b"", notifier=None,  # type: ignore[arg-type]
    )  # fmt: skip
    worker = RecoveryWorker(
        engine,
        rig.recoveries,
        links.carrier,
        links.payouts,
        lambda: CATALOG,
        lambda _: NOWHERE,
        concurrency=CONCURRENCY,
    )
    try:
        started = time.perf_counter()
        submit(rig, people, f"loop{latency_s}")
        worker.run_until_idle(concurrency=CONCURRENCY)
        elapsed = time.perf_counter() - started
        assert paid(engine) == RECOVERIES, "every recovery must end paid"
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()
    return RECOVERIES / elapsed


# --- 4. PostgreSQL, worker processes --------------------------------------------------------------


def _worker_process(
    url: str, schema: str, keys: tuple[bytes, bytes], carrier: str, payouts: str, warm, warmed, go, stop, steps
) -> None:  # type: ignore[no-untyped-def]
    """One worker process: its own engine and partner clients; it works its warm-up's
    recoveries when its `warm` is set (untimed, as the SQLite runs warm up), says so on
    `warmed`, and is released for the timed work by `go`."""
    engine = engine_for(url, pool_size=CONCURRENCY + 2, connect_args={"options": f"-csearch_path={schema}"})
    links = partner_links(
        carrier, payouts, [c.id for c in CATALOG.channels], timeout_s=5.0, secret_for=lambda _: b"", notifier=None
    )  # type: ignore[arg-type]
    recoveries = build_rig(engine, CATALOG, keys=keys).recoveries  # the same keys: it decrypts numbers for calls
    worker = RecoveryWorker(
        engine, recoveries, links.carrier, links.payouts, lambda: CATALOG, lambda _: NOWHERE, concurrency=CONCURRENCY
    )
    warm.wait()
    worker.run_until_idle(concurrency=CONCURRENCY)
    warmed.put(worker.steps)
    go.wait()
    before, cpu0 = worker.steps, cpu_s()
    stopping = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), stopping.set()), daemon=True).start()
    worker.run(stopping, idle_s=0.01)
    steps.put((worker.steps - before, cpu_s() - cpu0))  # its steps, and its CPU seconds from the go to the stop


def backend_cpu_s(pids: set[int]) -> float | None:
    """User + system CPU of these PostgreSQL backends so far (None: not readable here)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return total / ticks


def postgres(base: str, processes: int) -> dict[str, float]:
    with scratch_schema(base, prefix="bench", pool_size=8) as engine:
        migrate.upgrade(engine)
        keys = (secrets.token_bytes(32), secrets.token_bytes(32))
        rig = build_rig(engine, CATALOG, settle_s=0.0, keys=keys)
        people = prepare(rig, WARMUP * processes + RECOVERIES, f"pg{processes}")
        server = make_server({"/carrier": rig.carrier, "/payouts": rig.payouts}, hang_s=1.0)
        serve_in_thread(server)
        partners = f"http://127.0.0.1:{server.server_address[1]}"
        url = engine.url.render_as_string(hide_password=False)
        with engine.connect() as connection:
            schema = str(connection.exec_driver_sql("SHOW search_path").scalar())
        context = multiprocessing.get_context("spawn")
        warms = [context.Event() for _ in range(processes)]
        go, stop = context.Event(), context.Event()
        warmed, steps = context.Queue(), context.Queue()
        links = (f"{partners}/carrier", f"{partners}/payouts")
        children = [
            context.Process(target=_worker_process, args=(url, schema, keys, *links, warm, warmed, go, stop, steps))
            for warm in warms
        ]
        try:
            for child in children:
                child.start()
            for i, warm in enumerate(warms):  # one process at a time: each works a warm-up of its own
                submit(rig, people[i * WARMUP : (i + 1) * WARMUP], f"pg{processes}-warm-up{i}", threads=4)
                warm.set()
                if WARMUP and warmed.get(timeout=300) < 2 * WARMUP:  # a debit and a payout each
                    raise RuntimeError("a worker process did not work its whole warm-up")
            if paid(engine) != WARMUP * processes:
                raise RuntimeError("the workers did not pay every warm-up recovery")
            submit_s = submit(rig, people[WARMUP * processes :], f"pg{processes}", threads=4)
            pids = _backends(engine)
            cpu0, own0 = backend_cpu_s(pids), cpu_s()
            started = time.perf_counter()
            go.set()
            deadline = started + 600
            while paid(engine) < WARMUP * processes + RECOVERIES:
                if time.perf_counter() > deadline:
                    raise RuntimeError("the workers did not pay every recovery in 10 minutes")
                time.sleep(0.02)
            work_s = time.perf_counter() - started
            cpu1, own1 = backend_cpu_s(_backends(engine) | pids), cpu_s()
        finally:
            stop.set()
            for child in children:
                child.join(timeout=30)
                if child.is_alive():
                    child.kill()
            server.shutdown()
            server.server_close()
        workers_cpu = sum(steps.get(timeout=5)[1] for _ in children)
    return {
        "submit_per_s": RECOVERIES / submit_s,
        "per_s": RECOVERIES / work_s,
        "backend_cpu_ms": ((cpu1 - cpu0) / RECOVERIES * 1000) if cpu0 is not None and cpu1 is not None else -1,
        "worker_cpu_ms": workers_cpu / RECOVERIES * 1000,
        "partners_cpu_ms": (own1 - own0) / RECOVERIES * 1000,  # this process: the loopback partners' server
    }


def _backends(engine) -> set[int]:  # type: ignore[no-untyped-def]
    """The server processes of every connection to this database now (the workers' included)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).all()
    return {int(r[0]) for r in rows}


# --- the report ---------------------------------------------------------------------------------


def main() -> None:
    print(
        f"{RECOVERIES} recoveries each run; worker concurrency {CONCURRENCY} (WORKER_CONCURRENCY); "
        f"the SQLite runs and the PostgreSQL workers after an untimed warm-up of {WARMUP} (BENCH_WARMUP)"
    )
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        run = sqlite_run(directory)
        no_latency = loopback_run(directory, 0.0)
        slow = loopback_run(directory, 0.1)
    per_s, floor_per_s = RECOVERIES / run["elapsed"], RECOVERIES / run["floor_s"]
    ratio = per_s / floor_per_s
    print(
        f"SQLite, 1 process, partners in-process: {per_s:.1f} recoveries/s "
        f"({RECOVERIES / run['captured_elapsed']:.1f}/s again with the capture's listener on, which the floor "
        f"replays: {run['transactions']} transactions, {run['statements']} statements: "
        f"{run['transactions'] / RECOVERIES:.1f} and {run['statements'] / RECOVERIES:.1f} per recovery)"
    )
    print(
        f"  replay floor (the same SQL, same transactions, plain sqlite3): {floor_per_s:.1f}/s: "
        f"{run['floor_s'] / RECOVERIES * 1000:.2f} ms per recovery, of which CPU {run['floor_cpu_ms']:.2f} ms "
        f"(the rest waits for the disk: a commit's fsync at a time)"
    )
    print(f"  ratio {ratio:.2f} (target >= 0.5); fsync {run['fsync_ms']:.2f} ms on this disk")
    print(
        f"  CPU per recovery: {run['cpu_ms_process']:.2f} ms in this process, of which the in-process sandbox "
        f"partners answering {run['partners_cpu_ms']:.2f} ms: the portal's own {run['cpu_ms']:.2f} ms (target <= 4)"
    )
    inline_cpu_ms = run["inline_cpu_s"] / RECOVERIES * 1000
    inline_per_s, bare_per_s = RECOVERIES / run["inline_elapsed"], RECOVERIES / run["inline_cpu_s"]
    print(
        f"  the same with the worker's steps inline on one thread (measurement only: one partner call at a time): "
        f"{inline_per_s:.1f}/s, {inline_cpu_ms:.2f} ms CPU per recovery in this process "
        f"({run['cpu_ms_process'] - inline_cpu_ms:+.2f} ms with the pool's threads); "
        f"ratio {inline_per_s / floor_per_s:.2f} as measured (each commit's fsync waits in line), "
        f"{bare_per_s / floor_per_s:.2f} were the commits free: the ceiling of an engine with this Python"
    )
    hidden = slow / no_latency
    print(
        f"partners over loopback: {no_latency:.1f}/s answering at once, {slow:.1f}/s answering in 100 ms: "
        f"latency hidden {hidden:.2f} (target >= 0.8)"
    )
    pg: dict[int, dict[str, float]] = {}
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if base:
        for processes in (1, 2):
            pg[processes] = figures = postgres(base, processes)
            backend = f", PostgreSQL's backends {figures['backend_cpu_ms']:.1f} ms" if figures[
                "backend_cpu_ms"] >= 0 else ""  # fmt: skip
            print(
                f"PostgreSQL, {processes} worker process(es): {figures['per_s']:.1f} recoveries/s worked "
                f"(target >= 150 with one); submitted by 4 threads at {figures['submit_per_s']:.1f}/s\n"
                f"  CPU per recovery while worked: the worker process(es) {figures['worker_cpu_ms']:.1f} ms{backend}, "
                f"the loopback partners (this process) {figures['partners_cpu_ms']:.1f} ms; this machine has "
                f"{os.cpu_count()} cores"
            )
    else:
        print("PostgreSQL: skipped (set TEST_DATABASE_URL or BENCH_DATABASE_URL)")
    print(
        json.dumps(
            {
                "per_s": round(per_s, 1),
                "replay_floor_per_s": round(floor_per_s, 1),
                "ratio": round(ratio, 3),
                "cpu_ms": round(run["cpu_ms"], 2),
                "cpu_ms_process": round(run["cpu_ms_process"], 2),
                "latency_hidden": round(hidden, 3),
                "pg_per_s_1": round(pg[1]["per_s"], 1) if 1 in pg else None,
                "pg_per_s_2": round(pg[2]["per_s"], 1) if 2 in pg else None,
                "fsync_ms": round(run["fsync_ms"], 3),
                "inline_cpu_ms_process": round(inline_cpu_ms, 2),
                "ceiling_ratio": round(bare_per_s / floor_per_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
