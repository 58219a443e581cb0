"""The deny list as operators keep it, on SQLite and PostgreSQL: adding is audited without the
value; removing takes a second operator (never the one who asked, one request at a time, lapsing
after a day); what is shown is masked. And `deny remove` on the command line asks, `review agree`
removes."""

from __future__ import annotations

import json

import pytest

from core.cli import main
from core.domain.access import NotAllowed
from core.domain.recovery import RecoveryState
from core.domain.review import RequestStatus
from core.errors import InputError
from core.persistence.tables import DenyEntry
from core.services.audit import verify_audit_chain
from core.services.console.approvals import DuplicateRequest, RequestClosed, SameOperator
from core.services.risk import NotDenied, deny_ref
from tests.support.console import Console, build_console
from tests.support.db import count, database_url
from tests.support.portal import PASSWORD, PAYEE

NUMBER = "13800130001"


@pytest.fixture
def console(engine) -> Console:
    return build_console(engine)


def _everything_audited(console: Console) -> str:
    return " ".join(f"{r.actor} {r.action} {r.subject} {r.detail}" for r in console.records())


@pytest.mark.parametrize(("kind", "value", "shown"), [("number", NUMBER, "138****0001"), ("payee", PAYEE, None)])
def test_adding_an_entry_is_audited_with_the_kind_and_reason_but_never_the_value(console, kind, value, shown):
    op = console.member("operator", "op.deny")

    entry = console.deny_list.add(op, kind, value, "  reported   as stolen ")

    assert (entry.kind, entry.reason, entry.added_by) == (kind, "reported as stolen", "op.deny")
    assert entry.display == (shown or entry.key.split(":")[1][:12] + "…")
    (record,) = console.records("deny.add")
    assert (record.actor, record.subject) == (op.user_id, deny_ref(entry.key))
    assert json.loads(record.detail) == {"kind": kind, "display": entry.display, "reason": "reported as stolen"}
    assert value not in _everything_audited(console) and value.split("@")[0] not in _everything_audited(console)
    assert [(e.kind, e.display, e.reason) for e in console.deny_list.entries(op)] == [
        (kind, entry.display, "reported as stolen")
    ]
    assert verify_audit_chain(console.engine)[1] is None


def test_adding_what_is_on_the_list_already_changes_nothing(console):
    op = console.member("operator", "op.twice")
    first = console.deny_list.add(op, "number", NUMBER, "reported as stolen")
    again = console.deny_list.add(op, "number", "+86 138-0013-0001", "reported again")
    assert again.key == first.key and again.reason == "reported as stolen"
    assert count(console.engine, DenyEntry) == 1 and len(console.records("deny.add")) == 1


def test_a_chinese_reason_of_200_characters_fits_the_audit_record(console):
    op = console.member("operator", "op.zh")
    console.deny_list.add(op, "payee", PAYEE, "被盗" * 100)
    (record,) = console.records("deny.add")
    assert json.loads(record.detail)["reason"] == "被盗" * 100


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("user", "00000000-0000-4000-8000-000000000000", "no such account"),
        ("user", "alice", "not an id"),
        ("number", "12345", "not a number"),
        ("device", "abc", "not an index"),
        ("ip", "1.2.3.4", "not a kind"),
        ("payee", PAYEE, "no"),
        ("payee", PAYEE, "\x00\x1b\u202e"),  # nothing readable once control characters go
        ("payee", PAYEE, "x" * 201),
        ("payee", "", "nothing to deny"),
    ],
)
def test_unusable_input_is_refused_and_changes_nothing(console, kind, value, reason):
    op = console.member("operator", "op.refused")
    before = len(console.records())
    with pytest.raises(InputError):
        console.deny_list.add(op, kind, value, reason)
    assert count(console.engine, DenyEntry) == 0 and len(console.records()) == before


def test_a_removal_takes_a_second_operator_and_is_audited_with_both(console):
    maker, checker, third = (console.member("operator", f"op.{n}") for n in ("maker", "checker", "third"))
    entry = console.deny_list.add(maker, "number", NUMBER, "reported as stolen")

    request = console.deny_list.request_removal(maker, entry.key, "owner proved it is theirs")

    (listed,) = console.deny_list.entries(checker)
    assert listed.removal is not None and listed.removal.id == request.id and listed.removal.requested_by == "op.maker"
    assert [r.id for r in console.deny_list.pending(third)] == [request.id]
    assert NUMBER not in json.dumps(request.detail) and request.detail["display"] == "138****0001"
    with pytest.raises(SameOperator):
        console.deny_list.agree(maker, request.id)
    with pytest.raises(DuplicateRequest):
        console.deny_list.request_removal(third, entry.key, "asking a second time")
    assert count(console.engine, DenyEntry) == 1

    removed = console.deny_list.agree(checker, request.id)

    assert removed.key == entry.key and count(console.engine, DenyEntry) == 0
    (record,) = console.records("deny.remove")
    assert (record.actor, record.subject) == (checker.user_id, entry.ref)
    detail = json.loads(record.detail)
    assert (detail["maker"], detail["checker"], detail["display"]) == (maker.user_id, checker.user_id, "138****0001")
    assert NUMBER not in _everything_audited(console)
    assert console.portal.approvals.get(checker, request.id).status is RequestStatus.DONE
    with pytest.raises(RequestClosed):
        console.deny_list.agree(third, request.id)


