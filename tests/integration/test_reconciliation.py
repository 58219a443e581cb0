"""Reconciliation of the sandbox partners' statements with our books, on SQLite and PostgreSQL:
a clean statement gives no break; each break the sandbox injects is named, with its reference,
and nothing else; a timing break clears when the other day's statement arrives; the same file
imported twice is stored once; an amount mismatch is put right by a correcting entry a second
operator agrees to, and the ledger still balances; a malformed file stores nothing; only
operators reconcile; and `python -m core reconcile` prints the JSON contract."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func
from sqlmodel import select

from core.adapters.sandbox.statements import Breaks, produce_statement
from core.domain.access import NotAllowed, Principal, Role
from core.domain.calendar import SHANGHAI
from core.domain.reconciliation import BreakKind, BreakStatus
from core.domain.review import FourEyesAction
from core.domain.statements import StatementRow, write_statement
from core.errors import InputError
from core.i18n import Translator
from core.money import format_fen
from core.persistence.tables import (
    AuditRecord,
    LedgerPosting,
    ReconciliationBreak,
    Recovery,
    StatementImport,
    StatementLine,
)
from core.persistence.uow import UnitOfWork
from core.reference_data import load_catalog
from core.services.audit import AuditLog
from core.services.console.approvals import SameOperator
from core.services.reconciliation import BreakClosed, ReconciliationService, read_statement
from core.services.reconciliation_books import our_bookings
from core.services.recovery_worker import recovery_of
from core.simulation.invariants import statements_agree
from core.statement_dialect_files import dialect_for
from pages._ui.console_view import request_line
from pages._ui.plain_text import plain
from pages._ui.reconciliation_view import break_rows
from pages._ui.recoveries_view import record_tables
from tests.support.cli import cli_services, verified_consumer
from tests.support.cli import run as run_cli
from tests.support.portal import PASSWORD, Portal

FAILING_PAYEE = "payout@fail.sandbox"


def service_of(portal: Portal) -> ReconciliationService:
    channels = [c.id for c in portal.quotes.terms().catalog.channels]
    return ReconciliationService(
        portal.engine, AuditLog(portal.clock), portal.approvals, lambda: channels, clock=portal.clock
    )


def today(portal: Portal) -> dt.date:
    return portal.clock().astimezone(SHANGHAI).date()


def statement(portal: Portal, partner: str, day: dt.date, **breaks: int) -> tuple[bytes, dict[str, list[str]]]:
    book = portal.rig.payouts.book
    assert book is not None
    produced = produce_statement(book, partner, day, until=portal.clock.seconds(), breaks=Breaks(**breaks))
    return produced.data, produced.broken


@pytest.fixture
def day_of_recoveries(portal):
    """Six recoveries paid through Alipay, three through WeChat Pay, one refunded (its payout
    failed: the carrier put the balance back), all on one Beijing day."""
    for n in range(6):
        portal.recover(portal.consumer(n, balance_fen=10_000 + 1_000 * n), device=f"dev-{n}")
    for n in range(6, 9):
        c = portal.consumer(n, balance_fen=20_000 + 100 * n)
        portal.submit(c, portal.lock(c, "wechat_pay"), device=f"dev-{n}")
    c = portal.consumer(9, balance_fen=15_000)
    portal.submit(c, portal.lock(c, "wechat_pay"), device="dev-9", payee=FAILING_PAYEE)
    portal.drain()
    return portal.operator("op.recon"), service_of(portal)


def test_clean_statements_of_every_partner_give_no_break(portal, day_of_recoveries):
    op, service = day_of_recoveries
    day = today(portal)
    expected = {"alipay": 6, "wechat_pay": 3, "carrier": 10 + 1}  # ten debits and one refund
    for partner, matched in expected.items():
        data, _ = statement(portal, partner, day)
        report = service.reconcile(op, partner, data, day=day)
        assert (report.matched, report.breaks, report.stored) == (matched, (), True), partner
        assert report.ours_fen == report.theirs_fen > 0


@pytest.mark.parametrize(
    ("knob", "kind"),
    [
        ("missing", BreakKind.MISSING_IN_STATEMENT),
        ("changed", BreakKind.AMOUNT_MISMATCH),
        ("duplicated", BreakKind.DUPLICATE),
        ("foreign", BreakKind.MISSING_IN_LEDGER),
        ("next_day", BreakKind.TIMING),
    ],
)
def test_each_injected_break_is_named_with_its_reference_and_nothing_else(portal, day_of_recoveries, knob, kind):
    op, service = day_of_recoveries
    data, broken = statement(portal, "alipay", today(portal), **{knob: 1})
    report = service.reconcile(op, "alipay", data)
    assert [(b.kind, b.reference) for b in report.breaks] == [(kind.value, broken[knob][0])]
    assert report.matched == (6 if knob in ("foreign", "duplicated") else 5)


def test_a_summary_that_disagrees_with_the_rows_is_a_break_and_the_rows_still_match(portal, day_of_recoveries):
    op, service = day_of_recoveries
    data, _ = statement(portal, "wechat_pay", today(portal), summary_off=100)
    report = service.reconcile(op, "wechat_pay", data)
    assert [b.kind for b in report.breaks] == [BreakKind.SUMMARY_MISMATCH.value]
    (b,) = report.breaks
    assert b.theirs_fen == b.ours_fen + 100 and report.matched == 3
    shown = str(break_rows(report.breaks, Translator("zh-CN")))
    assert "明细合计" in shown  # its two figures are the statement's own, not ours against theirs


def test_the_same_file_imported_twice_is_stored_once(portal, day_of_recoveries):
    op, service = day_of_recoveries
    data, _ = statement(portal, "alipay", today(portal), missing=1)
    first = service.reconcile(op, "alipay", data)
    again = service.reconcile(op, "alipay", data)
    assert again.stored is False and again.import_id == first.import_id and again.breaks == first.breaks
    with UnitOfWork(portal.engine) as uow:
        assert uow.session.exec(select(func.count()).select_from(StatementImport)).one() == 1
        assert uow.session.exec(select(func.count()).select_from(StatementLine)).one() == 5
        assert uow.session.exec(select(func.count()).select_from(ReconciliationBreak)).one() == 1


def test_the_same_file_imported_again_for_another_day_is_refused_and_changes_nothing(portal, day_of_recoveries):
    """Before, the earlier import's report came back as if it answered for the day asked."""
    op, service = day_of_recoveries
    day = today(portal)
    data, _ = statement(portal, "alipay", day, missing=1)
    first = service.reconcile(op, "alipay", data)
    assert service.reconcile(op, "alipay", data, day=day).import_id == first.import_id  # the same day: the same report
    with pytest.raises(InputError) as refused:
        service.reconcile(op, "alipay", data, day=day - dt.timedelta(days=1))
    assert refused.value.key == "error.reconcile.imported_as_other"
    assert refused.value.params == {"partner": "alipay", "day": day.isoformat()}
    with UnitOfWork(portal.engine) as uow:
        assert uow.session.exec(select(func.count()).select_from(StatementImport)).one() == 1


