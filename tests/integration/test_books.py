"""The books on SQLite and PostgreSQL, over a ledger written by real recoveries (paid, refunded,
approved in review, one after midnight in Beijing): the trial balance adds up to zero and each
account is the sum of its postings; `at` cuts at the end of a Beijing day; the balances day by
day end at the trial balance; the beancount export passes `bean-check` and its balances are the
trial balance; CSV and the dual filing; who may read and who may export; bad input; and
`python -m core ledger`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.cli import main
from core.domain.access import NotAllowed, Principal, Role
from core.domain.calendar import shanghai_day
from core.domain.recovery import RecoveryState
from core.errors import InputError
from core.persistence.tables import AuditRecord, LedgerPosting
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.books import BooksService
from core.services.books_formats import beancount_account
from tests.support.cli import cli_services, run, verified_consumer
from tests.support.db import all_rows
from tests.support.portal import DEVICE, PASSWORD, Portal, in_review

S = RecoveryState
FAILING_PAYEE = "payout@fail.sandbox"  # the sandbox accepts it, then the payout fails for good
DAY = dt.date(2026, 11, 18)  # the simulated clock starts at 10:00 on this day, Beijing time
NEXT_DAY = DAY + dt.timedelta(days=1)
BEAN_CHECK = Path(sys.executable).with_name("bean-check")


def books_of(portal: Portal) -> BooksService:
    """The service as `core.bootstrap.build` wires it, on the portal's database and clock."""
    return BooksService(portal.engine, AuditLog(portal.clock), clock=portal.clock)


def staff(portal: Portal, role: str, username: str) -> Principal:
    return Principal(portal.identity.create_staff(role, username, PASSWORD), Role(role))


@pytest.fixture
def booked(portal):
    """Recoveries whose every money move is in the ledger:

    alice   300 CNY  Alipay      paid                                   day 1
    bob     200 CNY  WeChat Pay  refunded (the payout fails for good)   day 1
    carol 1,200 CNY  Alipay      sent to review, approved, paid         day 1   (three transactions)
    dave    100 CNY  Alipay      paid                                   day 2   (01:00 Beijing, still
                                                                                 the 18th in UTC)
    """
    op = portal.operator("op.books")
    people = {"alice": portal.consumer(1, balance_fen=30_000)}
    views = {"alice": portal.recover(people["alice"], device=f"{DEVICE} #1")}
    people["bob"] = bob = portal.consumer(2, balance_fen=20_000)
    views["bob"] = portal.submit(bob, portal.lock(bob, "wechat_pay"), device=f"{DEVICE} #2", payee=FAILING_PAYEE)
    people["carol"], views["carol"] = in_review(portal, 3)
    portal.recoveries.review(op, views["carol"].id, approve=True, reason="identity_confirmed", operator="op.books")
    portal.drain()
    portal.clock.now = dt.datetime(2026, 11, 18, 17, 0, tzinfo=dt.UTC)  # 01:00 on the 19th in Beijing
    people["dave"] = portal.consumer(4, balance_fen=10_000)
    views["dave"] = portal.recover(people["dave"], device=f"{DEVICE} #4")
    portal.drain()
    views = {name: portal.recoveries.get(op, view.id) for name, view in views.items()}
    assert [views[n].state for n in ("alice", "bob", "carol", "dave")] == [S.PAID, S.REFUNDED, S.PAID, S.PAID]
    return op, people, views


