"""The console's operations metrics on SQLite and PostgreSQL: exact figures for recoveries with
known outcomes (paid, refunded, rejected in review, approved in review, waiting in review), by
Beijing day, channel and carrier; payout times against the channel's promise; the queue and the
stuck count as they stand now; who may read them; and `python -m core ops metrics`."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import Integer, String, literal, union_all
from sqlmodel import col, delete, select

from core.bootstrap import build
from core.cli import main
from core.domain.access import NotAllowed, Principal, Role
from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.catalog import TPlus
from core.domain.quotes import days_for, split, transaction_size
from core.domain.recovery import RecoveryState
from core.domain.stuck import UNKNOWN_AFTER_ATTEMPTS, StuckReason, promised_by
from core.errors import InputError
from core.persistence.tables import MetricsDay, OutboxMessage, Recovery, RecoveryTransition
from core.persistence.uow import UnitOfWork
from core.reference_data import load_calendar, load_catalog
from core.services.console.metrics import Metrics, MetricsService, percentile
from core.services.console.metrics_sql import AT, PromiseKeys
from tests.support.cli import cli_services, run, verified_consumer
from tests.support.portal import DEVICE, PASSWORD, Portal, in_review

S = RecoveryState
FAILING_PAYEE = "payout@fail.sandbox"  # the sandbox accepts it, then the payout fails for good
DAY = dt.date(2026, 11, 18)  # the simulated clock starts at 10:00 on this day, Beijing time
NEXT_DAY = DAY + dt.timedelta(days=1)


def metrics_of(portal: Portal) -> MetricsService:
    """The service as `core.bootstrap.build` wires it, on the portal's database and clock."""
    return MetricsService(
        portal.engine, lambda: portal.quotes.terms().catalog, portal.quotes.calendar, clock=portal.clock
    )


def device(n: int) -> str:
    """A device of its own for each consumer (one device's velocity rule stays quiet)."""
    return f"{DEVICE} #{n}"


def analyst(portal: Portal, username: str) -> Principal:
    return Principal(portal.identity.create_staff("analyst", username, PASSWORD), Role.ANALYST)


def payout_seconds(portal: Portal, group_ids: list[str]) -> list[float]:
    """Each paid recovery's time from its first debit confirmed to its last payout confirmed,
    read row by row (the test's own count, beside the service's SQL)."""
    out = []
    with UnitOfWork(portal.engine) as uow:
        for group_id in group_ids:
            ids = select(Recovery.id).where(Recovery.group_id == group_id)
            steps = uow.session.exec(
                select(RecoveryTransition).where(col(RecoveryTransition.recovery_id).in_(ids))
            ).all()
            debited = min(s.at for s in steps if s.event == "debit_confirmed")
            paid = max(s.at for s in steps if s.after == "paid")
            out.append((paid - debited).total_seconds())
    return out


@pytest.fixture
def period(portal):
    """Six recoveries with known outcomes, over two Beijing days, two channels, two carriers:

    alice   300 CNY  Alipay      paid                                  day 1
    bob     200 CNY  WeChat Pay  refunded (the payout fails for good)  day 1
    carol 1,200 CNY  Alipay      sent to review, rejected              day 1
    dave  1,200 CNY  Alipay      sent to review, approved, paid        day 1   (three transactions)
    erin    100 CNY  Alipay      paid, number ported to China Unicom   day 2   (01:00 Beijing)
    frank 1,200 CNY  Alipay      waiting in review                     day 2
    """
    op = portal.operator("op.metrics")
    portal.rig.payouts.settle_s = 600.0  # every payout takes ten minutes
    alice = portal.consumer(1, balance_fen=30_000)
    views = {"alice": portal.recover(alice, device=device(1))}
    bob = portal.consumer(2, balance_fen=20_000)
    views["bob"] = portal.submit(bob, portal.lock(bob, "wechat_pay"), device=device(2), payee=FAILING_PAYEE)
    _, views["carol"] = in_review(portal, 3)
    portal.recoveries.review(op, views["carol"].id, approve=False, reason="suspected_fraud", operator="op.metrics")
    _, views["dave"] = in_review(portal, 4)
    portal.recoveries.review(op, views["dave"].id, approve=True, reason="identity_confirmed", operator="op.metrics")
    portal.drain()

    portal.clock.now = dt.datetime(2026, 11, 18, 17, 0, tzinfo=dt.UTC)  # 01:00 on the 19th in Beijing
    erin = portal.consumer(5, balance_fen=10_000)
    portal.rig.carrier.carriers[erin.phone] = Carrier.CHINA_UNICOM  # ported: asked at submission
    views["erin"] = portal.recover(erin, device=device(5))
    portal.drain()
    _, views["frank"] = in_review(portal, 6)
    return op, {name: portal.recoveries.get(op, view.id) for name, view in views.items()}


