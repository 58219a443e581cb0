"""Live terms: the feed client over an httpx transport, and the service's fallback and staleness."""

import datetime as dt

import httpx
import pytest

from core.adapters.sandbox.terms_feed import SandboxTermsFeed
from core.adapters.terms_feed import TermsFeed
from core.errors import FeedUnavailable
from core.reference_data import load_catalog_raw
from core.services.quoting import QuoteInput, QuoteService

START = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def sandbox(clock):
    return SandboxTermsFeed(load_catalog_raw(), period_s=300, clock=lambda: clock().timestamp())


def service_for(handler, clock, catalog, calendar, **kwargs):
    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://feed.test/")
    return QuoteService(
        catalog,
        calendar,
        TermsFeed(client, timeout_s=0.5),
        clock=clock,
        refresh_every=dt.timedelta(seconds=30),
        **kwargs,
    )


def alipay_fee(service, balance="200"):
    outcome = service.compare(QuoteInput(balance=balance, carrier="china_mobile"))
    return next(q for q in outcome.comparison.quotes if q.channel.id == "alipay").fee_fen


def test_feed_answers_not_modified_when_the_etag_matches(sandbox):
    feed = TermsFeed(httpx.Client(transport=httpx.MockTransport(sandbox), base_url="http://feed.test/"))
    first = feed.fetch("alipay")
    assert first.channel is not None and first.etag
    again = feed.fetch("alipay", etag=first.etag)
    assert again.channel is None and again.etag == first.etag


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: httpx.Response(503),
        lambda request: httpx.Response(200, content=b"not json"),
        lambda request: httpx.Response(200, json={"id": "alipay"}),
        lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=request)),
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)),
    ],
    ids=["503", "not-json", "invalid-terms", "timeout", "refused"],
)
def test_every_feed_failure_becomes_feed_unavailable(failure):
    feed = TermsFeed(httpx.Client(transport=httpx.MockTransport(failure), base_url="http://feed.test/"))
    with pytest.raises(FeedUnavailable):
        feed.fetch("alipay")


def test_a_promotion_on_the_feed_changes_the_quote_and_the_terms_version(sandbox, clock, catalog, calendar):
    service = service_for(sandbox, clock, catalog, calendar)
    service.refresh_terms(force=True)
    version, fee = service.terms().version, alipay_fee(service)
    assert fee == 800  # 200 CNY at the 4% tier
    clock.advance(seconds=300)  # next period: Alipay's middle tier drops to 3.5%
    service.refresh_terms()
    assert service.terms().version == version + 1
    assert alipay_fee(service) == 700


def test_unchanged_terms_keep_the_version_and_renew_the_confirmation(sandbox, clock, catalog, calendar):
    service = service_for(sandbox, clock, catalog, calendar)
    service.refresh_terms(force=True)
    version = service.terms().version
    clock.advance(seconds=40)
    service.refresh_terms()
    terms = service.terms()
    assert terms.version == version
    assert all(t.confirmed_at == clock() for t in terms.by_channel)


def test_refreshes_are_throttled_across_callers(sandbox, clock, catalog, calendar):
    service = service_for(sandbox, clock, catalog, calendar)
    service.refresh_terms(force=True)
    asked = sandbox.requests
    for _ in range(10):
        service.refresh_terms()
    assert sandbox.requests == asked


def test_a_feed_that_is_down_falls_back_to_the_snapshot_and_is_flagged_stale(sandbox, clock, catalog, calendar):
    sandbox.down = True
    service = service_for(sandbox, clock, catalog, calendar, stale_after=dt.timedelta(hours=48))
    service.refresh_terms(force=True)
    terms = service.terms()
    assert all(t.source == "snapshot" for t in terms.by_channel)
    assert terms.catalog == catalog
    # the snapshot is as of 2026-11-20; a week later it is stale
    clock.advance(days=9)
    assert {t.channel.id for t in terms.stale(clock(), service.stale_after)} == {c.id for c in catalog.channels}


def test_a_feed_that_goes_down_keeps_the_last_confirmed_terms_which_age_into_stale(sandbox, clock, catalog, calendar):
    service = service_for(sandbox, clock, catalog, calendar, stale_after=dt.timedelta(hours=1))
    service.refresh_terms(force=True)
    sandbox.corrupt = True
    clock.advance(minutes=30)
    service.refresh_terms()
    terms = service.terms()
    assert all(t.source == "feed" for t in terms.by_channel)
    assert not terms.stale(clock(), service.stale_after)
    clock.advance(minutes=31)
    assert len(terms.stale(clock(), service.stale_after)) == len(catalog.channels)


def test_a_quote_input_never_shows_the_phone_number_in_its_repr():
    given = QuoteInput(balance="100", phone="13800138000")
    assert "13800138000" not in repr(given) and "13800138000" not in str(given)


def test_a_background_refresh_does_not_hold_up_the_caller(clock, catalog, calendar):
    import threading

    release = threading.Event()

    def slow(request):
        release.wait(5)
        return httpx.Response(503)

    service = service_for(slow, clock, catalog, calendar)
    started = dt.datetime.now()
    service.refresh_in_background()
    assert (dt.datetime.now() - started).total_seconds() < 0.5
    assert service.terms().checked_at is None  # still refreshing
    release.set()
