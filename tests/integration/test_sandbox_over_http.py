"""`python -m core sandbox` serves the sandbox partners over real HTTP on loopback, and the
portal reads live terms from it by configuration alone (TERMS_FEED_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.support import ROOT
from tests.support.processes import free_port, wait_until_up

pytestmark = pytest.mark.slow  # a sandbox server and command-line processes


@pytest.fixture
def sandbox_url():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "sandbox", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}/terms"
    try:
        wait_until_up(f"{url}/channels/alipay", timeout_s=20, status=None)
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
