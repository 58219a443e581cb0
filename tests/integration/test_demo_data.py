"""`python -m core demo`: the plan a seed makes (pure), a small run through the real engine on
both databases, the same seed twice, and the command refusing anything but sandbox mode."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.bootstrap import Services, build
from core.cli import main
from core.config import Settings
from core.domain.access import Principal, Role
from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.recovery import RecoveryState
from core.domain.review import RequestStatus
from core.errors import InputError
from core.persistence.tables import ApprovalRequest, Recovery, User
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.reference_data import load_catalog
from core.security.keys import PortalKeys
from core.services.audit import verify_audit_chain
from core.simulation.demo import (
    MAX_AMOUNT_FEN,
    MIN_AMOUNT_FEN,
    DemoResult,
    Fate,
    Step,
    plan_demo,
    run_demo,
    window_start,
)
from core.simulation.rig import SimClock
from tests.support.db import all_rows, count, ledger, scratch_engine
from tests.support.keys import rsa_key

SETTINGS = replace(Settings(), public_url="http://portal.test", external_auth=True)
CATALOG = load_catalog(SETTINGS.data_dir / "channels.json")
NOW = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)
SEED = 2  # 12 recoveries over 3 days: paid, refunded, failed, rejected, waiting, one approved by two operators
FULL_NUMBER = re.compile(r"1[3-9]\d{9}")


# --- the plan (pure) -----------------------------------------------------------------------------


def test_the_plan_for_a_seed_is_the_same_every_time_and_another_seed_makes_another():
    assert plan_demo(7, 300, 30, CATALOG) == plan_demo(7, 300, 30, CATALOG)
    assert plan_demo(7, 300, 30, CATALOG).recoveries != plan_demo(8, 300, 30, CATALOG).recoveries


def test_the_plan_is_a_realistic_mix():
    plan = plan_demo(7, 300, 30, CATALOG)
    assert {r.channel_id for r in plan.recoveries} == {c.id for c in CATALOG.channels}
    assert {c.carrier for c in plan.consumers} == set(Carrier)
    assert {parse_mobile(c.phone).allocated_carrier for c in plan.consumers} == set(Carrier)
    assert len({c.phone for c in plan.consumers}) == len(plan.consumers) < len(plan.recoveries)
    amounts = [r.amount_fen for r in plan.recoveries]
    assert min(amounts) >= MIN_AMOUNT_FEN and max(amounts) <= MAX_AMOUNT_FEN
    assert sorted(amounts)[150] < 50_000  # most are a few hundred CNY
    assert set(plan.expected_states()) == {
        RecoveryState.PAID,
        RecoveryState.REFUNDED,
        RecoveryState.FAILED,
        RecoveryState.REVIEW,
        RecoveryState.REJECTED,
        RecoveryState.CANCELLED,
    }
    assert {int(r.at_s // 86_400) for r in plan.recoveries} == set(range(30))


def test_the_plan_sends_to_review_exactly_what_the_risk_rules_will():
    plan = plan_demo(11, 300, 30, CATALOG)
    t = SETTINGS.risk
    for r in plan.recoveries:
        consumer = plan.consumers[r.consumer]
        assert consumer.created_s < r.at_s  # accounts exist before their recoveries
        young = r.at_s - consumer.created_s < t.new_account_s
        by_rules = r.amount_fen >= t.review_amount_fen or (young and r.amount_fen >= t.new_account_review_fen)
        assert by_rules == r.fate.reviewed, r
        assert (r.agreed_s is not None) == (r.fate.approved and r.amount_fen > SETTINGS.four_eyes_above_fen)


def test_every_step_comes_after_the_submission_it_follows():
    plan = plan_demo(3, 200, 10, CATALOG)
    events = plan.events()
    assert [e.at_s for e in events] == sorted(e.at_s for e in events)
    submitted = {}
    for event in events:
        if event.step is Step.SUBMIT:
            submitted[event.recovery] = event.at_s
        else:
            assert event.recovery in submitted
    start = window_start(plan, NOW)
    assert start.astimezone(SHANGHAI).time() == dt.time(0, 0)
    assert start + dt.timedelta(seconds=plan.span_s) <= NOW


# --- a run through the engine --------------------------------------------------------------------


def demo_services(engine: Engine, clock: SimClock) -> Services:
    """The portal as `build()` wires it, on this database and this simulated clock."""
    keys = PortalKeys(*(bytes([i]) * 32 for i in (7, 9)), "cookie-secret-for-tests-only-0123456789", generated=True)
    return build(SETTINGS, env={}, engine=engine, clock=clock, keys=keys, receipt_key=rsa_key("receipts-test"))


def small_run(engine: Engine, seed: int = SEED) -> tuple[Services, DemoResult]:
    plan = plan_demo(seed, 12, 3, CATALOG)
    start = window_start(plan, NOW)
    clock = SimClock(start)
    services = demo_services(engine, clock)
    return services, run_demo(services, clock, plan, start)


@pytest.mark.slow
def test_a_small_run_leaves_recoveries_in_several_states_over_the_days_with_the_books_balanced(engine):
    services, result = small_run(engine)
    plan = result.plan
    assert result.by_state() == plan.expected_states()
    assert len(result.by_state()) >= 5
    rows = all_rows(engine, Recovery, Recovery.part == 1)
    assert len(rows) == 12
    days = {aware(row.created_at).astimezone(SHANGHAI).date() for row in rows}
    first = result.start.astimezone(SHANGHAI).date()
    assert len(days) >= 2 and days <= {first + dt.timedelta(days=d) for d in range(3)}
    entries, _ = ledger(engine)
    assert entries and all(total == 0 for total in entries.values())
    assert verify_audit_chain(engine)[1] is None
    agreed = sum(1 for r in plan.recoveries if r.agreed_s is not None)
    done = col(ApprovalRequest.status) == RequestStatus.DONE.value
    assert agreed == 1 and count(engine, ApprovalRequest, done) == agreed
    checker = services.identity.create_staff("operator", "test.checker", "correct horse battery staple")
    waiting = services.queue.cases(Principal(checker, Role.OPERATOR))
    assert (
        len(waiting)
        == plan.expected_states()[RecoveryState.REVIEW]
        == sum(1 for r in plan.recoveries if r.fate is Fate.WAITING)
    )


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def history(engine: Engine) -> list[tuple[str, int, str]]:
    """Every recovery's channel, amount and state, in the order they were submitted."""
    with UnitOfWork(engine) as uow:
        rows = uow.session.exec(select(Recovery).order_by(col(Recovery.created_at), col(Recovery.part))).all()
    groups: dict[str, list[Recovery]] = {}
    for row in rows:
        groups.setdefault(row.group_id, []).append(row)
    return [(p[0].channel_id, sum(x.debit_fen for x in p), p[0].state) for p in groups.values()]


