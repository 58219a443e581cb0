"""The portal's own offer (本平台直收) in the market, on SQLite and PostgreSQL: it quotes beside
the seven market channels, ranked by the same rules (never above a better channel); an approved
pricing version quotes at once in this process and within a second in another; a quote locked
under version 1 is paid under version 1 after version 2 goes live; a recovery through the own
offer settles exactly once with the ledger balanced."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from sqlmodel import select

from core.domain.access import Principal
from core.domain.calendar import SHANGHAI
from core.domain.quotes import compare
from core.domain.recovery import RecoveryState
from core.errors import InputError
from core.persistence.tables import QuoteRequestLog
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.pricing import PopulationSpec, PricingService
from core.services.quoting import QuoteInput
from core.simulation.invariants import check_invariants
from tests.support import ROOT
from tests.support.people import mobile
from tests.support.portal import PASSWORD, Portal

SHIPPED = ROOT / "data" / "pricing" / "schedule.json"
CARD = "4111 1111 1111 1111"  # passes the Luhn check


def cheaper(rate: str = "0.01") -> str:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    for tier in document["own_offer"]["fee"]["tiers"]:
        tier["rate"] = rate
    return json.dumps(document)


def publish(portal: Portal, document: str) -> int:
    analyst = Principal(portal.identity.create_staff("analyst", f"ana.{len(document) % 97}", PASSWORD), "analyst")
    admin = Principal(portal.identity.create_staff("admin", f"adm.{len(document) % 97}", PASSWORD), "admin")
    draft = portal.pricing.save_draft(analyst, document)
    portal.pricing.submit(analyst, draft.number, "cheaper")
    return portal.pricing.approve(admin, draft.number).number


def test_the_own_offer_is_quoted_beside_the_market_by_the_same_ranking(portal):
    outcome = portal.quotes.compare(QuoteInput(balance="300", carrier="china_mobile"))
    ids = [q.channel.id for q in outcome.comparison.quotes]
    assert len(ids) == 8 and "direct" in ids
    # the very ranking the domain gives the same catalog: no promotion of our own offer
    again = compare(outcome.terms.catalog, outcome.comparison.request, portal.quotes.calendar)
    assert [q.channel.id for q in again.quotes] == ids
    eligible = [q for q in outcome.comparison.quotes if q.eligible]
    assert all(a.net_fen >= b.net_fen for a, b in itertools.pairwise(eligible))  # the most money first
    assert outcome.comparison.best is not None and outcome.comparison.best.channel.id != "direct"  # 4% vs WeChat's


def test_an_approved_version_quotes_at_once_here_and_within_a_second_elsewhere(portal):
    before = portal.quotes.terms().version
    publish(portal, cheaper("0.01"))
    outcome = portal.quotes.compare(QuoteInput(balance="300", carrier="china_mobile"))
    direct = next(q for q in outcome.comparison.quotes if q.channel.id == "direct")
    assert direct.fee_fen == 300 and outcome.comparison.best.channel.id == "direct"  # 1% now: the best
    assert portal.quotes.terms().version != before  # Compare's live fragment redraws on this
    market = portal.quotes.market_terms().catalog.by_id()
    other = PricingService(
        portal.engine, AuditLog(portal.clock), lambda: market, SHIPPED, calendar=portal.quotes.calendar
    )
    assert other.own_offer_now()[1].fee.tiers[0].rate_ppm == 10_000  # another replica reads it from the database


def test_a_quote_locked_under_version_one_is_paid_under_version_one(portal):
    c = portal.consumer(1, balance_fen=30_000)
    lock = portal.lock(c, "direct")
    assert lock.fee_fen == 1_050  # 3.5% of 300 CNY under version 1
    publish(portal, cheaper("0.01"))
    view = portal.submit(c, lock, payee=CARD)
    assert sum(p.fee_fen for p in view.parts) == 1_050  # honoured under the version it was locked in
    portal.drain()
    final = portal.recoveries.get(c.who, view.id)
    assert final.state is RecoveryState.PAID
    fresh = portal.lock(portal.consumer(2, balance_fen=30_000), "direct")
    assert fresh.fee_fen == 300  # a new quote: version 2


def test_a_recovery_through_the_own_offer_settles_once_and_the_books_balance(portal):
    c = portal.consumer(3, balance_fen=50_000)
    view = portal.submit(c, portal.lock(c, "direct"), payee=CARD)
    portal.drain()
    assert portal.recoveries.get(c.who, view.id).state is RecoveryState.PAID
    assert len(portal.rig.payouts.records.get("direct", {})) == len(view.parts)  # once per part
    assert check_invariants(portal.rig) == []


def test_every_quote_served_is_logged_anonymously_and_the_lab_replays_the_log(portal):
    analyst = Principal(portal.identity.create_staff("analyst", "ana.replay", PASSWORD), "analyst")
    with pytest.raises(InputError) as caught:
        portal.pricing.simulate(analyst, PopulationSpec(size=100, replay_days=7))
    assert caught.value.key == "error.pricing.no_quote_log"
    asked = {}
    for n, (balance, carrier) in enumerate(
        [("88.80", "china_mobile"), ("520", "china_unicom"), ("1200", "china_telecom")]
    ):
        phone = mobile(n)
        portal.quotes.compare(QuoteInput(balance=balance, phone=phone, carrier=carrier, priority="speed"))
        asked[int(float(balance)) * 100] = carrier  # kept in whole yuan
    run = portal.pricing.simulate(analyst, PopulationSpec(size=500, seed=3, replay_days=7))
    balances = set(run.live.population.balance_fen.tolist())
    assert balances == set(asked)  # every simulated user is one of the quotes people asked for
    with UnitOfWork(portal.engine) as uow:
        rows = uow.session.exec(select(QuoteRequestLog)).all()
        columns = set(QuoteRequestLog.model_fields)
    assert columns == {"seq", "at", "balance_fen", "carrier", "priority"}  # no number, account or device
    assert sorted((r.balance_fen, r.carrier, r.priority) for r in rows) == sorted(
        (b, c, "speed") for b, c in asked.items()
    )
    assert all(r.at.minute == r.at.second == r.at.microsecond == 0 for r in rows)  # to the hour
    portal.advance(days=8)
    with pytest.raises(InputError):
        portal.pricing.simulate(analyst, PopulationSpec(size=100, replay_days=7))


def test_quote_log_lines_past_their_year_are_pruned_by_the_upkeep_and_no_sooner(portal):
    from core.services.quote_log import KEEP_DAYS

    log = portal.pricing.quote_log
    portal.quotes.compare(QuoteInput(balance="100", phone=mobile(1), carrier="china_mobile", priority="speed"))
    log.flush()
    portal.advance(days=KEEP_DAYS - 1)
    portal.quotes.compare(QuoteInput(balance="200", phone=mobile(2), carrier="china_mobile", priority="speed"))
    log.flush()  # a write no longer prunes
    assert log.prune() == 0
    portal.advance(days=2)  # the first line is now past its year, the second is not
    assert log.prune() == 1
    with UnitOfWork(portal.engine) as uow:
        assert [r.balance_fen for r in uow.session.exec(select(QuoteRequestLog)).all()] == [20_000]


def test_a_promotion_discounts_the_own_offer_inside_its_window_only_day_by_day(portal):
    today = portal.clock.now.astimezone(SHANGHAI).date()
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    document["promotion"] = {
        "starts": (today + dt.timedelta(days=1)).isoformat(),
        "ends": (today + dt.timedelta(days=2)).isoformat(),
        "fee_discount": "0.5",
    }
    number = publish(portal, json.dumps(document))

    def own_fee() -> int:
        outcome = portal.quotes.compare(QuoteInput(balance="300", carrier="china_mobile"))
        return next(q.fee_fen for q in outcome.comparison.quotes if q.channel.id == "direct")

    full = own_fee()
    fees = []
    for _ in range(4):  # the day before, the two days of the window, the day after
        assert portal.pricing.own_offer_now()[0] == number
        fees.append(own_fee())
        portal.advance(days=1)
    assert fees[0] == full and fees[3] == full
    assert fees[1] == fees[2] < full and fees[1] in (full // 2, full // 2 + 1, full // 2 - 1)


def test_the_lab_ranks_the_market_once_a_minute_for_the_same_inputs_and_again_when_anything_changes(portal):
    analyst = Principal(portal.identity.create_staff("analyst", "ana.kept", PASSWORD), "analyst")
    spec = PopulationSpec(size=2_000, seed=1)
    first = portal.pricing.simulate(analyst, spec, draft=cheaper("0.02"))
    again = portal.pricing.simulate(analyst, spec, draft=cheaper("0.03"))  # an analyst's next edit
    assert again.live is first.live  # the market's ranking and the live run were kept ...
    assert again.draft.summary() != first.draft.summary()  # ... and the draft run again
    fresh = PricingService(  # the same figures worked out from nothing
        portal.engine, AuditLog(portal.clock), lambda: portal.quotes.market_terms().catalog.by_id(), SHIPPED,
        calendar=portal.quotes.calendar, clock=portal.clock,
    )  # fmt: skip
    assert fresh.simulate(analyst, spec, draft=cheaper("0.03")).draft.summary() == again.draft.summary()
    assert (
        portal.pricing.simulate(analyst, PopulationSpec(size=2_000, seed=2)).live is not first.live
    )  # another population
    assert portal.pricing.simulate(analyst, spec, what_if={"alipay": 0.5}).live is not first.live  # another market
    portal.advance(minutes=1)
    assert portal.pricing.simulate(analyst, spec).live is not first.live  # a minute on: ranked afresh
    publish(portal, cheaper("0.02"))
    later = portal.pricing.simulate(analyst, spec)
    assert later.live.summary() != first.live.summary()  # the new live version's own run
