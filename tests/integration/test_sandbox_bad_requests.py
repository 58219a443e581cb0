"""The sandbox partners over real HTTP answer a malformed request as a partner would — 400 with
an error code, or 413 for a body too large — change nothing, and print no traceback; the next
request is answered as ever."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.adapters.sandbox.sms import SandboxSmsGateway
from tests.support import ROOT
from tests.support.processes import free_port, wait_until_up

pytestmark = pytest.mark.slow  # a sandbox server process


@contextlib.contextmanager
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`python -m core sandbox` on a free loopback port; at the end, its output holds no traceback."""
    port = free_port()
    errors = (tmp_path / "stderr").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "sandbox", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/terms/channels/alipay", timeout_s=20, status=None)
        yield base, port
    finally:
        process.terminate()
        process.wait(timeout=10)
        errors.seek(0)
        printed = errors.read()
        errors.close()
    assert "Traceback" not in printed, printed


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """One server for the requests that must change nothing (each test checks that they did not)."""
    with served(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.mark.parametrize(
    "path",
    [
        "/carrier/numbers/lookup",
        "/payouts/alipay/payouts",
        "/carrier/_sandbox/knobs",
        "/payouts/alipay/_sandbox/knobs",
        "/terms/_sandbox/knobs",
    ],
)
@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null", b"{not json", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400_and_nothing_else(sandbox, path, body):
    base, _ = sandbox
    answer = httpx.post(f"{base}{path}", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "bad_json"
    assert httpx.get(f"{base}/terms/channels/alipay").status_code == 200


@pytest.mark.parametrize(
    ("path", "knobs"),
    [
        ("/carrier/_sandbox/knobs", {"latency_s": "slow"}),
        ("/carrier/_sandbox/knobs", {"latency_s": -1}),
        ("/carrier/_sandbox/knobs", {"latency_s": 1e9}),
        ("/carrier/_sandbox/knobs", {"error_rate": 2}),
        ("/carrier/_sandbox/knobs", {"error_rate": True}),
        ("/carrier/_sandbox/knobs", {"seed": "x"}),
        ("/carrier/_sandbox/knobs", {"error_rate": 1, "timeout_lost_rate": None}),
        ("/carrier/_sandbox/knobs", {"error_rate": 1, "no_such_knob": 1}),
        ("/terms/_sandbox/knobs", {"down": True, "no_such_knob": 1}),
        ("/payouts/alipay/_sandbox/knobs", {"settle_s": [1]}),
        ("/payouts/alipay/_sandbox/knobs", {"fail_rate": -0.1}),
        ("/terms/_sandbox/knobs", {"down": "yes"}),
        ("/terms/_sandbox/knobs", {"period_s": 0}),
        ("/terms/_sandbox/knobs", {"latency_s": "1"}),
    ],
)
def test_a_knob_out_of_its_range_is_refused_and_no_knob_changes(sandbox, path, knobs):
    base, _ = sandbox
    answer = httpx.post(f"{base}{path}", json=knobs)
    assert answer.status_code == 400
    said = answer.json()
    if "no_such_knob" in knobs:
        assert said == {"unknown": ["no_such_knob"]}
    else:
        assert said["error"] == "bad_knob" and any(name in said["detail"] for name in knobs)
    # nothing changed: every partner answers at once, and the carrier still looks numbers up
    lookup = httpx.post(f"{base}/carrier/numbers/lookup", json={"msisdn": "13800138000"}, timeout=5)
    assert lookup.status_code == 200
    assert httpx.get(f"{base}/terms/channels/alipay", timeout=5).status_code == 200


def test_knobs_in_range_still_take_effect(tmp_path):
    with served(tmp_path) as (base, _):
        _set_and_see(base)


def _set_and_see(base: str) -> None:
    assert httpx.post(f"{base}/carrier/_sandbox/knobs", json={"error_rate": 1, "seed": 7}).status_code == 204
    assert httpx.post(f"{base}/carrier/numbers/lookup", json={"msisdn": "13800138000"}).status_code == 503
    assert httpx.post(f"{base}/terms/_sandbox/knobs", json={"down": True}).status_code == 204
    assert httpx.get(f"{base}/terms/channels/alipay").status_code == 503


def _raw(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(head)
        return connection.recv(4096)


@pytest.mark.parametrize(
    ("length", "status"), [(b"-1", b"400"), (b"abc", b"400"), (b"\xb2", b"400"), (b"99999999999", b"413")]
)
def test_a_content_length_that_is_no_length_or_too_long_is_refused_at_once(sandbox, length, status):
    base, port = sandbox
    answer = _raw(
        port, b"POST /carrier/numbers/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    assert answer.split(b" ")[1] == status
    assert httpx.get(f"{base}/terms/channels/alipay").status_code == 200


def test_the_in_process_sms_gateway_refuses_a_body_that_is_not_a_json_object():
    gateway = SandboxSmsGateway()
    answer = gateway(httpx.Request("POST", "http://sms.test/messages", content=b"[1]"))
    assert answer.status_code == 400 and gateway.latest() == []
