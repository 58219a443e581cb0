"""`python -m core sandbox` serves the sandbox partners over real HTTP on loopback, and the
portal reads live terms from it by configuration alone (TERMS_FEED_URL)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sandbox_url():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "sandbox", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}/terms"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/channels/alipay", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def quote(feed_url: str) -> dict:
    env = {**os.environ, "TERMS_FEED_URL": feed_url}
    done = subprocess.run(
        [sys.executable, "-m", "core", "quote", "--balance", "200", "--carrier", "china_mobile", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {row["channel"]: row for row in json.loads(done.stdout)}


def test_the_sandbox_feed_answers_with_etags_over_http(sandbox_url):
    first = httpx.get(f"{sandbox_url}/channels/alipay")
    assert first.status_code == 200 and first.json()["id"] == "alipay"
    again = httpx.get(f"{sandbox_url}/channels/alipay", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert httpx.get(f"{sandbox_url}/channels/nope").status_code == 404


def test_the_portal_reads_live_terms_from_a_feed_url_and_falls_back_when_it_is_down(sandbox_url):
    live = quote(sandbox_url)
    assert live["alipay"]["as_of"] != "2026-11-20"  # the feed vouches for today's terms
    httpx.post(f"{sandbox_url}/_sandbox/knobs", json={"down": True})
    fallback = quote(sandbox_url)
    assert fallback["alipay"]["as_of"] == "2026-11-20"  # the bundled snapshot
    assert fallback["alipay"]["net_fen"] > 0


def test_an_unreachable_feed_url_still_quotes_from_the_snapshot():
    rows = quote(f"http://127.0.0.1:{free_port()}/terms")
    assert rows["alipay"]["eligible"] and rows["alipay"]["as_of"] == "2026-11-20"
