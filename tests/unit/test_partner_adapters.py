"""The partner adapters read every answer the same way: done, refused for good, never seen,
or unknown (timeout, dropped connection, 5xx), and the sandboxes keep their own records by
our reference so asking twice never does the work twice."""

from __future__ import annotations

import json

import httpx
import pytest

from core.adapters.carrier import CarrierApi, Outcome
from core.adapters.payouts import PayoutApi, PayoutStatus, sign, signature_valid
from core.adapters.sandbox.carrier import SandboxCarrier
from core.adapters.sandbox.faults import Faults
from core.adapters.sandbox.payouts import SandboxPayouts
from core.adapters.sandbox.server import make_server, serve_in_thread
from core.domain.carriers import Carrier
from core.errors import OutcomeUnknown, PartnerRefused

PHONE = "13800138000"


def carrier_api(handler, timeout_s: float = 5.0) -> CarrierApi:
    return CarrierApi(httpx.Client(transport=httpx.MockTransport(handler), base_url="http://c/"), timeout_s=timeout_s)


def answering(status: int, body: object = None):
    return lambda request: httpx.Response(status, json=body)


def test_a_timeout_is_an_unknown_outcome_never_a_failure():
    def times_out(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(OutcomeUnknown):
        carrier_api(times_out).debit("ref-1", PHONE, 100)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_server_errors_are_unknown_outcomes(status):
    with pytest.raises(OutcomeUnknown):
        carrier_api(answering(status, {"error": "x"})).debit("ref-1", PHONE, 100)


def test_a_client_error_is_a_refusal_with_its_reason():
    with pytest.raises(PartnerRefused) as refused:
        carrier_api(answering(422, {"error": "not_a_mobile_number"})).lookup(PHONE)
    assert refused.value.params["reason"] == "not_a_mobile_number"


def test_a_status_query_for_a_reference_never_seen_is_none():
    assert carrier_api(answering(404, {"error": "unknown"})).debit_status("ref-1") is None


def test_an_answer_for_another_reference_is_not_trusted():
    body = {"reference": "someone-else", "status": "done", "amount_fen": 100}
    with pytest.raises(OutcomeUnknown):
        carrier_api(answering(200, body)).debit_status("ref-1")


def test_every_money_call_carries_our_reference_as_idempotency_key():
    seen = []

    def record(request):
        seen.append((request.method, request.headers.get("Idempotency-Key"), PHONE in str(request.url)))
        return httpx.Response(201, json={"reference": "ref-9", "status": "done", "amount_fen": 100})

    api = carrier_api(record)
    api.debit("ref-9", PHONE, 100)
    api.refund("ref-9", PHONE, 100, "ref-8")
    assert seen == [("POST", "ref-9", False), ("POST", "ref-9", False)]  # and numbers never in URLs


def test_the_sandbox_carrier_debits_once_per_reference():
    sandbox = SandboxCarrier(balances={PHONE: 10_000})
    api = carrier_api(sandbox)
    first = api.debit("ref-1", PHONE, 3_000)
    again = api.debit("ref-1", PHONE, 3_000)
    assert first == again and first.outcome is Outcome.DONE
    assert sandbox.balances[PHONE] == 7_000 and sandbox.debits["ref-1"].replays == 1
    with pytest.raises(PartnerRefused):  # the same key for another amount
        api.debit("ref-1", PHONE, 4_000)


def test_the_sandbox_carrier_refuses_an_overdraft_and_records_the_refusal():
    sandbox = SandboxCarrier(balances={PHONE: 1_000})
    api = carrier_api(sandbox)
    assert api.debit("ref-1", PHONE, 3_000).outcome is Outcome.REFUSED
    assert api.debit_status("ref-1").reason == "insufficient_balance"
    assert sandbox.balances[PHONE] == 1_000


def test_the_sandbox_carrier_refunds_only_what_it_debited():
    sandbox = SandboxCarrier(balances={PHONE: 10_000})
    api = carrier_api(sandbox)
    api.debit("d-1", PHONE, 3_000)
    assert api.refund("r-1", PHONE, 3_000, "d-1").outcome is Outcome.DONE
    assert api.refund("r-2", PHONE, 1, "d-1").outcome is Outcome.REFUSED
    assert sandbox.balances[PHONE] == 10_000


def test_a_ported_number_reports_its_current_carrier():
    sandbox = SandboxCarrier(carriers={PHONE: Carrier.CHINA_UNICOM})
    info = carrier_api(sandbox).lookup(PHONE)
    assert info.allocated_carrier is Carrier.CHINA_MOBILE and info.current_carrier is Carrier.CHINA_UNICOM
    assert info.ported


def test_a_timeout_that_took_effect_shows_in_the_status():
    sandbox = SandboxCarrier(faults=Faults(timeout_done_rate=1.0), balances={PHONE: 10_000})
    api = carrier_api(sandbox)
    with pytest.raises(OutcomeUnknown):
        api.debit("ref-1", PHONE, 500)
    sandbox.faults.timeout_done_rate = 0
    assert api.debit_status("ref-1").outcome is Outcome.DONE and sandbox.balances[PHONE] == 9_500


def test_a_timeout_that_did_not_take_effect_leaves_no_record():
    sandbox = SandboxCarrier(faults=Faults(timeout_lost_rate=1.0), balances={PHONE: 10_000})
    api = carrier_api(sandbox)
    with pytest.raises(OutcomeUnknown):
        api.debit("ref-1", PHONE, 500)
    sandbox.faults.timeout_lost_rate = 0
    assert api.debit_status("ref-1") is None and sandbox.balances[PHONE] == 10_000


def test_notification_signatures_bind_the_body_and_the_secret():
    body = b'{"reference": "x"}'
    header = sign(b"secret", body, 1_700_000_000)
    assert signature_valid(b"secret", body, header, 1_700_000_100)
    assert not signature_valid(b"other", body, header, 1_700_000_100)
    assert not signature_valid(b"secret", body + b" ", header, 1_700_000_100)
    assert not signature_valid(b"secret", body, header, 1_700_000_000 + 3 * 86_400)  # too old
    assert not signature_valid(b"secret", body, None, 1_700_000_100)


def test_sandbox_payouts_notify_at_least_once_until_the_portal_accepts():
    answers = iter([500, 200, 200])
    received = []

    def portal(request):
        received.append(json.loads(request.content))
        return httpx.Response(next(answers))

    now = [1_000.0]
    payouts = SandboxPayouts(
        secret_for=lambda channel: b"s",
        notifier=httpx.Client(transport=httpx.MockTransport(portal)),
        clock=lambda: now[0],
    )
    payouts.settle_s = 1.0
    api = PayoutApi(httpx.Client(transport=httpx.MockTransport(payouts), base_url="http://p/alipay/"), "alipay")
    assert api.pay("ref-1", 900, "payee", "http://portal/notify").status is PayoutStatus.PROCESSING
    assert payouts.deliver_due() == 0 and not received  # not settled yet
    now[0] += 1
    assert payouts.deliver_due() == 0 and len(received) == 1  # refused by the portal: tried again later
    now[0] += 60
    assert payouts.deliver_due() == 1 and received[-1]["status"] == "paid"
    assert api.status("ref-1").status is PayoutStatus.PAID


def test_over_loopback_a_sandbox_timeout_is_a_dropped_connection():
    sandbox = SandboxCarrier(faults=Faults(timeout_lost_rate=1.0))
    server = make_server({"/carrier": sandbox}, hang_s=1.0)
    serve_in_thread(server)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/carrier/"
        api = CarrierApi(httpx.Client(base_url=base), timeout_s=0.3)
        with pytest.raises(OutcomeUnknown):
            api.debit("ref-1", PHONE, 100)
        sandbox.faults.timeout_lost_rate = 0
        assert api.lookup(PHONE).current_carrier is Carrier.CHINA_MOBILE
    finally:
        server.shutdown()
        server.server_close()


def test_over_loopback_one_kept_alive_connection_serves_call_after_call():
    """A partner keeps its connections alive; so does the sandbox server: a caller's pooled
    connection serves every call, where a new connection (and server thread) per call cost
    each partner call a connection set-up. A timeout still drops its connection; a stopped
    sandbox stops answering on the connections it kept alive."""
    sandbox = SandboxCarrier(faults=Faults())
    server = make_server({"/carrier": sandbox}, hang_s=1.0)
    connections: list[object] = []
    accept = server.process_request
    server.process_request = lambda request, address: (connections.append(address), accept(request, address))[1]  # type: ignore[method-assign]
    serve_in_thread(server)
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}/carrier/")
    api, impatient = CarrierApi(client, timeout_s=5.0), CarrierApi(client, timeout_s=0.3)
    try:
        for i in range(20):
            assert api.debit(f"ref-{i}", PHONE, 100).outcome is Outcome.DONE
        assert len(connections) == 1
        sandbox.faults.timeout_lost_rate = 1.0
        with pytest.raises(OutcomeUnknown):
            impatient.debit("ref-lost", PHONE, 100)
        sandbox.faults.timeout_lost_rate = 0
        assert api.lookup(PHONE).current_carrier is Carrier.CHINA_MOBILE
        assert len(connections) == 2  # the timed-out one was given up; a new one serves on
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(OutcomeUnknown):  # the kept-alive connection was closed with the server
        api.lookup(PHONE)


