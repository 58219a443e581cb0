"""Recoveries on SQLite and PostgreSQL: idempotent submission under concurrency, and each state
change committed with its ledger entry, audit record and outbox message."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session, func, select

from core.domain.audit import first_broken
from core.domain.recovery import IllegalTransition, RecoveryEvent, RecoveryState
from core.persistence.tables import AuditRecord, LedgerPosting, OutboxMessage, Recovery, RecoveryTransition, User
from core.services.identity import NotAllowed, Principal
from core.services.recovery import IdempotencyConflict, RecoveryService, SubmitRequest

E = RecoveryEvent
REQUEST = SubmitRequest("alipay", "n" * 64, debit_fen=50_000, fee_fen=1_250)


@pytest.fixture
def users(engine):
    with Session(engine) as session:
        alice, bob = User(role="consumer"), User(role="consumer")
        session.add_all([alice, bob])
        session.commit()
        return Principal(alice.id, "consumer"), Principal(bob.id, "consumer")


@pytest.fixture
def recoveries(engine, clock):
    return RecoveryService(engine, clock=clock)


def count(engine, table) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_200_keys_submitted_8_times_at_once_make_200_recoveries(engine, recoveries, users):
    alice, _ = users
    keys = [f"key-{i:04d}-xyz" for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        views = list(pool.map(lambda k: recoveries.submit(alice, k, REQUEST), [k for k in keys for _ in range(8)]))
    assert count(engine, Recovery) == 200
    assert sum(v.created for v in views) == 200
    by_key: dict[str, set[str]] = {}
    for key, view in zip([k for k in keys for _ in range(8)], views, strict=True):
        by_key.setdefault(key, set()).add(view.id)
    assert all(len(ids) == 1 for ids in by_key.values())  # every duplicate got the first result


def test_a_key_reused_for_another_request_is_refused(recoveries, users):
    alice, _ = users
    recoveries.submit(alice, "key-00000001", REQUEST)
    with pytest.raises(IdempotencyConflict):
        recoveries.submit(alice, "key-00000001", SubmitRequest("alipay", "n" * 64, debit_fen=40_000, fee_fen=1_000))


def test_keys_are_scoped_to_the_user(engine, recoveries, users):
    alice, bob = users
    assert recoveries.submit(alice, "key-00000001", REQUEST).id != recoveries.submit(bob, "key-00000001", REQUEST).id


def test_each_change_commits_its_entry_audit_record_and_next_call_together(engine, recoveries, users):
    alice, _ = users
    rid = recoveries.submit(alice, "key-00000001", REQUEST).id
    for event in (E.APPROVE, E.START_DEBIT, E.DEBIT_CONFIRMED, E.START_PAYOUT, E.PAYOUT_CONFIRMED):
        recoveries.apply("worker", rid, event)
    with Session(engine) as session:
        assert session.get(Recovery, rid).state == RecoveryState.PAID.value
        postings = session.exec(select(LedgerPosting)).all()
        by_entry: dict[str, int] = {}
        for posting in postings:
            by_entry[posting.entry_id] = by_entry.get(posting.entry_id, 0) + posting.amount_fen
        assert len(by_entry) == 3 and all(total == 0 for total in by_entry.values())
        assert sorted(m.kind for m in session.exec(select(OutboxMessage)).all()) == ["carrier_debit", "payout"]
        assert len(session.exec(select(RecoveryTransition)).all()) == 5
        chain = session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()
    rows = [
        (
            {"actor": r.actor, "action": r.action, "subject": r.subject, "detail": json.loads(r.detail)},
            r.previous_hash,
            r.hash,
        )
        for r in chain
    ]
    assert len(rows) == 6 and first_broken(rows) is None


def test_an_illegal_change_is_refused_and_changes_nothing(engine, recoveries, users):
    alice, _ = users
    rid = recoveries.submit(alice, "key-00000001", REQUEST).id
    before = count(engine, AuditRecord)
    with pytest.raises(IllegalTransition):
        recoveries.apply("worker", rid, E.PAYOUT_CONFIRMED)
    assert count(engine, AuditRecord) == before and count(engine, LedgerPosting) == 0


def test_a_consumer_cannot_touch_another_consumers_recovery(recoveries, users):
    alice, bob = users
    rid = recoveries.submit(alice, "key-00000001", REQUEST).id
    with pytest.raises(NotAllowed):
        recoveries.apply(bob, rid, E.CANCEL)
    assert recoveries.apply(alice, rid, E.CANCEL).state is RecoveryState.CANCELLED


def test_audit_verify_names_the_first_altered_record(engine, recoveries, users):
    from core.services.recovery import verify_audit_chain

    alice, _ = users
    rid = recoveries.submit(alice, "key-00000001", REQUEST).id
    for event in (E.APPROVE, E.START_DEBIT, E.DEBIT_CONFIRMED):
        recoveries.apply("worker", rid, event)
    assert verify_audit_chain(engine) == (4, None)
    with Session(engine) as session:
        third = session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()[2]
        third.actor = "someone-else"
        session.add(third)
        session.commit()
        seq = third.seq
    assert verify_audit_chain(engine) == (4, seq)