def by_hand(engine, last_day: dt.date | None = None) -> dict[str, tuple[int, int]]:
    """(debits, credits) of each account, added up row by row (postings up to `last_day`)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in all_rows(engine, LedgerPosting):
        if last_day is None or shanghai_day(p.at) <= last_day:
            totals[p.account][0 if p.amount_fen > 0 else 1] += abs(p.amount_fen)
    return {account: (d, c) for account, (d, c) in totals.items()}


def records(engine, action: str) -> list[AuditRecord]:
    with UnitOfWork(engine) as uow:
        query = select(AuditRecord).where(AuditRecord.action == action).order_by(col(AuditRecord.seq))
        return list(uow.session.exec(query).all())


def test_the_trial_balance_adds_up_to_zero_and_each_account_is_its_postings(portal, booked):
    op, _, views = booked
    trial = books_of(portal).trial_balance(op)

    assert trial.total_fen == 0 and trial.at is None
    assert {a.account: (a.debits_fen, a.credits_fen) for a in trial.accounts} == by_hand(portal.engine)
    balances = trial.balances()
    fees = sum(views[n].outcome.fee_fen for n in ("alice", "carol", "dave"))
    assert balances["carrier_receivable"] == 30_000 + 20_000 + 120_000 + 10_000
    assert balances["refunds_to_carrier"] == -20_000  # bob's balance put back
    partner_fees = -balances["partner_fees_payable"]  # the payout partners' own fees, owed to them
    assert 0 < partner_fees < fees
    assert balances["fee_revenue"] == -(fees - partner_fees) < 0  # our margin
    assert balances["payouts_settled"] == -(30_000 + 120_000 + 10_000 - fees)
    assert balances["customer_payable"] == balances["payouts_in_flight"] == 0  # nothing open
    assert trial.as_dict()["total_fen"] == 0 and trial.as_dict()["at"] is None


def test_at_cuts_at_the_end_of_a_beijing_day(portal, booked):
    op, *_ = booked
    books = books_of(portal)
    first, second = books.trial_balance(op, DAY), books.trial_balance(op, NEXT_DAY)

    assert {a.account: (a.debits_fen, a.credits_fen) for a in first.accounts} == by_hand(portal.engine, DAY)
    assert first.balances()["carrier_receivable"] == 170_000  # dave's debit was after midnight in Beijing
    assert second.balances()["carrier_receivable"] == 180_000
    assert second.balances() == books.trial_balance(op).balances()
    assert first.total_fen == second.total_fen == 0
    assert books.trial_balance(op, DAY - dt.timedelta(days=1)).accounts == ()
    assert first.as_dict()["at"] == DAY.isoformat()


def test_balances_day_by_day_end_at_the_trial_balance(portal, booked):
    op, *_ = booked
    books = books_of(portal)
    over = books.balances_over_time(op, DAY - dt.timedelta(days=1), NEXT_DAY)

    assert over.days == (DAY - dt.timedelta(days=1), DAY, NEXT_DAY)
    assert over.closing() == books.trial_balance(op, NEXT_DAY).balances()
    assert {a: v[1] for a, v in over.balances.items()} == books.trial_balance(op, DAY).balances()
    assert all(values[0] == 0 for values in over.balances.values())  # nothing before the first day
    later = books.balances_over_time(op, NEXT_DAY, NEXT_DAY)  # the first day carried in as the opening balance
    assert later.closing() == over.closing()


def bean_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True, timeout=120, check=False)


def beancount_balances(path: Path) -> dict[str, Decimal]:
    """Each account's balance at the end of the file, as beancount itself adds it up."""
    from beancount import loader
    from beancount.core.data import Transaction

    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if isinstance(entry, Transaction):
            for posting in entry.postings:
                assert posting.units.currency == "CNY"
                totals[posting.account] += posting.units.number
    return dict(totals)


@pytest.mark.parametrize("start", [DAY, NEXT_DAY])  # the whole ledger; the second day over the first's balances
def test_the_beancount_export_passes_bean_check_and_holds_the_trial_balance(portal, booked, tmp_path, start):
    op, _, views = booked
    books = books_of(portal)
    path = tmp_path / "books.beancount"
    path.write_text(books.export(op, "beancount", start, NEXT_DAY), encoding="utf-8")

    checked = bean_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text(encoding="utf-8")
    assert 'option "operating_currency" "CNY"' in text
    expected = {beancount_account(a): Decimal(f) / 100 for a, f in books.trial_balance(op, NEXT_DAY).balances().items()}
    got = beancount_balances(path)
    assert got.pop("Equity:Opening-Balances", Decimal(0)) == 0
    assert got == expected
    dave = views["dave"].parts[0].id
    assert f'recovery: "{dave}"' in text and f'reference: "rcv-{dave.replace("-", "")}-d"' in text
    assert ("Opening balances" in text) is (start == NEXT_DAY)  # alice's entries carried in, or listed
    assert (f'recovery: "{views["alice"].parts[0].id}"' in text) is (start == DAY)