def test_the_same_file_imported_by_four_operators_at_once_is_stored_once_and_nobody_fails(portal, day_of_recoveries):
    """On PostgreSQL two imports of one file at the same moment both found no earlier one, and
    the second failed on the unique key (a traceback on the command line)."""
    op, service = day_of_recoveries
    data, _ = statement(portal, "alipay", today(portal), missing=1)
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: service.reconcile(op, "alipay", data), range(4)))
    assert [r.stored for r in reports].count(True) == 1
    assert len({r.import_id for r in reports}) == 1
    with UnitOfWork(portal.engine) as uow:
        assert uow.session.exec(select(func.count()).select_from(StatementImport)).one() == 1


def test_a_timing_break_clears_when_the_next_days_statement_arrives(portal, day_of_recoveries):
    op, service = day_of_recoveries
    day = today(portal)
    data, broken = statement(portal, "alipay", day, next_day=1)
    (timing,) = service.reconcile(op, "alipay", data).breaks
    assert timing.kind == BreakKind.TIMING.value and timing.status == BreakStatus.OPEN.value
    assert (timing.our_day, timing.their_day) == (day.isoformat(), (day + dt.timedelta(days=1)).isoformat())
    assert [b.reference for b in service.open_breaks(op, "alipay")] == broken["next_day"]

    portal.advance(days=1)
    nothing, _ = statement(portal, "alipay", day + dt.timedelta(days=1))  # the next day: no payouts
    assert service.reconcile(op, "alipay", nothing, day=day + dt.timedelta(days=1)).breaks == ()
    assert service.open_breaks(op, "alipay") == []
    assert service.report(op, service.imports(op)[-1].id).breaks[0].status == BreakStatus.CLEARED.value