@pytest.mark.slow
def test_the_same_seed_twice_gives_the_same_history(engine, tmp_path):
    _, first = small_run(engine)
    backend = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
    (tmp_path / "again").mkdir()
    with scratch_engine(backend, tmp_path / "again") as other:
        _, second = small_run(other)
        assert history(engine) == history(other)
    assert first.states == second.states and first.plan == second.plan


def test_a_second_demo_in_the_same_database_is_refused_before_it_writes_anything(engine):
    plan = plan_demo(SEED, 12, 3, CATALOG)
    start = window_start(plan, NOW)
    clock = SimClock(start)
    services = demo_services(engine, clock)
    services.identity.create_staff("operator", "demo.operator1", "correct horse battery staple")
    with pytest.raises(InputError) as refused:
        run_demo(services, clock, plan, start)
    assert refused.value.key == "error.demo.loaded" and refused.value.params == {"username": "demo.operator1"}
    assert count(engine, Recovery) == 0 and count(engine, User) == 1


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"PORTAL_ENV": "production"},
        {"CARRIER_API_URL": "http://carrier.example"},
        {"PAYOUT_API_URL": "https://pay.example"},
    ],
)
def test_the_command_refuses_anything_but_sandbox_mode(env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    monkeypatch.setenv("PORTAL_SECRETS_FILE", str(tmp_path / "secrets.json"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["--lang", "en", "demo", "--recoveries", "3", "--days", "2"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: Demo data is made in sandbox mode only") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "demo.sqlite3").exists()


def test_the_command_checks_its_arguments(capsys):
    assert main(["--lang", "en", "demo", "--recoveries", "0", "--days", "2"]) == 2
    assert "--recoveries is 1 to 5000" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_fills_a_fresh_install_and_prints_counts_but_no_number(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    monkeypatch.setenv("PORTAL_SECRETS_FILE", str(tmp_path / "secrets.json"))
    code = main(["--lang", "en", "demo", "--recoveries", "8", "--days", "2", "--seed", "5"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "Demo data: 8 recoveries over 2 days" in out and "(seed 5)" in out and "By state:" in out
    assert "users create" in out and not FULL_NUMBER.search(out)
    code = main(["--lang", "en", "demo", "--recoveries", "8", "--days", "2", "--seed", "5"])
    assert code == 2 and "already holds demo data" in capsys.readouterr().err
