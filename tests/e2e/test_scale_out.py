"""The scale-out deployment of deploy/, started on loopback from its own files: nginx (Debian's,
unprivileged, the site rendered from deploy/nginx/portal.conf.template) in front of two portal
replicas, two workers, one sandbox partner server and one PostgreSQL schema, each process run as
its systemd unit runs it; one topology for the module.

A consumer signs in and recovers a balance through nginx; while the payout is in flight the other
replica is stopped and started again. The consumer's tab keeps working on its own replica without
a new sign-in, the recovery is paid once (one payout per transaction at the partner), and the
audit chain verifies. And a sign-in begun on one replica completes on the other: nothing of it
lives in one replica's memory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from core.persistence.tables import Recovery, RecoveryTransition
from tests.support import ROOT
from tests.support.browser import begin_consumer_sign_in, consumer_sign_in, fill_recovery, finish_consumer_sign_in
from tests.support.db import all_rows, database_url, scratch_engine
from tests.support.people import mobile
from tests.support.topology import ROUTE_COOKIE, example_settings, nginx_binary, scale_out

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PHONE = mobile(0)  # a test number: the sandbox carrier makes up its balance (50 to 800 CNY)
MASKED = f"{PHONE[:3]}****{PHONE[-4:]}"
SETTLE_S = 15  # how long the sandbox's Alipay takes to pay: long enough to restart a replica meanwhile
# The account is minutes old and the sandbox balance may reach 800 CNY: the new-account and
# large-amount rules would send the recovery to review (they are tested on their own elsewhere).
RISK = {"RISK_NEW_ACCOUNT_REVIEW_FEN": "1000000", "RISK_REVIEW_AMOUNT_FEN": "1000000"}
# What the topology sets for every process, each a setting deploy/portal.env.example names.
DEPLOYED = (
    "DATABASE_URL",
    "PORTAL_URL",
    "EMBEDDED_WORKER",
    "PORTAL_ENV",
    "TERMS_FEED_URL",
    "CARRIER_API_URL",
    "PAYOUT_API_URL",
    "SMS_GATEWAY_URL",
    "PORTAL_DATA_KEY",
    "PORTAL_INDEX_KEY",
    "PORTAL_COOKIE_SECRET",
    "PORTAL_OIDC_SIGNING_KEY",
    "PORTAL_RECEIPT_SIGNING_KEY",
)


@pytest.fixture(scope="session")
def nginx() -> str:
    found = nginx_binary()
    if found is None:
        if os.environ.get("REQUIRE_NGINX"):
            pytest.fail("Debian's nginx is required here (apt-get install nginx)")
        pytest.skip("nginx is not installed; CI installs it and runs this test")
    return found


@pytest.fixture(scope="module")
def deployed(nginx, browser, tmp_path_factory):
    """The topology on a fresh PostgreSQL schema (migrated by the deployment's migration unit),
    and an engine on that schema."""
    home = tmp_path_factory.mktemp("scale-out")
    with (
        scratch_engine("postgresql", home, migrated=False) as engine,
        scale_out(home, nginx, database_url(engine), settings=RISK) as topology,
    ):
        yield topology, engine


def submit_recovery(page, masked: str, payee: str) -> None:
    """Recover the number's whole balance through Alipay, then watch it on My recoveries."""
    fill_recovery(page, masked, payee)
    page.get_by_role("button", name="提交回收").dblclick()  # a double click still makes one recovery
    page.wait_for_selector("text=在「我的回收」中跟踪进度", timeout=30_000)
    page.get_by_role("link", name="在「我的回收」中跟踪进度").click()
    page.wait_for_selector("text=状态:", timeout=30_000)


def route_of(context) -> str:
    (value,) = [c["value"] for c in context.cookies() if c["name"] == ROUTE_COOKIE]
    return value


def route_to(context, url: str, route: str) -> None:
    """From now on nginx sends this browser where `route` goes."""
    context.add_cookies([{"name": ROUTE_COOKIE, "value": route, "url": url}])


def payouts_at_the_partner(book) -> list[tuple[str, int]]:
    """(reference, amount) of every payout the sandbox partners recorded, in their own books."""
    with sqlite3.connect(book) as db:
        return list(db.execute("SELECT reference, amount_fen FROM operations WHERE kind = 'payout'"))


def test_a_recovery_through_the_load_balancer_survives_restarting_the_other_replica(browser, deployed, tmp_path):
    assert set(DEPLOYED) <= example_settings(), "deploy/portal.env.example misses a setting the replicas need"
    topology, database = deployed
    replicas = {topology.replica_address(index): index for index in range(len(topology.replica_ports))}

    # The balancer: a browser without a route cookie gets one and is routed by it; new browsers
    # spread over both replicas.
    fresh = [httpx.get(f"{topology.url}/_stcore/health", timeout=5) for _ in range(24)]
    assert all(answer.status_code == 200 and ROUTE_COOKIE in answer.cookies for answer in fresh)
    pinned = {ROUTE_COOKIE: fresh[0].cookies[ROUTE_COOKIE]}
    for _ in range(12):
        again = httpx.get(f"{topology.url}/_stcore/health", cookies=pinned, timeout=5)
        assert again.status_code == 200 and ROUTE_COOKIE not in again.cookies  # set once only
    time.sleep(0.2)  # nginx writes a request's log line once its answer is sent
    routes = topology.routes()
    assert {upstream for _, upstream, _, path in routes if path == "/_stcore/health"} == set(replicas)
    assert len({upstream for route, upstream, _, _ in routes if route == pinned[ROUTE_COOKIE]}) == 1

    knobs = httpx.post(f"{topology.env['PAYOUT_API_URL']}/alipay/_sandbox/knobs", json={"settle_s": SETTLE_S})
    assert knobs.status_code == 204

    context = browser.new_context(locale="zh-CN")
    try:
        page = consumer_sign_in(context, topology.url, PHONE)
        try:
            submit_recovery(page, MASKED, PHONE)
        except Exception:
            page.screenshot(path=str(tmp_path / "submit-failed.png"), full_page=True)
            raise
        route = route_of(context)
        upstreams = {upstream for r, upstream, _, _ in topology.routes() if r == route}
        assert len(upstreams) == 1, f"one browser's requests went to {upstreams}"
        (home,) = upstreams
        other = 1 - replicas[home]

        parts = all_rows(database, Recovery)
        assert parts, "no recovery was submitted"
        assert all(part.state != "paid" for part in parts), "paid before the restart: nothing was in flight"
        topology.stop_replica(other)
        assert "状态:已到账" not in page.inner_text("body")
        topology.start_replica(other)
        topology.wait_healthy(other)

        # The consumer's tab on its own replica carries on and sees the payout live.
        page.wait_for_selector("text=状态:已到账", timeout=60_000)
        parts = all_rows(database, Recovery)
        assert len({part.group_id for part in parts}) == 1
        assert [part.state for part in parts] == ["paid"] * len(parts)
        paid = payouts_at_the_partner(topology.partner_book)
        assert len(paid) == len(parts), f"{len(paid)} payouts at the partner for {len(parts)} transactions"
        assert sorted(amount for _, amount in paid) == sorted(part.payout_fen for part in parts)
        settled = Counter(move.recovery_id for move in all_rows(database, RecoveryTransition) if move.after == "paid")
        assert settled == Counter(part.id for part in parts), "a transaction settled other than once"

        # A reload is still signed in, on the same replica: no new sign-in.
        page.reload()
        page.wait_for_selector("text=状态:已到账", timeout=30_000)
        assert "我的回收" in page.locator("[data-testid=stSidebarNav]").inner_text()
        assert route_of(context) == route

        served = [(upstream, path) for r, upstream, _, path in topology.routes() if r == route]
        assert {upstream for upstream, _ in served} == {home}, Counter(u for u, _ in served)
        paths = {path for _, path in served}
        for needed in ("/sign-in", "/idp/authorize", "/idp/sms/verify", "/oauth2callback", "/_stcore/stream"):
            assert needed in paths, f"{needed} did not go through the balancer"

        # Had its replica gone away, the browser would be sent to the other one: there (the
        # restarted replica) it is still signed in and sees its recovery.
        moved = topology.route_for(other)
        topology.wait_routed(moved, other)
        logged = len(topology.routes())
        route_to(context, topology.url, moved)
        elsewhere = context.new_page()
        elsewhere.goto(f"{topology.url}/my-recoveries")
        elsewhere.wait_for_selector("text=状态:已到账", timeout=60_000)
        assert "我的回收" in elsewhere.locator("[data-testid=stSidebarNav]").inner_text()
        assert {u for r, u, _, _ in topology.routes()[logged:] if r == moved} == {topology.replica_address(other)}
    finally:
        context.close()
    for worker in topology.workers:
        assert worker.running, worker.exited()

    verified = subprocess.run(
        [sys.executable, "-m", "core", "audit", "verify"],
        cwd=ROOT,
        env=topology.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr[-500:]
    assert "audit chain verified" in verified.stdout


def test_a_sign_in_begun_on_one_replica_completes_on_the_other(browser, deployed):
    topology, _ = deployed
    first, second = topology.route_for(0), topology.route_for(1)
    context = browser.new_context(locale="zh-CN")
    try:
        route_to(context, topology.url, first)
        page = begin_consumer_sign_in(context, topology.url)  # replica 0 starts the OpenID sign-in
        route_to(context, topology.url, second)  # ... and goes away: from here on, replica 1
        topology.wait_routed(second, 1)
        finish_consumer_sign_in(page, context, topology.url, mobile(1))
    finally:
        context.close()
    time.sleep(0.2)  # nginx writes a request's log line once its answer is sent
    served = {(route, path): upstream for route, upstream, _, path in topology.routes()}
    assert served[(first, "/auth/login")] == topology.replica_address(0)
    assert served[(second, "/oauth2callback")] == topology.replica_address(1)