def test_the_figures_of_a_period_are_exact(portal, period):
    op, views = period
    assert [views[n].state for n in ("alice", "bob", "carol", "dave", "erin", "frank")] == [
        S.PAID, S.REFUNDED, S.REJECTED, S.PAID, S.PAID, S.REVIEW
    ]  # fmt: skip
    paid = ("alice", "dave", "erin")

    m = metrics_of(portal).metrics(op, DAY, NEXT_DAY)

    total = m.total
    assert total.count == 6 and len(views["dave"].parts) == 3  # a recovery counts once, whatever its parts
    assert total.amount_fen == 30_000 + 20_000 + 120_000 + 120_000 + 10_000 + 120_000
    assert total.fees_fen == sum(views[n].outcome.fee_fen for n in paid) > 0
    assert (total.payout_ended, total.paid, total.refunded) == (4, 3, 1)
    assert (total.reviewed, total.rejected) == (3, 1)
    assert total.success_rate == 0.75
    assert total.refund_rate == pytest.approx(1 / 6)
    assert total.review_rate == 0.5
    assert total.reject_rate == pytest.approx(1 / 6)

    day1, day2 = m.by_day[DAY], m.by_day[NEXT_DAY]
    assert list(m.by_day) == [DAY, NEXT_DAY]
    assert (day1.count, day1.amount_fen, day1.reviewed, day1.paid) == (4, 290_000, 2, 2)
    assert (day2.count, day2.amount_fen, day2.reviewed, day2.paid) == (2, 130_000, 1, 1)
    assert day2.success_rate == 1.0 and day1.success_rate == pytest.approx(2 / 3)

    assert set(m.by_channel) == {"alipay", "wechat_pay"}
    wechat = m.by_channel["wechat_pay"]
    assert (wechat.count, wechat.amount_fen, wechat.refunded, wechat.success_rate, wechat.fees_fen) == (
        1, 20_000, 1, 0.0, 0
    )  # fmt: skip
    assert m.by_channel["alipay"].count == 5 and m.by_channel["alipay"].success_rate == 1.0
    assert {k: f.count for k, f in m.by_carrier.items()} == {"china_mobile": 5, "china_unicom": 1}

    assert m.queue_size == 1 and m.oldest_case_age_s == 0.0  # frank's, just submitted
    assert m.stuck == 0


def test_payout_times_against_the_promise_and_a_period_of_its_own_recoveries(portal, period):
    op, views = period
    m = metrics_of(portal).metrics(op, DAY, NEXT_DAY)

    by_channel = {p.channel: p for p in m.payout_times}
    assert list(by_channel) == ["alipay", "wechat_pay"]  # the catalog's order
    alipay, wechat = by_channel["alipay"], by_channel["wechat_pay"]
    seconds = payout_seconds(portal, [views[n].id for n in ("alice", "dave", "erin")])
    assert min(seconds) >= 600  # the payouts took their ten minutes
    assert alipay.measured == 3
    assert alipay.p50_s == pytest.approx(float(np.percentile(seconds, 50)), abs=0.01)
    assert alipay.p95_s == pytest.approx(float(np.percentile(seconds, 95)), abs=0.01)
    assert alipay.promise.rule == "instant" and alipay.on_time == 3 and alipay.on_time_rate == 1.0
    assert (wechat.measured, wechat.p50_s, wechat.p95_s, wechat.on_time_rate) == (0, None, None, None)

    # only the recoveries created in the period count, and every day of it is listed
    service = metrics_of(portal)
    first = service.metrics(op, DAY, DAY)
    assert first.total.count == 4 and list(first.by_day) == [DAY]
    week = service.metrics(op, DAY - dt.timedelta(days=6), DAY)
    assert len(week.by_day) == 7 and sum(f.count for f in week.by_day.values()) == 4
    empty = service.metrics(op, DAY - dt.timedelta(days=30), DAY - dt.timedelta(days=1))
    assert empty.total.count == 0 and empty.by_channel == {} and empty.payout_times == ()
    assert (empty.total.success_rate, empty.total.review_rate, empty.total.refund_rate) == (None, None, None)
    assert empty.queue_size == 1  # the queue is now's, whatever the period


def kept_days(portal: Portal) -> dict[str, int]:
    with portal.engine.connect() as conn:
        return dict(conn.execute(select(MetricsDay.day, MetricsDay.ended_parts)).all())