def test_the_sandbox_server_refuses_a_body_sent_in_chunks_and_closes_that_connection():
    server = make_server({"/carrier": SandboxCarrier(faults=Faults())})
    serve_in_thread(server)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}/carrier/") as client:
            chunks = iter([b'{"msisdn": "', PHONE.encode(), b'"}'])
            response = client.post("numbers/lookup", content=chunks)  # no Content-Length: chunked
            assert response.status_code == 411
            assert response.headers.get("connection") == "close"
            assert client.post("numbers/lookup", json={"msisdn": PHONE}).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_a_shared_partner_client_spreads_threads_over_its_shards_and_keeps_each_threads_own():
    """Threads calling one partner send through a few connection pools (shards), not all through
    one pool's lock: each thread is given a shard the first time it calls and keeps it; the
    shards are made once, when first used, and closed together. A request reaches the partner
    as the adapters make it: its path under the base URL, its JSON body, our headers and the
    idempotency key, and its timeout."""
    import threading

    from core.adapters.partner_http import SharedClient

    received: list[httpx.Request] = []

    def partner(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, json={"current_carrier": "china_mobile", "allocated_carrier": "china_mobile",
                                         "active": True})  # fmt: skip

    client = SharedClient("http://carrier.test/api", shards=3, transport=lambda: httpx.MockTransport(partner))
    used: dict[int, set[int]] = {}

    def calls(i: int) -> None:
        for _ in range(3):
            client.request("POST", "numbers/lookup", json={"i": i}, headers={"Idempotency-Key": f"k{i}"})
            used.setdefault(i, set()).add(id(client._transport()))

    threads = [threading.Thread(target=calls, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(shards) == 1 for shards in used.values())  # a thread keeps its shard
    assert len({shard for shards in used.values() for shard in shards}) == 3  # six threads over three shards
    assert len([t for t in client._shards if t is not None]) == 3
    first = received[0]
    assert str(first.url).startswith("http://carrier.test/api/numbers/lookup")
    assert json.loads(first.content) in [{"i": i} for i in range(6)]
    assert first.headers["Idempotency-Key"].startswith("k") and first.headers["User-Agent"]
    api = CarrierApi(client, timeout_s=1.5)
    assert api.lookup(PHONE).current_carrier is Carrier.CHINA_MOBILE
    assert received[-1].extensions["timeout"]["read"] == 1.5
    assert client.request("GET", "numbers/x").request.url == "http://carrier.test/api/numbers/x"
    client.close()
    with pytest.raises(RuntimeError):  # closed: it sends nothing more
        client.request("GET", "numbers/x")
    with pytest.raises(ValueError):
        SharedClient("http://carrier.test/", shards=0)


def test_a_shared_partner_client_parses_each_path_once_and_still_sends_every_call_where_it_names():
    from core.adapters import partner_http
    from core.adapters.partner_http import SharedClient

    sent: list[str] = []
    client = SharedClient(
        "http://pay.test/v1",
        transport=lambda: httpx.MockTransport(lambda r: (sent.append(str(r.url)), httpx.Response(200, json={}))[1]),
    )
    parsed: list[str] = []
    real = partner_http.httpx.URL

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, url, **kwargs):  # type: ignore[no-untyped-def]
            parsed.append(str(url))
            super().__init__(url, **kwargs)

    partner_http.httpx.URL = Counting  # type: ignore[misc]
    try:
        for _ in range(3):
            client.request("POST", "payouts", json={})
            client.request("POST", "/payouts", json={})  # a leading slash is the same path under the base
        for i in range(partner_http._URLS_KEPT + 5):  # status queries: a path each, the cache starts over
            client.request("GET", f"payouts/ref-{i}")
        client.request("POST", "payouts", json={})
    finally:
        partner_http.httpx.URL = real  # type: ignore[misc]
    assert sent[:6] == ["http://pay.test/v1/payouts"] * 6
    assert sent[6:-1] == [f"http://pay.test/v1/payouts/ref-{i}" for i in range(partner_http._URLS_KEPT + 5)]
    assert sent[-1] == "http://pay.test/v1/payouts"
    assert (
        parsed.count("http://pay.test/v1/payouts") == 3
    )  # "payouts", "/payouts", and again after the cache started over
    assert len(client._urls) <= partner_http._URLS_KEPT


