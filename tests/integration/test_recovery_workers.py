"""Recovery workers as real processes (`python -m core worker`) against the sandbox partners
served on loopback, as a scaled-out deployment runs them: two workers on PostgreSQL never do
one step twice, and a worker killed with SIGKILL again and again still settles every
recovery with the invariants intact."""

from __future__ import annotations

import os
import random
import select as fd_select
import signal
import subprocess
import sys
import time

import pytest
from sqlmodel import col, select

from core.adapters.sandbox.server import make_server, serve_in_thread
from core.config import Settings
from core.domain.recovery import TERMINAL, RecoveryState
from core.persistence.tables import Recovery
from core.persistence.uow import UnitOfWork
from core.reference_data import load_catalog
from core.security.keys import load_keys
from core.services.recovery.views import RecoveryRequest
from core.simulation.invariants import check_invariants
from core.simulation.rig import Rig, build_rig
from tests.support import ROOT
from tests.support.db import database_url
from tests.support.people import mobile
from tests.support.processes import start_worker

pytestmark = pytest.mark.slow  # worker processes started, killed and waited for
CATALOG = load_catalog(Settings().data_dir / "channels.json")


@pytest.fixture
def deployment(engine, tmp_path):
    """Shared keys, a rig whose sandbox partners are served on loopback, and the environment a
    worker process needs to reach the same database and partners."""
    secrets_file = tmp_path / "secrets.json"
    keys = load_keys({}, secrets_file, production=False)
    rig = build_rig(engine, CATALOG, keys=(keys.data_key, keys.index_key), settle_s=0.2)
    rig.payouts.lost_rate = 1.0  # no portal listens here: workers learn outcomes by asking
    rig.carrier.faults.latency_s = 0.05  # slow enough for kills to land mid-run
    server = make_server({"/carrier": rig.carrier, "/payouts": rig.payouts}, hang_s=1.0)
    serve_in_thread(server)
    port = server.server_address[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(engine),
        "PORTAL_SECRETS_FILE": str(secrets_file),
        "CARRIER_API_URL": f"http://127.0.0.1:{port}/carrier",
        "PAYOUT_API_URL": f"http://127.0.0.1:{port}/payouts",
        "PARTNER_TIMEOUT_S": "0.5",
        "WORKER_LEASE_S": "2",
        "PYTHONPATH": str(ROOT),
    }
    try:
        yield rig, env
    finally:
        server.shutdown()
        server.server_close()


def submit(rig: Rig, count: int) -> dict[str, int]:
    opening = {}
    for i in range(count):
        phone = mobile(i)
        consumer = rig.consumer(phone)
        rig.carrier.balances[phone] = opening[phone] = 100_000
        request = RecoveryRequest("alipay", phone, 20_000, f"payee-{i}@example.com")
        rig.recoveries.submit(consumer, f"workers-{i:04d}", request)
    return opening


