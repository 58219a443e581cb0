"""The portal's server refuses to start beside another process that runs its own in-process
sandbox partners on the same database: one line saying why and how to share one, exit 2, no
traceback (and no recovery split between two sandboxes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.processes import free_port, start_worker


@pytest.mark.slow  # a worker process and the portal's server
def test_the_server_refuses_to_start_beside_another_sandbox_on_its_database(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_SECRETS_FILE": str(tmp_path / "secrets.json"),
    }
    worker = start_worker(env, stdout=subprocess.PIPE, text=True)
    try:
        assert "started" in (worker.stdout.readline() if worker.stdout else "")
        port = str(free_port())
        server = subprocess.run(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", port, "--server.headless", "true"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    log = server.stdout + server.stderr
    assert server.returncode == 2
    assert "Traceback" not in log
    (refusal,) = [line for line in log.splitlines() if "not starting" in line]
    assert "CARRIER_API_URL" in refusal and "python -m core sandbox" in refusal
