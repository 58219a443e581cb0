"""One process at a time runs the in-process sandbox partners on a database: a second is refused
with a message saying how to share one sandbox, so no recovery is ever split between two
sandboxes and left stuck (`no_such_debit`). On SQLite and PostgreSQL, and across processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.__main__ import main
from core.i18n import Translator
from core.services.process_lease import SANDBOX_PARTNERS, Lease, LeaseHeld
from tests.support.processes import start_worker


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_second_holder_is_refused_until_the_first_releases_or_stops_renewing(engine):
    clock = Clock()
    first = Lease(engine, SANDBOX_PARTNERS, holder="host-a:100:aaaa", clock=clock, ttl_s=30)
    second = Lease(engine, SANDBOX_PARTNERS, holder="host-b:200:bbbb", clock=clock, ttl_s=30)
    first.acquire()
    first.acquire()  # taking it again is harmless
    with pytest.raises(LeaseHeld) as held:
        second.acquire()
    assert held.value.params == {"host": "host-a", "pid": "100"}
    for language in ("zh-CN", "en"):
        message = Translator(language).error(held.value)
        assert "CARRIER_API_URL" in message and "100" in message and "host-a" in message
    clock.now += dt.timedelta(seconds=29)
    with pytest.raises(LeaseHeld):
        second.acquire()
    clock.now += dt.timedelta(seconds=2)  # the first stopped renewing: a crashed process
    second.acquire()
    first.release()  # releasing what it no longer holds takes nothing from the new holder
    with pytest.raises(LeaseHeld):
        first.acquire()
    second.release()
    first.acquire()


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_SECRETS_FILE": str(tmp_path / "secrets.json"),
    }


@pytest.mark.slow  # a worker process
def test_a_command_line_recovery_beside_a_process_with_its_own_sandbox_is_refused_not_stuck(
    tmp_path, monkeypatch, capsys
):
    env = cli_env(tmp_path)
    for name in ("DATABASE_URL", "PORTAL_SECRETS_FILE"):
        monkeypatch.setenv(name, env[name])
    worker = start_worker(env, stdout=subprocess.PIPE, text=True)
    try:
        assert "started" in (worker.stdout.readline() if worker.stdout else "")  # it holds the lease now
        from core.bootstrap import build
        from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
        from core.simulation.rig import add_verified_consumer

        services = build(refresh=False)
        add_verified_consumer(
            services.engine,
            FieldCipher(services.keys.data_key),
            BlindIndex(services.keys.index_key, MOBILE_NUMBER),
            "13800138000",
            dt.datetime.now(dt.UTC),
        )
        argv = ["--lang", "en", "recover", "start", "--as-phone", "13800138000", "--channel", "alipay"]
        argv += ["--amount", "100", "--payee", "me@example.com", "--accept-agreement", "--json"]
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and "CARRIER_API_URL" in err
        assert "Traceback" not in err
        assert main(["recover", "list", "--as-phone", "13800138000", "--json"]) == 0
        assert capsys.readouterr().out.strip() == "[]"  # nothing was submitted
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:  # the worker released its lease on the way out: now the command line may run
        code = main(argv)
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out, _ = capsys.readouterr()
    assert code == 0 and '"state": "paid"' in out