def test_an_amount_mismatch_is_corrected_by_an_entry_a_second_operator_agrees_to(portal, day_of_recoveries):
    op, service = day_of_recoveries
    checker = portal.operator("op.checker")
    data, broken = statement(portal, "alipay", today(portal), changed=1)
    (mismatch,) = service.reconcile(op, "alipay", data).breaks
    assert mismatch.kind == BreakKind.AMOUNT_MISMATCH.value

    with pytest.raises(InputError):
        service.request_correction(op, mismatch.id, "  ")  # a reason is required
    request = service.request_correction(op, mismatch.id, "the partner paid one yuan more/less")
    assert request.action is FourEyesAction.CORRECT_BREAK
    with pytest.raises(SameOperator):
        portal.approvals.agree(op, request.id)
    assert service.open_breaks(op)[0].id == mismatch.id  # nothing happened yet
    # the checker sees the money at stake, not 8 characters of a break id
    (pending,) = service.pending_corrections(checker)
    shown = request_line(pending, Translator("zh-CN", {"alipay": {"zh-CN": "支付宝"}}))
    ours, theirs = format_fen(mismatch.ours_fen), format_fen(mismatch.theirs_fen)
    difference = format_fen(mismatch.theirs_fen - mismatch.ours_fen)
    assert f"我方账簿 {ours},合作方对账单 {theirs}:调整 {difference}" in shown, shown
    assert (
        f"支付宝 单号 {plain(mismatch.reference)}" in shown and recovery_of(mismatch.reference, "payout")[:8] in shown
    )
    assert plain("the partner paid one yuan more/less") in shown

    portal.approvals.agree(checker, request.id)
    assert service.open_breaks(op) == []
    with UnitOfWork(portal.engine) as uow:
        corrections = uow.session.exec(select(LedgerPosting).where(LedgerPosting.event == "correction")).all()
        total = uow.session.exec(select(func.sum(LedgerPosting.amount_fen))).one()
        bookings = our_bookings(uow, "alipay", keys=[("payout", broken["changed"][0])])
    assert total == 0 and len(corrections) == 2  # balanced, two postings, nothing edited
    assert {p.account for p in corrections} == {"payouts_settled", "reconciliation_differences"}
    (ours,) = bookings.values()
    assert ours.amount_fen == mismatch.theirs_fen  # our books now say what the partner moved

    with UnitOfWork(portal.engine) as uow:
        group_id = uow.session.get(Recovery, recovery_of(mismatch.reference, "payout")).group_id
    ledger = record_tables(portal.search.detail(op, group_id), Translator("zh-CN"))["detail.ledger"].to_string()
    assert "对账调整分录" in ledger and "event." not in ledger  # a correcting entry in words, never its key

    # the booking is audited with its money, on the recovery's own record (it was not)
    (entry_id,) = {p.entry_id for p in corrections}
    difference = mismatch.theirs_fen - mismatch.ours_fen
    audit = portal.search.detail(op, group_id).audit
    (booked,) = [a for a in audit if a.action == "ledger.correction"]
    assert booked.actor == checker.user_id and booked.subject == recovery_of(mismatch.reference, "payout")
    assert booked.detail["entry_id"] == entry_id and booked.detail["amount_fen"] == str(difference)
    assert booked.detail["break"] == mismatch.id and booked.detail["requested_by"] == op.user_id
    assert booked.detail["accounts"] == ", ".join(f"{p.account} {p.amount_fen:+d}" for p in corrections)
    with UnitOfWork(portal.engine) as uow:
        resolved = uow.session.exec(select(AuditRecord).where(AuditRecord.action == "break_resolved")).one()
    detail = json.loads(resolved.detail)
    assert (detail["entry_id"], detail["amount_fen"], detail["recovery_id"]) == (
        entry_id,
        str(difference),
        booked.subject,
    )