def test_the_entry_stays_when_the_second_operator_refuses_or_the_maker_withdraws(console):
    maker, checker = console.member("operator", "op.m"), console.member("operator", "op.c")
    entry = console.deny_list.add(maker, "payee", PAYEE, "reported as stolen")
    refused = console.deny_list.request_removal(maker, entry.key, "owner called")
    console.deny_list.refuse(checker, refused.id)
    withdrawn = console.deny_list.request_removal(maker, entry.key, "owner called again")
    console.deny_list.refuse(maker, withdrawn.id)
    assert count(console.engine, DenyEntry) == 1 and console.deny_list.pending(checker) == []


def test_a_removal_nobody_agrees_to_lapses_after_a_day(console):
    maker, checker = console.member("operator", "op.lm"), console.member("operator", "op.lc")
    entry = console.deny_list.add(maker, "number", NUMBER, "reported as stolen")
    request = console.deny_list.request_removal(maker, entry.key, "owner proved it")
    console.portal.advance(hours=24, seconds=1)

    with pytest.raises(RequestClosed):
        console.deny_list.agree(checker, request.id)

    assert count(console.engine, DenyEntry) == 1
    assert console.deny_list.entries(checker)[0].removal is None
    again = console.deny_list.request_removal(maker, entry.key, "asking again")  # a lapsed one can be asked again
    console.deny_list.agree(checker, again.id)
    assert count(console.engine, DenyEntry) == 0


def test_removing_what_is_not_on_the_list_is_refused(console):
    op = console.member("operator", "op.none")
    with pytest.raises(NotDenied):
        console.deny_list.request_removal(op, "number:" + "0" * 64, "not there")
    with pytest.raises(NotDenied):
        console.deny_list.request_removal_of(op, "payee", PAYEE, "not there")


def test_the_risk_service_never_removes_on_one_operators_word(console):
    op = console.member("operator", "op.alone")
    entry = console.deny_list.add(op, "payee", PAYEE, "reported as stolen")
    with pytest.raises(NotAllowed):
        console.portal.risk.allow(op, op, entry.key)
    assert count(console.engine, DenyEntry) == 1


def test_after_an_agreed_removal_the_number_recovers_again(console):
    portal = console.portal
    alice = portal.consumer(1, balance_fen=20_000)
    maker, checker = console.member("operator", "op.rm"), console.member("operator", "op.rc")
    entry = console.deny_list.add(maker, "number", alice.phone, "reported as stolen")
    assert portal.recover(alice).state is RecoveryState.REJECTED
    console.deny_list.agree(checker, console.deny_list.request_removal(maker, entry.key, "owner proved it").id)
    assert portal.recover(alice).state is RecoveryState.DEBITING


def test_deny_remove_on_the_command_line_asks_and_review_agree_removes(console, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url(console.engine))
    monkeypatch.setenv("PORTAL_SECRETS_FILE", str(tmp_path / "secrets.json"))
    identity = console.portal.identity
    identity.create_staff("operator", "cli.maker", PASSWORD)
    identity.create_staff("operator", "cli.checker", PASSWORD)
    common = ("--kind", "number", "--value", NUMBER)

    assert main(["deny", "add", "--as", "cli.maker", *common, "--reason", "reported as stolen"]) == 0
    assert main(["--lang", "en", "deny", "remove", "--as", "cli.maker", *common, "--reason", "owner proved it"]) == 0
    out = capsys.readouterr().out
    request = out.split("Request ")[1].split(":")[0]
    assert main(["--lang", "en", "deny", "list", "--as", "cli.checker"]) == 0
    listed = capsys.readouterr().out
    assert "138****0001" in listed and request in listed and NUMBER not in listed
    assert main(["deny", "list", "--as", "cli.checker", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["kind"], row["value"], row["removal_request"]) == ("number", "138****0001", request)
    assert row["added_by"] == "cli.maker" and row["reason"] == "reported as stolen" and NUMBER not in json.dumps(row)
    assert main(["review", "agree", request, "--as", "cli.maker"]) == 2  # not the one who asked
    assert count(console.engine, DenyEntry) == 1
    capsys.readouterr()

    assert main(["--lang", "en", "review", "agree", request, "--as", "cli.checker"]) == 0

    assert request in capsys.readouterr().out and count(console.engine, DenyEntry) == 0


def test_a_full_number_typed_into_a_reason_is_kept_masked_everywhere_it_is_read(console):
    """A reason is read by every operator (the list, a removal request, the audit chain): a number
    typed into it was shown in full beside its own masked form."""
    maker = console.member("operator", "op.typist")
    entry = console.deny_list.add(maker, "payee", PAYEE, "consumer 13800138000 says \x1b[31mstolen")
    (listed,) = console.deny_list.entries(maker)
    assert listed.reason == "consumer 138****8000 says [31mstolen"
    request = console.deny_list.request_removal(maker, entry.key, "owner of +86 139 1234 5678? no: 13912345678")
    assert request.detail["note"] == "owner of +86 139 1234 5678? no: 139****5678"
    assert "13800138000" not in str(console.records()) and "13912345678" not in str(console.records())