def wait_until_settled(rig: Rig, timeout_s: float = 90) -> list[Recovery]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with UnitOfWork(rig.engine) as uow:
            rows = list(uow.session.exec(select(Recovery).order_by(col(Recovery.id))).all())
        if rows and all(RecoveryState(r.state) in TERMINAL for r in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError("the recoveries did not settle")


def wait_for_start(process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Block until the worker prints that it has started (its first line)."""
    assert process.stdout is not None
    ready, _, _ = fd_select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else ""
    if "started" not in line:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"the worker did not start: {line!r}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # several workers: the PostgreSQL deployment
def test_two_worker_processes_on_postgresql_never_do_one_step_twice(engine, deployment):
    rig, env = deployment
    opening = submit(rig, 40)
    workers = [start_worker(env), start_worker(env)]
    try:
        rows = wait_until_settled(rig)
    finally:
        for process in workers:
            stop(process)
    assert all(RecoveryState(r.state) is RecoveryState.PAID for r in rows)
    debits = list(rig.carrier.debits.values())
    payouts = [p for book in rig.payouts.records.values() for p in book.values()]
    assert len(debits) == len(payouts) == 40
    # A second POST with one of our references would mean a step was performed twice.
    assert [d.reference for d in debits if d.replays] == []
    assert [p.reference for p in payouts if p.replays] == []
    assert check_invariants(rig, opening) == []


@pytest.mark.parametrize(
    ("in_flight", "count"),
    [(1, 25), (16, 100)],
    ids=["one-call-at-a-time", "16-calls-in-flight-slow-partners"],
)
def test_a_worker_killed_again_and_again_still_settles_every_recovery(engine, deployment, in_flight, count):
    """With one call at a time, and with 16 in flight against partners taking 50 to 300 ms: a
    kill may land with a batch of claims outstanding, each call made or not, recorded or not."""
    rig, env = deployment
    env = {**env, "WORKER_CONCURRENCY": str(in_flight)}
    if in_flight > 1:
        rig.carrier.faults.latency_s, rig.carrier.faults.latency_max_s = 0.05, 0.3  # the payouts' too
    opening = submit(rig, count)
    rng = random.Random(7)
    kills = 0
    for _ in range(8):
        process = start_worker(env, stdout=subprocess.PIPE, text=True)
        # Kill mid-run, timed from the moment the worker says it has started: a Python start takes
        # a second on a quiet machine and several on a loaded one, so a fixed sleep from launch
        # sometimes killed every worker before it did anything.
        wait_for_start(process)
        time.sleep(rng.uniform(0.1, 0.8))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        kills += 1
    with UnitOfWork(rig.engine) as uow:
        states = [RecoveryState(r.state) for r in uow.session.exec(select(Recovery)).all()]
    assert states.count(RecoveryState.DEBITING) < len(states)  # the killed workers got work done ...
    assert not all(s in TERMINAL for s in states)  # ... and left some unfinished for the next one
    last = start_worker(env)
    try:
        rows = wait_until_settled(rig, timeout_s=120)
    finally:
        stop(last)
    assert kills == 8
    assert all(RecoveryState(r.state) is RecoveryState.PAID for r in rows)
    assert check_invariants(rig, opening) == []


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_worker_processes_started_together_share_the_work_and_stop_together(engine, deployment):
    """`worker --processes 2`: two worker processes under one command pay every recovery once
    and both end when the command is told to stop."""
    rig, env = deployment
    command = subprocess.Popen(
        [sys.executable, "-m", "core", "worker", "--processes", "2", "--concurrency", "4"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        # both children up (a Python start takes seconds on a loaded machine) before there is work
        lines = [command.stdout.readline() for _ in range(3)] if command.stdout else []
        assert lines[0].startswith("2 worker processes started"), lines
        assert all(" started (4 calls in flight at most)" in line for line in lines[1:]), lines
        opening = submit(rig, 30)
        rows = wait_until_settled(rig)
    finally:
        command.send_signal(signal.SIGTERM)
        out, _ = command.communicate(timeout=60)
    assert command.returncode == 0
    assert "worker processes stopped" in out
    assert out.count(" stopped after ") == 2  # each child said it stopped
    assert all(RecoveryState(r.state) is RecoveryState.PAID for r in rows)
    debits = list(rig.carrier.debits.values())
    payouts = [p for book in rig.payouts.records.values() for p in book.values()]
    assert len(debits) == len(payouts) == 30
    assert [d.reference for d in debits if d.replays] == [] and [p.reference for p in payouts if p.replays] == []
    assert check_invariants(rig, opening) == []


def test_several_worker_processes_over_in_process_sandboxes_are_refused_with_a_message(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}"}
    env["PORTAL_SECRETS_FILE"] = str(tmp_path / "s.json")
    env.pop("CARRIER_API_URL", None), env.pop("PAYOUT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "core", "worker", "--processes", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "python -m core sandbox" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