def test_a_break_that_moves_no_money_is_resolved_with_a_reason(portal, day_of_recoveries):
    op, service = day_of_recoveries
    data, _ = statement(portal, "alipay", today(portal), foreign=1)
    (foreign,) = service.reconcile(op, "alipay", data).breaks
    with pytest.raises(InputError):
        service.request_correction(op, foreign.id, "not ours")  # no entry of ours can fix it
    with pytest.raises(InputError):
        service.resolve(op, foreign.id, "because")  # not a reason on the list
    resolved = service.resolve(op, foreign.id, "not_ours", "another merchant's order")
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == ("resolved", "not_ours", op.user_id)
    with pytest.raises(BreakClosed):
        service.resolve(op, foreign.id, "not_ours")  # closed: once


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x00\x01\x02binary", "交易时间,金额\n`2026".encode("gbk"), b"\xff\xfe" * 50],
)
def test_a_malformed_statement_is_refused_and_nothing_is_stored(portal, day_of_recoveries, junk):
    op, service = day_of_recoveries
    with pytest.raises(InputError):
        service.reconcile(op, "wechat_pay", junk)
    with UnitOfWork(portal.engine) as uow:
        assert uow.session.exec(select(func.count()).select_from(StatementImport)).one() == 0


def test_only_operators_reconcile(portal, day_of_recoveries):
    _, service = day_of_recoveries
    data, _ = statement(portal, "alipay", today(portal))
    consumer = portal.consumer(50).who
    analyst = Principal(portal.identity.create_staff("analyst", "an.recon", PASSWORD), Role.ANALYST)
    for who in (consumer, analyst):
        with pytest.raises(NotAllowed):
            service.reconcile(who, "alipay", data)
        with pytest.raises(NotAllowed):
            service.open_breaks(who)
    with pytest.raises(InputError):
        service.reconcile(portal.operator("op.x"), "no_such_partner", data)


def test_the_command_line_writes_a_sandbox_statement_and_reconciles_it(monkeypatch, tmp_path, capsys):
    """The whole loop on the command line's own portal (a fresh SQLite file, the partners' books
    beside it): a recovery, the partner's statement of the day, the reconciliation as JSON."""
    services = cli_services(monkeypatch, tmp_path)
    services.identity.create_staff("operator", "op.cli", PASSWORD)
    verified_consumer(services, "13800138000")

    def run(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, *argv)

    code, _, err = run(
        "recover", "start", "--as-phone", "13800138000", "--channel", "alipay", "--amount", "200",
        "--payee", "me@example.com", "--accept-agreement", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "partners.sqlite3").exists()  # the sandbox partners kept their own books
    today = dt.datetime.now(SHANGHAI).date().isoformat()
    clean, broken = tmp_path / "clean.csv", tmp_path / "broken.csv"
    code, out, err = run("sandbox", "statement", "--partner", "alipay", "--date", today, "--out", str(clean), "--json")
    assert code == 0 and json.loads(out)["rows"] == 1, err

    code, out, err = run("reconcile", "--as", "op.cli", "--partner", "alipay", "--statement", str(clean), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["matched"], report["breaks"], report["stored"]) == (1, [], True)
    assert report["totals"]["ours_fen"] == report["totals"]["theirs_fen"] > 0
    code, out, _ = run("reconcile", "--as", "op.cli", "--partner", "alipay", "--statement", str(clean), "--json")
    assert json.loads(out)["stored"] is False

    code, out, _ = run("sandbox", "statement", "--partner", "alipay", "--date", today, "--out", str(broken),
                       "--missing", "1", "--json")  # fmt: skip
    (missing,) = json.loads(out)["broken"]["missing"]
    assert missing.startswith("rcv-")
    code, _, err = run("reconcile", "--as", "op.cli", "--partner", "alipay", "--statement", str(broken))
    assert code == 2 and len(err.strip().splitlines()) == 1  # no rows: which day it is must be said
    code, out, _ = run(
        "reconcile", "--as", "op.cli", "--partner", "alipay", "--statement", str(broken), "--date", today, "--json"
    )
    # the first statement listed it already: a row missing from a second file of the same day is no break
    assert json.loads(out)["breaks"] == [] and json.loads(out)["matched"] == 1

    code, _, err = run("reconcile", "--as", "op.cli", "--partner", "alipay", "--statement", str(tmp_path / "none"))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    (tmp_path / "junk.csv").write_bytes(b"\x00junk")
    code, _, err = run("reconcile", "--as", "op.cli", "--partner", "alipay", "--statement", str(tmp_path / "junk.csv"))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_mismatch_two_statements_report_is_corrected_once(portal, day_of_recoveries):
    """The partner sends a second file for the day (other bytes, the same rows): the same amount
    mismatch is a break of each import. Agreeing to both corrections moves the money once — the
    second finds our books already say what the partner moved, and only closes its break."""
    op, service = day_of_recoveries
    checker = portal.operator("op.checker2")
    day = today(portal)
    first_file, broken = statement(portal, "alipay", day, changed=1)
    second_file, _ = statement(portal, "alipay", day, changed=1, summary_off=1)
    first = next(b for b in service.reconcile(op, "alipay", first_file).breaks if b.kind == "amount_mismatch")
    second = next(b for b in service.reconcile(op, "alipay", second_file).breaks if b.kind == "amount_mismatch")
    assert first.reference == second.reference == broken["changed"][0] and first.id != second.id

    for mismatch in (first, second):
        portal.approvals.agree(checker, service.request_correction(op, mismatch.id, "the partner's amount").id)
    with UnitOfWork(portal.engine) as uow:
        (ours,) = our_bookings(uow, "alipay", keys=[("payout", first.reference)]).values()
        corrections = uow.session.exec(select(LedgerPosting).where(LedgerPosting.event == "correction")).all()
    assert ours.amount_fen == first.theirs_fen and len(corrections) == 2  # one entry, two postings
    assert all(b.kind != "amount_mismatch" for b in service.open_breaks(op))


def test_rows_of_two_kinds_under_one_reference_are_two_breaks(portal, day_of_recoveries):
    op, service = day_of_recoveries
    at = portal.clock().astimezone(SHANGHAI).replace(microsecond=0)
    rows = [
        StatementRow(at, "42000001", "OTHER-1", "debit", "success", 5_000),
        StatementRow(at, "42000002", "OTHER-1", "refund", "success", 5_000),
    ]
    report = service.reconcile(op, "carrier", write_statement(rows, dialect_for("carrier")))
    # (the day's own debits are missing from this statement too: not what this test is about)
    assert [(b.kind, b.reference) for b in report.breaks if b.reference == "OTHER-1"] == [
        ("missing_in_ledger", "OTHER-1")
    ] * 2


def test_a_summary_knob_that_would_go_below_zero_is_refused(portal, day_of_recoveries):
    with pytest.raises(InputError):
        statement(portal, "alipay", today(portal), summary_off=-(10**9))


def test_every_partners_statement_of_the_day_reconciles_and_a_record_we_never_booked_does_not(
    portal, day_of_recoveries
):
    """The simulation's reconciliation check (`statements_agree`) over a real day: every
    partner's statement agrees with our books; a payout the partner says it made that we never
    booked is named."""
    assert statements_agree(portal.rig) == []
    book = portal.rig.payouts.book
    book.record("alipay", "payout", "OTHER-MERCHANT-1", 12_300, "success", portal.clock.seconds())
    assert statements_agree(portal.rig) == [
        f"alipay {today(portal)}: missing_in_ledger OTHER-MERCHANT-1 ours=None theirs=12300"
    ]


@pytest.mark.parametrize("seed", range(8))
def test_the_fault_simulation_leaves_every_partners_statement_in_agreement_with_our_books(seed):
    from core.simulation.simulator import simulate

    result = simulate(seed, load_catalog(), recoveries=8, fault_rate=0.3)
    assert result.recoveries > 0 and result.violations == []


def stored_anything(portal: Portal) -> bool:
    with UnitOfWork(portal.engine) as uow:
        tables = (StatementImport, StatementLine, ReconciliationBreak)
        return any(uow.session.exec(select(func.count()).select_from(t)).one() for t in tables)


@pytest.mark.parametrize("when", ["0001-01-01 00:00:00", "9999-12-31 23:59:59", "1999-12-31 23:59:59"])
def test_a_row_dated_outside_the_days_a_statement_can_cover_is_refused_naming_its_line(portal, day_of_recoveries, when):
    """Before, year 1 overflowed turning the day into UTC (the page's error screen) and year 9999
    was stored as a business day."""
    op, service = day_of_recoveries
    data, _ = statement(portal, "wechat_pay", today(portal))
    lines = data.decode("utf-8").split("\r\n")
    lines[2] = "`" + when + lines[2][lines[2].index(",") :]  # the second row
    with pytest.raises(InputError) as refused:
        service.reconcile(op, "wechat_pay", "\r\n".join(lines).encode("utf-8"))
    first, last = service.statement_days()
    assert refused.value.key == "error.statement.date_range"
    assert refused.value.params["line"] == "3" and refused.value.params["value"] == when
    assert (first, last) == (dt.date(2000, 1, 1), today(portal) + dt.timedelta(days=1))
    for lang in ("en", "zh-CN"):
        shown = Translator(lang)(refused.value.key, **refused.value.params)
        assert "3" in shown and when in shown and str(last) in shown
    assert not stored_anything(portal)