def test_accounts_and_events_added_later_are_read_as_they_are(portal, booked, tmp_path):
    """Other code may book to accounts and with events this module has never heard of."""
    op, _, views = booked
    recovery = views["alice"].parts[0].id
    with UnitOfWork(portal.engine) as uow:
        entry = {"entry_id": "e-1", "recovery_id": recovery, "event": "correction"}
        at = dt.datetime(2026, 11, 19, 4, 0, tzinfo=dt.UTC)
        for account, fen in (("reconciliation_differences", 150), ("odd account/名", -150)):
            uow.session.add(LedgerPosting(**entry, account=account, amount_fen=fen, at=at))
        uow.commit()
    books = books_of(portal)

    trial = books.trial_balance(op)
    assert trial.total_fen == 0
    assert trial.balances()["reconciliation_differences"] == 150 and trial.balances()["odd account/名"] == -150
    path = tmp_path / "books.beancount"
    path.write_text(books.export(op, "beancount", DAY, NEXT_DAY), encoding="utf-8")
    checked = bean_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    balances = beancount_balances(path)
    assert balances["Expenses:Reconciliation-Differences"] == Decimal("1.50")
    assert balances["Equity:Unclassified:Odd-Account"] == Decimal("-1.50")
    (correction,) = [block for block in path.read_text(encoding="utf-8").split("\n\n") if "correction" in block]
    assert 'event: "correction"' in correction and "reference:" not in correction  # it called no partner


def test_the_csv_export_is_one_row_per_posting_of_the_period(portal, booked):
    op, *_ = booked
    text = books_of(portal).export(op, "csv", NEXT_DAY, NEXT_DAY)

    rows = list(csv.DictReader(io.StringIO(text)))
    postings = [p for p in all_rows(portal.engine, LedgerPosting) if shanghai_day(p.at) == NEXT_DAY]
    assert len(rows) == len(postings) > 0
    assert list(rows[0]) == ["date", "entry", "recovery", "event", "account", "amount_yuan"]
    assert {r["date"] for r in rows} == {NEXT_DAY.isoformat()}
    assert sum(Decimal(r["amount_yuan"]) for r in rows) == 0
    assert sum(Decimal(r["amount_yuan"]) for r in rows if r["account"] == "carrier_receivable") == Decimal("100.00")


def test_every_export_and_filing_is_audited_with_its_period_and_format_only(portal, booked):
    op, *_ = booked
    books = books_of(portal)
    books.trial_balance(op)
    books.balances_over_time(op, DAY, NEXT_DAY)
    assert records(portal.engine, "ledger.export") == []  # reading is not exporting

    books.export(op, "beancount", DAY, NEXT_DAY)
    books.export(op, "csv", DAY, DAY)
    lines = list(books.filing(op, DAY, NEXT_DAY))

    exports = records(portal.engine, "ledger.export")
    assert [(r.actor, r.subject, json.loads(r.detail)) for r in exports] == [
        (op.user_id, "ledger", {"from": "2026-11-18", "to": "2026-11-19", "format": "beancount"}),
        (op.user_id, "ledger", {"from": "2026-11-18", "to": "2026-11-18", "format": "csv"}),
    ]
    (filed,) = records(portal.engine, "ledger.filing")
    assert json.loads(filed.detail) == {"from": "2026-11-18", "to": "2026-11-19", "format": "jsonl"}
    assert json.loads(lines[-1]) == {"type": "audit_head", "seq": filed.seq, "hash": filed.hash}


def test_the_filing_puts_each_recoverys_money_beside_who_moved_it(portal, booked):
    op, people, views = booked
    lines = [json.loads(line) for line in books_of(portal).filing(op, DAY, DAY)]

    header, *filed, head = lines
    assert header["type"] == "filing" and (header["from"], header["to"]) == ("2026-11-18", "2026-11-18")
    assert header["recoveries"] == len(filed) == 3  # dave's was created and moved on the 19th
    with UnitOfWork(portal.engine) as uow:
        last = uow.session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).one()
    assert head == {"type": "audit_head", "seq": last.seq, "hash": last.hash} and last.action == "ledger.filing"
    carol = next(r for r in filed if r["recovery"] == views["carol"].id)
    assert carol["masked_number"] == views["carol"].masked_number and len(carol["parts"]) == 3
    approvals = [s for p in carol["parts"] for s in p["transitions"] if s["event"] == "approve"]
    assert approvals and all(s["actor_name"] == "op.books" and s["actor"] == op.user_id for s in approvals)
    first_part = carol["parts"][0]["id"]
    postings = {p.entry_id for p in all_rows(portal.engine, LedgerPosting) if p.recovery_id == first_part}
    entries = carol["parts"][0]["ledger"]
    assert {e["entry"] for e in entries} == postings
    assert all(sum(p["amount_fen"] for p in e["postings"]) == 0 for e in entries)
    assert {e["event"]: e["reference"][-1] for e in entries} == {
        "debit_confirmed": "d", "start_payout": "p", "payout_confirmed": "p"
    }  # fmt: skip
    assert any(r["action"] == "approve" and r["subject"] == first_part for r in carol["audit"])
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert not any(person.phone in text for person in people.values())
    assert "cipher" not in text and "number_index" not in text


