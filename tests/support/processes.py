"""The portal, its worker and other servers as real processes on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(
    url: str,
    *,
    timeout_s: float = 30.0,
    status: int | None = 200,
    gone: Callable[[], str | None] = lambda: None,
) -> None:
    """Wait until `url` answers (with `status`, or anything when it is None); RuntimeError if it
    never does, or as soon as `gone` says why the process serving it is no longer there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        why = gone()
        if why is not None:
            raise RuntimeError(f"{url} will not come up: {why}")
        try:
            answer = httpx.get(url, timeout=1)
            if status is None or answer.status_code == status:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout_s:g} s")


def start_worker(env: dict[str, str], **popen: Any) -> subprocess.Popen:
    """`python -m core worker` in a session of its own (so a test can kill it and all it started);
    its output goes nowhere unless `popen` says otherwise (e.g. stdout=subprocess.PIPE, text=True)."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen(
        [sys.executable, "-m", "core", "worker"], cwd=ROOT, env=env, start_new_session=True, **popen
    )


@contextlib.contextmanager
def running_portal(script: str = "streamlit_app.py", **env: str) -> Iterator[str]:
    """`streamlit run` of the portal on a free loopback port with extra environment; stopped on exit.
    `app.py` is the whole server (with the built-in OpenID provider); `streamlit_app.py` the pages alone."""
    port = free_port()
    # Each server gets its own database and keys unless the test names them: never the
    # developer's var/portal.sqlite3, never another test's.
    home = Path(tempfile.mkdtemp(prefix="portal-test-"))
    env.setdefault("DATABASE_URL", f"sqlite:///{home / 'portal.sqlite3'}")
    env.setdefault("PORTAL_SECRETS_FILE", str(home / "secrets.json"))
    # PORTAL_TEST_LOG=FILE keeps the server's log of a browser test for a look afterwards.
    log = open(os.environ["PORTAL_TEST_LOG"], "ab") if os.environ.get("PORTAL_TEST_LOG") else subprocess.DEVNULL  # noqa: SIM115
    if script == "app.py":
        env.setdefault("PORTAL_URL", f"http://127.0.0.1:{port}")  # the exact host the browser uses
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/_stcore/health", timeout_s=60)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(home, ignore_errors=True)


def run_core(env: dict[str, str], *argv: str, stdin: str = "") -> str:
    """`python -m core ARGV` with extra environment, to its end; its standard output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "core", *argv], cwd=ROOT, env={**os.environ, **env}, input=stdin,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout
