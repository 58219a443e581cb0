"""The partner notification route (POST /partners/payouts/{channel}/notify) under hostile
input: whatever an unsigned or signed-but-strange request carries, the answer is a clean 4xx
JSON body, nothing is logged as a crash, and an oversized body is refused without reading it all."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.adapters.payouts import SIGNATURE_HEADER, sign, signature_valid
from core.services.payout_notices import PayoutNoticeService
from core.web.partner_routes import MAX_NOTICE_BYTES, partner_routes
from tests.support.db import sqlite_engine

NOTIFY = "/partners/payouts/alipay/notify"
REFERENCE = "rcv-" + "0" * 32 + "-p"


SECRET = b"alipay-notify-secret-for-tests"


class NoSettling:
    """No notice in this file names a payout of ours, so none may get as far as settling one."""

    def settle(self, *args, **kwargs):
        raise AssertionError("a notice was applied")


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[Starlette]:
    engine = sqlite_engine(tmp_path_factory.mktemp("notices") / "portal.sqlite3")
    notices = PayoutNoticeService(engine, NoSettling(), lambda channel: SECRET if channel == "alipay" else None)
    yield Starlette(routes=partner_routes(lambda: notices))
    engine.dispose()


@pytest.fixture
def secret() -> bytes:
    return SECRET


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def signed(secret: bytes, body: bytes) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, body, int(time.time()))}


def assert_clean_refusal(response, caplog, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    assert "error" in response.json()
    crashes = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes]


# --- 1. signatures and bodies that used to crash the route --------------------------------------


def test_a_signature_timestamp_of_thousands_of_digits_is_refused_as_a_bad_signature(client, caplog):
    body = json.dumps({"reference": REFERENCE, "status": "paid", "amount_fen": 100}).encode()
    header = f"t={'9' * 5000},v1={'0' * 64}"
    response = client.post(NOTIFY, content=body, headers={SIGNATURE_HEADER: header})
    assert_clean_refusal(response, caplog, 401)


@pytest.mark.parametrize("timestamp", ["9" * 5000, "1" * 13, "0" * 4000 + "1700000000", "", "-1", "+1700000000"])
def test_signature_valid_is_false_for_an_overlong_or_malformed_timestamp(timestamp):
    assert not signature_valid(b"secret", b"{}", f"t={timestamp},v1={'0' * 64}", 1_700_000_000)


def test_a_correctly_signed_body_nested_thousands_deep_is_a_bad_notice(client, secret, caplog):
    body = b"[" * 5000 + b"]" * 5000
    response = client.post(NOTIFY, content=body, headers=signed(secret, body))
    assert_clean_refusal(response, caplog, 400)
    assert response.json() == {"error": "bad_notice"}


@pytest.mark.parametrize(
    "notice",
    [
        [REFERENCE, "paid", 100],  # not an object
        "paid",
        {"reference": REFERENCE, "status": "paid", "amount_fen": 100.0},  # a float equals an int: not money
        {"reference": REFERENCE, "status": "paid", "amount_fen": True},
        {"reference": REFERENCE, "status": "paid", "amount_fen": "100"},
        {"reference": REFERENCE, "status": ["paid"], "amount_fen": 100},
        {"reference": 12345, "status": "paid", "amount_fen": 100},
        {"reference": REFERENCE, "status": "paid", "amount_fen": 100, "event_id": {"x": 1}},
        {"reference": REFERENCE, "status": "paid", "amount_fen": 100, "reason": ["x"]},
        {"reference": REFERENCE, "status": "paid"},
    ],
)
def test_a_signed_notice_without_the_expected_shape_and_types_is_a_bad_notice(client, secret, caplog, notice):
    body = json.dumps(notice).encode()
    response = client.post(NOTIFY, content=body, headers=signed(secret, body))
    assert_clean_refusal(response, caplog, 400)
    assert response.json() == {"error": "bad_notice"}


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"amount_fen": ' + b"9" * 5000 + b"}", b"", b"nul\x00"])
def test_a_signed_body_json_cannot_read_is_a_bad_notice(client, secret, caplog, body):
    response = client.post(NOTIFY, content=body, headers=signed(secret, body))
    assert_clean_refusal(response, caplog, 400)


def test_a_well_formed_notice_for_no_payout_of_ours_is_still_answered_as_before(client, secret):
    body = json.dumps({"reference": REFERENCE, "status": "paid", "amount_fen": 100, "event_id": "e1"}).encode()
    response = client.post(NOTIFY, content=body, headers=signed(secret, body))
    assert response.status_code == 404 and response.json() == {"error": "unknown_reference"}


# --- 2. the body's size, refused before it is read -----------------------------------------------


def test_a_content_length_above_the_limit_is_refused_with_413_before_the_body_is_read(client):
    response = client.post(NOTIFY, content=b"{}", headers={"content-length": str(200 * 1024 * 1024)})
    assert response.status_code == 413 and response.json() == {"error": "too_large"}


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b" ", "１２".encode()])
def test_a_content_length_that_is_not_a_number_is_a_bad_request(client, value):
    response = client.post(NOTIFY, content=b"{}", headers={"content-length": value})
    assert response.status_code == 400 and response.json() == {"error": "bad_content_length"}


def test_a_content_length_of_thousands_of_digits_is_too_large_not_a_crash(client, caplog):
    response = client.post(NOTIFY, content=b"{}", headers={"content-length": "9" * 5000})
    assert_clean_refusal(response, caplog, 413)


def post_streamed(app: Starlette, chunks: Iterator[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """Drive the ASGI app the way a server does, one `http.request` message per chunk (the
    TestClient would read a generator body whole first). Returns (status, chunks consumed)."""
    consumed = 0
    status: list[int] = []

    async def receive():
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": NOTIFY,
        "raw_path": NOTIFY.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"portal.test"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("portal.test", 80),
    }
    run_asgi(app, scope, receive, send)
    return status[0], consumed


def run_asgi(app, scope, receive, send) -> None:
    """Drive the app as a server does, on an event loop of its own thread: a browser test's
    Playwright may already run one in this thread when the whole suite runs."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, app, scope, receive, send).result()


