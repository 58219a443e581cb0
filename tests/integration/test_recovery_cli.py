"""`python -m core recover|worker|simulate`: the engine driven from the command line, and the
fault simulation's promise that a broken engine cannot pass it."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys

import pytest

from core.bootstrap import build
from core.services import recovery_worker
from core.simulation.simulator import simulate
from tests.support import ROOT
from tests.support.cli import cli_services, run, verified_consumer


@pytest.fixture
def verified_phone(monkeypatch, tmp_path):
    """The command line's own portal (a fresh SQLite file) with a consumer who verified their
    number just now."""
    phone = "13800138000"
    verified_consumer(cli_services(monkeypatch, tmp_path), phone, age=dt.timedelta(0))
    return phone


def test_recover_start_works_a_recovery_to_the_end_and_the_same_key_never_twice(capsys, verified_phone):
    args = (
        "recover",
        "start",
        "--as-phone",
        verified_phone,
        "--channel",
        "alipay",
        "--amount",
        "200",
        "--accept-agreement",
    )
    code, out, _ = run(capsys, *args, "--payee", "me@example.com", "--key", "cli-key-0001", "--json")
    first = json.loads(out)
    assert code == 0 and first["state"] == "paid" and first["amount_fen"] == 20_000
    assert verified_phone not in out and first["masked_number"] == "138****8000"
    code, out, _ = run(capsys, *args, "--payee", "me@example.com", "--key", "cli-key-0001", "--json")
    assert json.loads(out)["id"] == first["id"]
    code, _, err = run(capsys, *args, "--payee", "other@example.com", "--key", "cli-key-0001")
    assert code == 2 and "error:" in err and "Traceback" not in err
    code, out, _ = run(capsys, "recover", "list", "--as-phone", verified_phone, "--json")
    assert [r["id"] for r in json.loads(out)] == [first["id"]]
    code, out, _ = run(capsys, "recover", "status", first["id"], "--as-phone", verified_phone, "--json")
    assert json.loads(out)["parts"][0]["state"] == "paid"
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "verified" in out


def test_recover_refuses_a_number_nobody_verified(capsys, verified_phone):
    code, _, err = run(
        capsys, "--lang", "en", "recover", "start", "--as-phone", "13900139000", "--channel", "alipay",
        "--amount", "200", "--payee", "me@example.com",
    )  # fmt: skip
    assert code == 2 and "Verify this number" in err


def test_recover_no_wait_leaves_the_work_to_a_worker(capsys, verified_phone):
    code, out, _ = run(
        capsys, "recover", "start", "--as-phone", verified_phone, "--channel", "alipay", "--amount", "100",
        "--payee", "me@example.com", "--no-wait", "--json", "--accept-agreement",
    )  # fmt: skip
    assert json.loads(out)["state"] == "debiting"
    code, out, _ = run(capsys, "worker", "--until-idle")
    assert code == 0 and "steps" in out


@pytest.mark.slow  # a process
def test_simulate_prints_its_invariants_as_the_last_json_line():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "simulate",
            "--seeds",
            "3",
            "--recoveries",
            "5",
            "--fault-rate",
            "0.2",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and report["violations"] == [] and report["seeds"] == 3
    assert report["recoveries"] > 0 and report["crashes"] > 0


@pytest.mark.slow  # the fault simulation, a few hundred seeds
def test_a_few_hundred_seeds_hold_every_invariant(catalog):
    """CI's share of the simulation; the note on the engine reports a larger run."""
    failing = [
        r for r in (simulate(seed, catalog, recoveries=6, fault_rate=0.2) for seed in range(200)) if r.violations
    ]
    assert failing == [], [f"seed {r.seed}: {r.violations[:3]}" for r in failing[:3]]


def test_a_seed_replays_exactly(catalog):
    first, again = (
        simulate(11, catalog, recoveries=8, fault_rate=0.3),
        simulate(11, catalog, recoveries=8, fault_rate=0.3),
    )
    assert (first.steps, first.crashes, first.notices, first.transactions) == (
        again.steps,
        again.crashes,
        again.notices,
        again.transactions,
    )