def test_a_shared_partner_client_goes_through_the_proxy_the_environment_names(monkeypatch):
    from core.adapters.partner_http import SharedClient, proxy_for

    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://pay.example.cn/v1/") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")  # no scheme: http://, as httpx reads it
    monkeypatch.setenv("NO_PROXY", "carrier.internal")
    assert proxy_for("https://pay.example.cn/v1/") == "http://proxy.internal:3128"
    assert proxy_for("https://carrier.internal/api/") is None
    assert proxy_for("http://pay.example.cn/v1/") is None  # HTTPS_PROXY is for https only
    assert SharedClient("https://pay.example.cn/v1/")  # a proxy httpx can use: made
    monkeypatch.setenv("HTTPS_PROXY", "ftp://proxy.internal:21")
    with pytest.raises(ValueError):  # one it cannot: refused when the client is made, not at each call
        SharedClient("https://pay.example.cn/v1/")


def test_over_loopback_a_shared_client_times_out_and_loses_connections_as_httpx_does():
    from core.adapters.partner_http import SharedClient

    sandbox = SandboxCarrier(faults=Faults(timeout_lost_rate=1.0))
    server = make_server({"/carrier": sandbox}, hang_s=1.0)
    serve_in_thread(server)
    try:
        api = CarrierApi(SharedClient(f"http://127.0.0.1:{server.server_address[1]}/carrier"), timeout_s=0.3)
        with pytest.raises(OutcomeUnknown, match="timed out") as lost:
            api.debit("ref-1", PHONE, 100)
        assert str(lost.value.__cause__.request.url).endswith("/carrier/debits")  # httpx's error, with its request
        sandbox.faults.timeout_lost_rate = 0
        assert api.lookup(PHONE).current_carrier is Carrier.CHINA_MOBILE
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(OutcomeUnknown):  # the server is gone: connection refused or dropped
        api.lookup(PHONE)


def test_the_sandbox_server_answers_every_connection_a_worker_opens_at_once():
    """A worker opens its connections together (its calls in flight at once): the sandbox server
    queues them all, as a partner does, where socketserver's queue of five made the kernel reset
    the rest (a debit's answer lost, and asked for again later)."""
    import threading

    server = make_server({"/carrier": SandboxCarrier(faults=Faults())})
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_address[1]}/carrier/"
    start, answers = threading.Barrier(64), []

    def first_call() -> None:
        with httpx.Client(base_url=base, timeout=10) as client:  # a connection of its own
            start.wait()
            answers.append(client.post("numbers/lookup", json={"msisdn": PHONE}).status_code)

    try:
        threads = [threading.Thread(target=first_call) for _ in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [200] * 64