def afresh(portal: Portal, service: MetricsService, op: Principal, start: dt.date, end: dt.date) -> Metrics:
    """The figures worked out with nothing kept."""
    with portal.engine.begin() as conn:
        conn.execute(delete(MetricsDay))
    return service.metrics(op, start, end)


def test_a_day_is_kept_once_its_recoveries_end_and_kept_days_give_the_figures_worked_out_afresh(portal, period):
    op, views = period
    service = metrics_of(portal)
    first = service.metrics(op, DAY, NEXT_DAY)
    # day 1's four recoveries ended (8 transactions: carol's and dave's three each), day 2's paid one
    # (frank waits in review)
    day1_parts = sum(len(views[n].parts) for n in ("alice", "bob", "carol", "dave"))
    assert day1_parts == 8 and kept_days(portal) == {DAY.isoformat(): 8, NEXT_DAY.isoformat(): 1}
    assert service.metrics(op, DAY, NEXT_DAY) == first == afresh(portal, service, op, DAY, NEXT_DAY)

    # frank's recovery ends after day 2 was kept: the day no longer holds, and is worked out again
    portal.recoveries.review(op, views["frank"].id, approve=True, reason="identity_confirmed", operator="op.metrics")
    portal.drain()
    assert portal.recoveries.get(op, views["frank"].id).state is S.PAID
    later = service.metrics(op, DAY, NEXT_DAY)
    assert later.by_day[NEXT_DAY].paid == first.by_day[NEXT_DAY].paid + 1
    assert later.by_day[DAY] == first.by_day[DAY] and later.queue_size == 0
    assert kept_days(portal)[NEXT_DAY.isoformat()] == 1 + len(portal.recoveries.get(op, views["frank"].id).parts)
    assert later == afresh(portal, service, op, DAY, NEXT_DAY)


def test_the_background_upkeep_keeps_recent_ended_days_so_a_page_reads_them_kept(portal, period):
    """`keep_recent` (what the worker's upkeep runs) keeps the ended days a page would otherwise
    work out on its first read; the page then writes nothing and its figures are the same."""
    op, _ = period
    service = metrics_of(portal)
    with portal.engine.begin() as conn:
        conn.execute(delete(MetricsDay))
    portal.clock.now = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)  # two days on: both days are recent
    assert service.keep_recent(days=7) == 2
    assert kept_days(portal) == {DAY.isoformat(): 8, NEXT_DAY.isoformat(): 1}
    assert service.keep_recent(days=7) == 0  # nothing new has ended: nothing to work out
    written = []
    service._keep = lambda days, basis: written.append(dict(days))  # type: ignore[method-assign]
    figures = service.metrics(op, DAY, NEXT_DAY)
    assert written == [{}]  # every ended day came kept
    assert figures == afresh(portal, metrics_of(portal), op, DAY, NEXT_DAY)

    portal.clock.now = dt.datetime(2026, 12, 30, 2, 0, tzinfo=dt.UTC)  # long after: the days are not recent
    with portal.engine.begin() as conn:
        conn.execute(delete(MetricsDay))
    assert metrics_of(portal).keep_recent(days=7) == 0 and kept_days(portal) == {}


def test_days_kept_under_other_promises_are_not_read_as_this_catalogs(portal, period):
    """The payout times are kept keyed by the catalog's promises: when a channel's speed
    changes, a kept day is worked out again under the new one."""
    op, _ = period
    metrics_of(portal).metrics(op, DAY, NEXT_DAY)  # kept under the catalog's own promises
    catalog = portal.quotes.terms().catalog
    channels = tuple(replace(c, speed=TPlus(1, dt.time(15, 0))) if c.id == "alipay" else c for c in catalog.channels)
    slower = replace(catalog, channels=channels)
    service = MetricsService(portal.engine, lambda: slower, portal.quotes.calendar, clock=portal.clock)
    alipay = next(p for p in service.metrics(op, DAY, NEXT_DAY).payout_times if p.channel == "alipay")
    assert alipay.promise.rule == "t_plus"
    assert service.metrics(op, DAY, NEXT_DAY) == afresh(portal, service, op, DAY, NEXT_DAY)


def test_the_queue_and_stuck_recoveries_as_they_stand_now(portal):
    op = portal.operator("op.stuck")
    in_review(portal, 1)
    portal.advance(hours=3)
    in_review(portal, 2)
    service = metrics_of(portal)

    now = service.metrics(op, DAY, DAY)
    assert (now.queue_size, now.oldest_case_age_s, now.stuck) == (2, 3 * 3600.0, 0)
    portal.advance(hours=22)  # the first has waited 25 hours, the second 22
    later = service.metrics(op, DAY, DAY)
    # waiting for an operator is the queue's (its age above), not stuck work: nothing is under way
    assert (later.queue_size, later.oldest_case_age_s, later.stuck) == (2, 25 * 3600.0, 0)


