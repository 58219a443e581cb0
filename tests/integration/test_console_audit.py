"""The audit trail as operators and admins read it, on SQLite and PostgreSQL: the chain verified
on demand (naming the first broken record), searched by subject and/or actor fifty a page, newest
first, and exported as CSV — masked, and itself audited."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text

from core.errors import InputError
from core.persistence.uow import UnitOfWork
from core.services.audit import PAGE_SIZE, AuditLog
from tests.support.console import Console, build_console


@pytest.fixture
def console(engine) -> Console:
    return build_console(engine)


def _append(console: Console, records: list[tuple[str, str, str, dict[str, str]]]) -> None:
    with UnitOfWork(console.engine) as uow:
        for actor, action, subject, detail in records:
            AuditLog(console.portal.clock).append(uow, actor, action, subject, detail)
        uow.commit()


def test_verifying_names_the_first_broken_record(console):
    op = console.member("operator", "op.verify")
    _append(console, [(op.user_id, "test.step", f"subject-{i}", {"i": str(i)}) for i in range(5)])
    assert console.audit.verify(op).broken is None and console.audit.verify(op).checked == 5

    third = console.records()[2].seq
    with console.engine.begin() as db:
        db.execute(text("UPDATE audit_records SET detail = :d WHERE seq = :s"), {"d": '{"i": "9"}', "s": third})

    check = console.audit.verify(op)
    assert (check.checked, check.broken) == (5, third)


def test_a_search_by_subject_and_actor_pages_newest_first(console):
    op = console.member("operator", "op.search")
    other = console.member("operator", "op.other")
    _append(console, [(op.user_id, "test.step", f"case-{i:03d}", {"i": str(i)}) for i in range(120)])
    _append(console, [(other.user_id, "test.step", "case-999", {}), ("worker", "debit", "case-500", {})])

    first = console.audit.search(op, actor="op.search")
    second = console.audit.search(op, actor=op.user_id, page=1)
    last = console.audit.search(op, actor="op.search", page=2)

    assert [len(p.entries) for p in (first, second, last)] == [PAGE_SIZE, PAGE_SIZE, 20]
    assert [p.has_next for p in (first, second, last)] == [True, True, False]
    seqs = [e.seq for p in (first, second, last) for e in p.entries]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 120
    assert first.entries[0].subject == "case-119" and first.entries[0].actor == "op.search"
    assert first.entries[0].actor_id == op.user_id and first.entries[0].detail == {"i": "119"}

    by_subject = console.audit.search(op, subject="case-01")
    assert [e.subject for e in by_subject.entries] == [f"case-{i:03d}" for i in range(19, 9, -1)]
    assert [e.subject for e in console.audit.search(op, subject="case-9", actor="op.other").entries] == ["case-999"]
    assert [e.actor for e in console.audit.search(op, actor="worker").entries] == ["worker"]
    assert console.audit.search(op, subject="case_%").entries == ()  # wildcards are plain characters
    assert console.audit.search(op, actor="nobody").entries == ()


def test_the_export_is_the_search_masked_as_csv_and_is_itself_audited(console):
    admin = console.member("admin", "admin.export")
    _append(
        console,
        [
            (admin.user_id, "test.note", "case-1", {"said": "called 13800138000 back", "id": "1390013900012345"}),
            (admin.user_id, "test.note", "case-2", {"said": '=HYPERLINK("http://x")'}),
            ("worker", "debit", "other", {}),
        ],
    )

    exported = console.audit.export(admin, subject="case-")

    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["subject"] for r in rows] == ["case-2", "case-1"]
    assert "13800138000" not in exported and "138****8000" in exported
    assert json.loads(rows[1]["detail"])["id"] == "1390013900012345"  # an id is not a number
    assert rows[0]["detail"].startswith("{") and rows[0]["actor"] == "admin.export"
    (record,) = console.records("audit.export")
    assert record.actor == admin.user_id
    assert json.loads(record.detail) == {"subject": "case-", "actor": "", "rows": "2"}


def test_a_formula_is_never_a_cell_a_spreadsheet_runs(console):
    op = console.member("operator", "op.csv")
    _append(console, [(op.user_id, "test.note", "=cmd|' /C calc'!A0", {})])
    (row,) = list(csv.DictReader(io.StringIO(console.audit.export(op, subject="=cmd"))))
    assert row["subject"].startswith("'=")


def test_a_searched_number_is_masked_in_the_exports_record(console):
    op = console.member("operator", "op.mask")
    console.audit.export(op, subject="13800138000")
    (record,) = console.records("audit.export")
    assert "13800138000" not in record.detail


@pytest.mark.parametrize("what", [{"subject": "a\x00b"}, {"actor": "x" * 81}, {"subject": "line\nbreak"}])
def test_an_unusable_search_is_refused_and_exports_nothing(console, what):
    op = console.member("operator", "op.bad")
    with pytest.raises(InputError):
        console.audit.search(op, **what)
    with pytest.raises(InputError):
        console.audit.export(op, **what)
    assert console.records("audit.export") == []
    with pytest.raises(InputError):
        console.audit.search(op, page=-1)
