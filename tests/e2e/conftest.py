"""A real portal on loopback and a real headless Chromium, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the portal did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def portal_url() -> Iterator[str]:
    with running_portal() as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("Debian's chromium is required here (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed; CI installs it and runs these tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