def test_staff_read_the_books_only_operators_export_and_a_consumer_reads_nothing(portal, booked):
    _, people, _ = booked
    books = books_of(portal)
    analyst = staff(portal, "analyst", "an.books")
    assert books.trial_balance(analyst).total_fen == 0
    assert books.balances_over_time(analyst, DAY, DAY).days == (DAY,)
    for call in (
        lambda who: books.export(who, "beancount", DAY, DAY),
        lambda who: books.export(who, "csv", DAY, DAY),
        lambda who: list(books.filing(who, DAY, DAY)),
    ):
        with pytest.raises(NotAllowed):
            call(analyst)
    consumer = people["alice"].who
    for call in (
        lambda who: books.trial_balance(who),
        lambda who: books.balances_over_time(who, DAY, DAY),
        lambda who: books.export(who, "csv", DAY, DAY),
        lambda who: books.filing(who, DAY, DAY),
    ):
        with pytest.raises(NotAllowed):
            call(consumer)
    assert records(portal.engine, "ledger.export") == records(portal.engine, "ledger.filing") == []
    admin = staff(portal, "admin", "ad.books")
    assert books.export(admin, "csv", DAY, DAY).startswith("date,entry,")


def test_bad_dates_formats_and_periods_are_refused_before_anything_is_written(portal):
    op = portal.operator("op.input")
    books = books_of(portal)
    cases = [
        ("error.books.period", lambda: books.balances_over_time(op, DAY, DAY - dt.timedelta(days=1))),
        ("error.books.period", lambda: books.export(op, "csv", DAY, DAY - dt.timedelta(days=1))),
        ("error.books.too_long", lambda: books.balances_over_time(op, DAY - dt.timedelta(days=366), DAY)),
        ("error.books.too_long", lambda: books.filing(op, DAY - dt.timedelta(days=400), DAY)),
        ("error.books.date", lambda: books.trial_balance(op, dt.datetime(2026, 11, 18, 12, 0))),
        ("error.books.date", lambda: books.trial_balance(op, "2026-11-18")),
        ("error.books.date", lambda: books.export(op, "csv", dt.date(1, 1, 1), DAY)),
        ("error.books.format", lambda: books.export(op, "xlsx", DAY, DAY)),
    ]
    for key, call in cases:
        with pytest.raises(InputError) as refused:
            call()
        assert refused.value.key == key
    assert books.balances_over_time(op, DAY - dt.timedelta(days=365), DAY).days[-1] == DAY  # 366 days is fine
    assert records(portal.engine, "ledger.export") == records(portal.engine, "ledger.filing") == []


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli_portal(monkeypatch, tmp_path):
    """The command line's own portal (a fresh SQLite file) with an analyst, an operator and a
    consumer who can recover."""
    services = cli_services(monkeypatch, tmp_path)
    services.identity.create_staff("analyst", "an.ledger", PASSWORD)
    services.identity.create_staff("operator", "op.ledger", PASSWORD)
    phone = "13800138000"
    verified_consumer(services, phone)
    return phone