def test_the_stuck_count_is_the_stuck_list_of_the_console(portal):
    """Past an instant channel's half hour, past a carrier app's fifth working day, a debit
    unanswered after its retries: counted as `StuckService.stuck` lists them (analysts read the
    count, not the list)."""
    op, reader = portal.operator("op.count"), analyst(portal, "an.count")
    service = metrics_of(portal)
    portal.rig.payouts.settle_s = 20 * 86_400  # the payouts stay processing throughout
    portal.recover(portal.consumer(1, balance_fen=20_000), device=device(1))  # Alipay: instant
    bob = portal.consumer(2, balance_fen=20_000)
    portal.submit(bob, portal.lock(bob, "china_mobile_app"), device=device(2))  # 3 to 5 working days
    in_review(portal, 3)  # waiting for an operator: never stuck
    portal.rig.worker().run_until_idle()

    def counts() -> tuple[int, int]:
        return service.metrics(op, DAY, DAY).stuck, len(portal.stuck.stuck(op))

    assert counts() == (0, 0)
    portal.advance(minutes=31)
    assert counts() == (1, 1)  # Alipay's payout is past its half hour

    dave = portal.recover(portal.consumer(4, balance_fen=20_000), device=device(4))  # its debit asked for
    with UnitOfWork(portal.engine) as uow:  # ... and tried in vain, its last try without an answer
        (call,) = uow.session.exec(select(OutboxMessage).where(OutboxMessage.recovery_id == dave.id)).all()
        call.attempts, call.last_error = UNKNOWN_AFTER_ATTEMPTS, "carrier: HTTP 503"
        uow.session.add(call)
        uow.commit()
    assert {case.reason for case in portal.stuck.stuck(op)} == {StuckReason.PAST_PROMISE, StuckReason.UNKNOWN_OUTCOME}
    assert counts() == (2, 2)

    portal.advance(days=5)  # Monday the 23rd: within bob's five working days (to the 25th)
    assert counts() == (2, 2)
    portal.advance(days=3)  # Thursday the 26th: past them
    assert counts() == (3, 3)
    assert service.metrics(reader, DAY, DAY).stuck == 3
    with pytest.raises(NotAllowed):
        portal.stuck.stuck(reader)


def test_recoveries_alike_for_the_promise_are_all_late_or_all_not(engine):
    """The metrics count recoveries against their channel's promise a group of alike ones at a
    time (`PromiseKeys`, in SQL); for every channel of the catalog, and one with a daily limit,
    payouts starting around cut-offs, midnights, weekends and the National Day holidays and
    ending up to a fortnight later, the group's verdict is `promised_by`'s for each of them."""
    catalog, calendar = load_catalog(), load_calendar()
    alipay = catalog.by_id()["alipay"]
    daily = replace(alipay, id="daily", limits=replace(alipay.limits, per_day_fen=100_000))  # 2 a day
    channels = {**catalog.by_id(), "daily": daily}
    promises = PromiseKeys(channels, calendar, engine.dialect.name)
    rng = random.Random(20261001)
    cases = []
    for channel in channels.values():
        for _ in range(30):
            started = dt.datetime(2026, 9, 26, tzinfo=SHANGHAI) + dt.timedelta(seconds=rng.uniform(0, 20 * 86_400))
            if rng.random() < 0.3:  # at a T+1 cut-off, or just before it
                started = started.replace(hour=15, minute=0, second=0, microsecond=0)
                started -= dt.timedelta(milliseconds=rng.choice([0, 1, 500]))
            amount = rng.choice([10_000, 50_000, 150_000, 250_000])
            days = days_for(split(amount, transaction_size(channel, None), 1), channel.limits.per_day_fen)
            deadline = promised_by(channel, calendar, started, days)
            ended = rng.choice([started + dt.timedelta(seconds=rng.uniform(0, 14 * 86_400)), deadline])
            ended += dt.timedelta(seconds=rng.choice([-86_400, -3_600, -1, 1, 3_600, 86_400]))  # near the deadline
            cases.append((channel.id, amount, started, (ended - started).total_seconds()))
    rows = union_all(
        *(
            select(
                literal(cid, String).label("channel"),
                literal(amount, Integer).label("amount"),
                literal(started, AT).label("started"),
                literal(started + dt.timedelta(seconds=took), AT).label("ended"),
            )
            for cid, amount, started, took in cases
        )
    ).subquery()
    query = select(rows.c.amount, *promises.keys(rows.c.channel, rows.c.amount, rows.c.started, rows.c.ended))
    with engine.connect() as conn:
        keyed = conn.execute(query).all()
    late = 0
    for (cid, amount, started, took), row in zip(cases, keyed, strict=True):
        channel = channels[cid]
        days = days_for(split(amount, transaction_size(channel, None), 1), channel.limits.per_day_fen)
        expected = started + dt.timedelta(seconds=took) > promised_by(channel, calendar, started, days)
        measured, deadline = promises.moments(channel, row)
        assert (measured > deadline) is expected, (cid, amount, started, took, row)
        late += expected
    assert 0 < late < len(cases)