def megabytes(total: int) -> Iterator[bytes]:
    for _ in range(total):
        yield b" " * (1024 * 1024)


def test_a_chunked_body_without_content_length_is_cut_off_once_past_the_limit(app):
    status, consumed = post_streamed(app, megabytes(200), [(b"transfer-encoding", b"chunked")])
    assert status == 413
    assert consumed == 1  # the first megabyte is already past the limit: nothing more is read


def test_a_body_longer_than_its_content_length_says_is_cut_off_once_past_the_limit(app):
    chunks = (b" " * 1024 for _ in range(10_000))  # ~10 MB in 1 KB pieces
    status, consumed = post_streamed(app, chunks, [(b"content-length", b"100")])
    assert status == 413
    assert consumed == MAX_NOTICE_BYTES // 1024 + 1


def test_a_streamed_body_within_the_limit_still_reaches_the_service(app, secret):
    body = json.dumps({"reference": REFERENCE, "status": "paid", "amount_fen": 100}).encode()
    pieces = iter([body[:10], body[10:]])
    headers = [(SIGNATURE_HEADER.lower().encode(), signed(secret, body)[SIGNATURE_HEADER].encode())]
    status, consumed = post_streamed(app, pieces, headers)
    assert (status, consumed) == (404, 2)  # a signed, well-formed notice for no payout of ours


def test_a_partner_that_disconnects_half_way_gets_a_clean_refusal_not_a_crash(app):
    async def disconnecting():
        yield {"type": "http.request", "body": b'{"refer', "more_body": True}
        yield {"type": "http.disconnect"}

    messages = disconnecting()
    status: list[int] = []

    async def receive():
        return await messages.__anext__()

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": NOTIFY, "raw_path": NOTIFY.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"portal.test")], "client": ("127.0.0.1", 1234), "server": ("portal.test", 80),
    }  # fmt: skip
    run_asgi(app, scope, receive, send)
    assert status == [400]