def test_ledger_trial_balance_prints_json_and_a_table(capsys, cli_portal):
    code, _, err = run(
        capsys, "recover", "start", "--as-phone", cli_portal, "--channel", "alipay", "--amount", "200",
        "--payee", "me@example.com", "--accept-agreement", "--json",
    )  # fmt: skip
    assert code == 0, err

    code, out, err = run(capsys, "ledger", "trial-balance", "--json", "--as", "an.ledger")

    assert code == 0, err
    trial = json.loads(out)
    assert set(trial) == {"at", "accounts", "total_fen"} and trial["at"] is None and trial["total_fen"] == 0
    accounts = {a["account"]: a for a in trial["accounts"]}
    assert set(accounts["carrier_receivable"]) == {"account", "debits_fen", "credits_fen", "balance_fen"}
    assert accounts["carrier_receivable"]["debits_fen"] == accounts["carrier_receivable"]["balance_fen"] == 20_000
    assert accounts["fee_revenue"]["credits_fen"] > 0
    yesterday = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date() - dt.timedelta(days=1)).isoformat()
    code, out, _ = run(capsys, "ledger", "trial-balance", "--at", yesterday, "--json", "--as", "an.ledger")
    assert code == 0 and json.loads(out) == {"at": yesterday, "accounts": [], "total_fen": 0}
    code, out, _ = run(capsys, "--lang", "en", "ledger", "trial-balance", "--as", "an.ledger")
    assert code == 0 and "carrier_receivable" in out and "200.00" in out and "Total" in out


def test_ledger_export_and_filing_write_files_for_an_operator_only(capsys, cli_portal, tmp_path):
    code, _, err = run(
        capsys, "recover", "start", "--as-phone", cli_portal, "--channel", "alipay", "--amount", "150",
        "--payee", "me@example.com", "--accept-agreement", "--json",
    )  # fmt: skip
    assert code == 0, err
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    out_file = tmp_path / "books.beancount"
    period = ("--from", today, "--to", today)

    export = ("ledger", "export", *period, "--format")
    code, out, err = run(capsys, *export, "beancount", "--out", str(out_file), "--as", "op.ledger")
    assert code == 0, err
    assert str(out_file) in out
    checked = bean_check(out_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    filing = tmp_path / "filing.jsonl"
    code, _, err = run(capsys, "ledger", "filing", *period, "--out", str(filing), "--as", "op.ledger")
    assert code == 0, err
    lines = [json.loads(line) for line in filing.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["type"] == "filing" and lines[-1]["type"] == "audit_head" and len(lines) == 3
    assert cli_portal not in filing.read_text(encoding="utf-8")

    code, _, err = run(capsys, *export, "csv", "--out", str(tmp_path / "x.csv"), "--as", "an.ledger")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_a_books_file_that_cannot_be_written_is_refused_before_anything_is_recorded(capsys, cli_portal, tmp_path):
    """An export to a folder, or into a folder that is not there, was recorded in the audit chain
    as done; a file written is its owner's only."""
    from core.bootstrap import build

    engine = build(refresh=False).engine
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    period = ("--from", today, "--to", today)
    for out in (tmp_path, tmp_path / "missing" / "books.csv"):
        for command in (("ledger", "export", *period, "--format", "csv"), ("ledger", "filing", *period)):
            code, _, err = run(capsys, "--lang", "en", *command, "--out", str(out), "--as", "op.ledger")
            assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    with UnitOfWork(engine) as uow:
        recorded = uow.session.exec(
            select(AuditRecord).where(col(AuditRecord.action).in_(["ledger.export", "ledger.filing"]))
        ).all()
    assert recorded == []
    code, _, err = run(
        capsys, "ledger", "export", *period, "--format", "csv", "--out", str(tmp_path / "b.csv"), "--as", "op.ledger"
    )
    assert code == 0, err
    assert (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o600


def test_ledger_refuses_bad_dates_and_long_periods_in_one_line(capsys, cli_portal, tmp_path):
    with pytest.raises(SystemExit) as argparse_exit:  # argparse's own error: one line, status 2
        main(["ledger", "trial-balance", "--at", "2026-13-01", "--as", "an.ledger"])
    err = capsys.readouterr().err
    assert argparse_exit.value.code == 2 and "not a date" in err and len(err.strip().splitlines()) == 1
    out = str(tmp_path / "x.csv")
    code, _, err = run(
        capsys, "--lang", "en", "ledger", "export", "--format", "csv", "--from", "2026-11-30", "--to", "2026-11-01",
        "--out", out, "--as", "op.ledger",
    )  # fmt: skip
    assert code == 2 and err.strip() == "error: The period ends before it starts."
    code, _, err = run(
        capsys, "--lang", "en", "ledger", "filing", "--from", "2024-01-01", "--to", "2026-01-01",
        "--out", out, "--as", "op.ledger",
    )  # fmt: skip
    assert code == 2 and err.strip() == "error: A period is at most 366 days."