def test_staff_read_the_metrics_and_a_consumer_is_refused(portal):
    service = metrics_of(portal)
    for who in (analyst(portal, "an.metrics"), portal.operator("op.read")):
        assert service.metrics(who, DAY, DAY).total.count == 0
    consumer = portal.consumer(1)
    with pytest.raises(NotAllowed):
        service.metrics(consumer.who, DAY, DAY)


def test_a_period_must_end_after_it_starts_and_not_run_over_a_year(portal):
    op = portal.operator("op.period")
    service = metrics_of(portal)
    with pytest.raises(InputError) as backwards:
        service.metrics(op, DAY, DAY - dt.timedelta(days=1))
    assert backwards.value.key == "error.metrics.period"
    with pytest.raises(InputError) as long:
        service.metrics(op, DAY - dt.timedelta(days=400), DAY)
    assert long.value.key == "error.metrics.too_long"


def test_percentiles_interpolate_between_ranks():
    values = [10.0, 40.0, 20.0, 30.0]
    assert percentile(values, 50) == float(np.percentile(values, 50)) == 25.0
    assert percentile(values, 95) == pytest.approx(float(np.percentile(values, 95)))
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli_portal(monkeypatch, tmp_path):
    """The command line's own portal (a fresh SQLite file) with an analyst and a consumer who can
    recover."""
    services = cli_services(monkeypatch, tmp_path)
    services.identity.create_staff("analyst", "an.cli", PASSWORD)
    phone = "13800138000"
    verified_consumer(services, phone)
    return phone


def test_ops_metrics_prints_the_figures_as_json_and_as_a_table(capsys, cli_portal):
    code, _, err = run(
        capsys, "recover", "start", "--as-phone", cli_portal, "--channel", "alipay", "--amount", "200",
        "--payee", "me@example.com", "--accept-agreement", "--json",
    )  # fmt: skip
    assert code == 0, err
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()

    code, out, err = run(capsys, "ops", "metrics", "--from", today, "--to", today, "--json", "--as", "an.cli")

    assert code == 0, err
    figures = json.loads(out)
    assert (figures["start"], figures["end"], figures["count"], figures["amount_fen"]) == (today, today, 1, 20_000)
    assert figures["paid"] == 1 and figures["success_rate"] == 1.0 and figures["fees_fen"] > 0
    assert figures["review_rate"] == 0.0 and figures["queue_size"] == 0 and figures["stuck"] == 0
    assert figures["by_channel"]["alipay"]["count"] == 1 and list(figures["by_day"]) == [today]
    assert figures["payout_times"][0]["channel"] == "alipay" and figures["payout_times"][0]["p50_s"] >= 0
    assert cli_portal not in out

    code, out, _ = run(capsys, "--lang", "en", "ops", "metrics", "--as", "an.cli")  # the last 30 days
    assert code == 0 and "Recoveries: 1" in out and "¥200.00" in out and "100.0%" in out


def test_ops_metrics_refuses_bad_dates_and_a_consumer_in_one_line(capsys, cli_portal):
    with pytest.raises(SystemExit) as argparse_exit:  # argparse's own error: one line, status 2
        main(["ops", "metrics", "--from", "2026-13-01", "--as", "an.cli"])
    err = capsys.readouterr().err
    assert argparse_exit.value.code == 2 and "not a date" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "ops", "metrics", "--from", "2026-11-30", "--to", "2026-11-01", "--as", "an.cli")
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--lang", "en", "ops", "metrics", "--as", "nobody")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_ops_stuck_lists_as_json_for_an_operator_and_refuses_an_analyst(capsys, cli_portal):
    build(refresh=False).identity.create_staff("operator", "op.cli", PASSWORD)
    code, out, _ = run(capsys, "ops", "stuck", "--as", "op.cli", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = run(capsys, "ops", "stuck", "--as", "an.cli", "--json")
    assert code == 2 and "Traceback" not in err