def test_the_simulation_catches_a_worker_that_retries_blind(monkeypatch, catalog):
    """A worker that calls again with a fresh reference after an unknown outcome debits twice;
    the carrier sandbox's own records must show it and the simulation must say so."""
    calls = {"n": 0}
    real = recovery_worker.reference

    def fresh_reference_each_time(recovery_id: str, kind: str) -> str:
        calls["n"] += 1
        return f"{real(recovery_id, kind)}{calls['n']}"

    monkeypatch.setattr(recovery_worker, "reference", fresh_reference_each_time)
    result = simulate(3, catalog, recoveries=6, fault_rate=0.3, max_steps=1_500)
    assert any("debit" in v for v in result.violations), result.violations[:5]


def test_simulate_refuses_bad_arguments_in_one_line(capsys):
    code, _, err = run(capsys, "simulate", "--fault-rate", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_a_denied_payee_typed_with_dashes_or_a_country_code_is_rejected_on_the_command_line(capsys, verified_phone):

    services = build(refresh=False)
    services.identity.create_staff("operator", "li.deny", "correct horse battery staple")
    code, _, err = run(
        capsys, "deny", "add", "--as", "li.deny", "--kind", "payee", "--value", "13900139000", "--reason", "stolen"
    )
    assert code == 0, err
    for i, typed in enumerate(("139-0013-9000", "+86 139 0013 9000")):
        code, out, err = run(
            capsys, "recover", "start", "--as-phone", verified_phone, "--channel", "alipay", "--amount", "100",
            "--payee", typed, "--accept-agreement", "--key", f"cli-deny-{i:04d}", "--json",
        )  # fmt: skip
        assert code == 0, err
        row = json.loads(out)
        assert row["state"] == "rejected" and "deny_list" in row["risk_reasons"]
        assert row["outcome"]["received_fen"] == 0 and row["outcome"]["not_moved_fen"] == 10_000


def test_a_payee_the_channel_cannot_pay_is_refused_on_the_command_line(capsys, verified_phone):
    code, out, err = run(
        capsys, "--lang", "en", "recover", "start", "--as-phone", verified_phone, "--channel", "icbc_e_mall",
        "--amount", "100", "--payee", "hello world", "--accept-agreement",
    )  # fmt: skip
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_refunded_recovery_on_the_command_line_says_nothing_was_received(capsys, verified_phone):
    code, out, err = run(
        capsys, "recover", "start", "--as-phone", verified_phone, "--channel", "alipay", "--amount", "100",
        "--payee", "payout@fail.sandbox", "--accept-agreement", "--json",
    )  # fmt: skip
    assert code == 0, err
    row = json.loads(out)
    assert row["state"] == "refunded"
    assert row["outcome"] == {
        "received_fen": 0,
        "fee_fen": 0,
        "refunded_fen": 10_000,
        "not_moved_fen": 0,
        "pending_fen": 0,
        "expected_fen": 0,
    }


def test_approving_above_the_four_eyes_amount_on_the_command_line_takes_a_second_operator(
    capsys, monkeypatch, verified_phone
):
    monkeypatch.setenv("RISK_REVIEW_AMOUNT_FEN", "30000")  # 400 CNY goes to review ...
    monkeypatch.setenv("FOUR_EYES_ABOVE_FEN", "30000")  # ... and takes two operators to approve
    services = build(refresh=False)
    for name in ("ops.maker", "ops.checker"):
        services.identity.create_staff("operator", name, "correct horse battery staple")
    start = ("recover", "start", "--as-phone", verified_phone, "--channel", "alipay", "--amount", "400")
    code, out, err = run(capsys, *start, "--accept-agreement", "--payee", "me@example.com", "--no-wait", "--json")
    assert code == 0, err
    recovery = json.loads(out)
    assert code == 0 and recovery["state"] == "review"

    code, out, _ = run(
        capsys, "review", "approve", recovery["id"], "--as", "ops.maker", "--reason", "identity_confirmed"
    )
    assert code == 0 and "review agree" in out
    request = out.split("review agree ")[1].split()[0]
    code, _, err = run(capsys, "review", "agree", request, "--as", "ops.maker")
    assert code != 0 and "Traceback" not in err  # not the one who asked
    code, out, _ = run(capsys, "review", "agree", request, "--as", "ops.checker", "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "debiting"


def test_a_review_decision_on_the_command_line_takes_a_reason_from_the_list(capsys, monkeypatch, verified_phone):
    """Free words went where a code belongs (a four-eyes request shown as `queue.reason.<words>`,
    the owner reading the operator's words in whatever language they were typed)."""
    monkeypatch.setenv("RISK_REVIEW_AMOUNT_FEN", "30000")
    monkeypatch.setenv("FOUR_EYES_ABOVE_FEN", "30000")
    services = build(refresh=False)
    services.identity.create_staff("operator", "ops.words", "correct horse battery staple")
    start = ("recover", "start", "--as-phone", verified_phone, "--channel", "alipay", "--amount", "400")
    code, out, err = run(capsys, *start, "--accept-agreement", "--payee", "me@example.com", "--no-wait", "--json")
    recovery = json.loads(out)
    for decision, words in (("approve", "called the owner, fine =1+1"), ("approve", "suspected_fraud")):
        code, out, err = run(
            capsys, "--lang", "en", "review", decision, recovery["id"], "--as", "ops.words", "--reason", words
        )
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert "identity_confirmed" in err and "within_usual_pattern" in err  # the codes it takes
    code, out, err = run(capsys, "review", "reject", recovery["id"], "--as", "ops.words", "--reason", "own words")
    assert code == 2 and "suspected_fraud" in err and "请从列表中选择理由" in err
    from core.domain.access import Principal, Role

    checker = Principal(
        services.identity.create_staff("operator", "ops.look", "correct horse battery staple"), Role.OPERATOR
    )
    assert services.approvals.pending(checker) == []  # nothing asked
    assert services.recoveries.get(checker, recovery["id"]).state.value == "review"  # nothing decided


def test_a_disabled_operator_can_no_longer_act_on_the_command_line(capsys, verified_phone):
    from core.domain.access import Principal, Role

    services = build(refresh=False)
    admin = Principal(services.identity.create_staff("admin", "adm.cli", "correct horse battery staple"), Role.ADMIN)
    operator = services.identity.create_staff("operator", "ops.gone", "correct horse battery staple")
    assert run(capsys, "review", "list", "--as", "ops.gone")[0] == 0
    services.staff.disable(admin, operator)
    code, _, err = run(capsys, "review", "list", "--as", "ops.gone")
    assert code == 2 and "Traceback" not in err


def test_as_phone_acts_only_for_an_enabled_consumer_never_for_a_staff_account(capsys, monkeypatch, tmp_path):
    """A staff account that verified a number (enabled or disabled) cannot act through
    `--as-phone`: it read any consumer's recovery and signed receipts for it that way."""
    services = cli_services(monkeypatch, tmp_path)
    verified_consumer(services, "13800138000")
    start = ("recover", "start", "--as-phone", "13800138000", "--channel", "alipay", "--amount", "200", "--json")
    code, out, _ = run(capsys, *start, "--payee", "me@example.com", "--key", "cli-key-0002", "--accept-agreement")
    theirs = json.loads(out)["id"]
    services.identity.create_staff("operator", "phone.ops", "Correct-horse-42!", phone="13300001111")
    for argv in (
        ("recover", "status", theirs, "--as-phone", "13300001111"),
        ("recover", "list", "--as-phone", "13300001111"),
        ("receipt", "issue", theirs, "--as-phone", "13300001111", "--out", str(tmp_path / "r.jws")),
    ):
        code, out, err = run(capsys, "--lang", "en", *argv)
        assert code == 2 and "Traceback" not in err and "verif" in err.lower(), (argv, out, err)
        assert theirs[:8] not in out
    assert not (tmp_path / "r.jws").exists()


def test_a_password_piped_with_a_windows_line_end_is_the_password_typed(capsys, monkeypatch, tmp_path):
    """`printf 'pw\\r\\n' | python -m core users create …` kept the carriage return in the
    password; a control character inside one is refused (nobody can type it into the form)."""
    services = cli_services(monkeypatch, tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Correct-horse-42!\r\n")))
    code, _, err = run(capsys, "users", "create", "--role", "operator", "--username", "crlf.ops")
    assert code == 0, err
    who = services.identity.sign_in_with_password("crlf.ops", "Correct-horse-42!", "test-client")
    assert who.role.value == "operator"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Correct\x00horse-42!\n")))
    code, _, err = run(capsys, "--lang", "en", "users", "create", "--role", "operator", "--username", "nul.ops")
    assert code == 2 and "control characters" in err and "Traceback" not in err