@pytest.mark.parametrize("days", [-10_000, 2, 3_000_000])
def test_a_business_day_given_outside_the_days_a_statement_can_cover_is_refused(portal, day_of_recoveries, days):
    op, service = day_of_recoveries
    data, _ = statement(portal, "wechat_pay", today(portal))
    day = today(portal) + dt.timedelta(days=min(days, (dt.date.max - today(portal)).days))
    with pytest.raises(InputError) as refused:
        service.reconcile(op, "wechat_pay", data, day=day)
    assert refused.value.key == "error.reconcile.day_range"
    assert not stored_anything(portal)
    assert service.reconcile(op, "wechat_pay", data, day=today(portal) + dt.timedelta(days=1)).stored


@pytest.mark.parametrize(("partner", "uploaded_as"), [("wechat_pay", "carrier"), ("carrier", "alipay")])
def test_another_partners_statement_is_refused_naming_the_line_and_nothing_is_stored(
    portal, day_of_recoveries, partner, uploaded_as
):
    """WeChat Pay's statement uploaded as the carrier's was stored and made false breaks."""
    op, service = day_of_recoveries
    data, _ = statement(portal, partner, today(portal))
    data = write_statement(read_statement(partner, data).rows, dialect_for(uploaded_as))  # in the other's dialect
    with pytest.raises(InputError) as refused:
        service.reconcile(op, uploaded_as, data)
    assert refused.value.key == "error.statement.foreign_kind" and refused.value.params["line"] != "0"
    shown = Translator("zh-CN")(refused.value.key, **refused.value.params)
    assert f"第 {refused.value.params['line']} 行" in shown and "另一个合作方" in shown
    assert not stored_anything(portal)
