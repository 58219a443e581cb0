"""A submission writes its transactions as plain rows at commit and answers with a view built
from them (nothing is read back); the risk rules read their facts in one statement. Both must
be exactly what reading the database back says, on both databases."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from core.config import Settings
from core.domain.access import Role
from core.domain.recovery import RecoveryState
from core.domain.risk import Assessment, Decision, Past, RiskReason
from core.persistence.tables import DenyEntry, Recovery, RecoveryTransition, User, new_id
from core.persistence.uow import UnitOfWork
from core.reference_data import load_catalog
from core.services.audit import verify_audit_chain
from core.services.recovery.views import RecoveryRequest
from core.services.risk import NOT_COUNTED, Subject, read_facts
from core.simulation.rig import Rig, SimClock, build_rig
from tests.support.db import all_rows
from tests.support.people import mobile

CATALOG = load_catalog(Settings().data_dir / "channels.json")
NOW = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)


class Decides:
    """Risk control that gives one fixed assessment."""

    def __init__(self, assessment: Assessment) -> None:
        self.assessment = assessment

    def device_index(self, descriptor: str) -> str:
        return ""

    def payee_index(self, payee: str) -> str:
        return ""

    def assess(self, uow: UnitOfWork, subject: Subject, amount_fen: int, now: dt.datetime, **_: Any) -> Assessment:
        return self.assessment


@pytest.fixture
def rig(engine) -> Rig:
    clock = SimClock()
    return build_rig(engine, CATALOG, clock=clock, seconds=clock.seconds)


REASON = RiskReason("velocity_user", Decision.REVIEW, "risk.velocity_user", {"count": 3})
DECISIONS = [
    (Assessment(Decision.APPROVE, ()), RecoveryState.DEBITING, ""),
    (Assessment(Decision.REVIEW, (REASON,)), RecoveryState.REVIEW, ""),
    (Assessment(Decision.REJECT, (dataclasses.replace(REASON, decision=Decision.REJECT),)), RecoveryState.REJECTED,
     "risk: velocity_user"),
]  # fmt: skip


@pytest.mark.parametrize(("assessment", "state", "reason"), DECISIONS)
@pytest.mark.parametrize("amount_fen", [5_000, 120_000])  # one transaction; three linked ones
def test_the_view_a_submission_answers_with_is_the_recovery_as_read_back(rig, engine, assessment, state, reason,
                                                                         amount_fen):  # fmt: skip
    phone = mobile(1)
    caller = rig.consumer(phone)
    rig.recoveries.risk = Decides(assessment)
    view = rig.recoveries.submit(caller, "key-00000001", RecoveryRequest("alipay", phone, amount_fen, "a@example.com"))
    assert view.created and view.risk == assessment
    assert all(p.state is state and p.reason == reason for p in view.parts)
    assert dataclasses.replace(view, created=False) == rig.recoveries.get(caller, view.id)
    again = rig.recoveries.submit(caller, "key-00000001", RecoveryRequest("alipay", phone, amount_fen, "a@example.com"))
    assert again == dataclasses.replace(view, created=False)  # a retry answers the first
    rows = sorted(all_rows(engine, Recovery, col(Recovery.group_id) == view.id), key=lambda r: r.part)
    assert [r.id for r in rows] == [p.id for p in view.parts]
    for row in rows:
        assert (row.state, row.reason, row.carrier) == (state.value, reason, "china_mobile")
        assert row.updated_at == row.created_at == rig.clock()
        assert rig.recoveries.secrets_of(row) == (phone, "a@example.com")
    moves = all_rows(engine, RecoveryTransition, col(RecoveryTransition.recovery_id).in_([r.id for r in rows]))
    assert len(moves) == len(rows) * (2 if state is RecoveryState.DEBITING else 1)
    assert verify_audit_chain(engine)[1] is None


# --- the risk rules' facts --------------------------------------------------------------------------


def ordered(history: Any) -> list[Past]:
    return sorted(history, key=lambda past: (past.at, past.amount_fen))


def facts_as_read_before(uow: UnitOfWork, subject: Subject, since: dt.datetime) -> tuple[Any, ...]:
    """The facts as the ORM queries, one a fact, read them (the reference)."""

    def history(who: Any) -> list[Past]:
        rows = uow.session.exec(
            select(func.min(Recovery.created_at), func.sum(Recovery.debit_fen))
            .where(who, col(Recovery.created_at) >= since, col(Recovery.state).not_in(NOT_COUNTED))
            .group_by(Recovery.group_id)
        ).all()
        return ordered(Past(at, int(amount)) for at, amount in rows)

    keys = {f"user:{subject.user_id}": "user", f"number:{subject.number_index}": "number"}
    keys[f"payee:{subject.payee_index}"] = "payee"
    if subject.device_index:
        keys[f"device:{subject.device_index}"] = "device"
    found = uow.session.exec(select(DenyEntry.key).where(col(DenyEntry.key).in_(list(keys)))).all()
    users_of_number = uow.session.exec(
        select(Recovery.user_id).where(col(Recovery.number_index) == subject.number_index)
    ).all()
    owner_denied = any(uow.session.get(DenyEntry, f"user:{user_id}") is not None for user_id in users_of_number)
    user = uow.session.get(User, subject.user_id)
    return (
        user.created_at if user is not None else None,
        history(col(Recovery.user_id) == subject.user_id),
        history(col(Recovery.number_index) == subject.number_index),
        history(col(Recovery.device_index) == subject.device_index) if subject.device_index else [],
        frozenset(keys[key] for key in found) | ({"user_number"} if owner_denied else set()),
    )


def recovery(user_id: str, number: str, device: str, state: str, at: dt.datetime, amount: int, group: str) -> Recovery:
    return Recovery(
        id=new_id(), group_id=group, user_id=user_id, idempotency_key=new_id()[:20], request_hash="h", state=state,
        channel_id="alipay", number_index=number, number_cipher=b"", masked_number="138****0000", payee_cipher=b"",
        debit_fen=amount, fee_fen=0, device_index=device, created_at=at, updated_at=at,
    )  # fmt: skip


def test_the_risk_facts_read_in_one_statement_are_the_facts_read_one_by_one(engine):
    since = NOW - dt.timedelta(hours=24)
    with UnitOfWork(engine) as uow:
        users = [User(role=Role.CONSUMER, created_at=NOW - dt.timedelta(days=i)) for i in range(3)]
        uow.session.add_all(users)
        uow.session.flush()
        states = ["paid", "cancelled", "rejected", "review", "debiting", "refunded"]
        for i in range(60):
            user, at = users[i % 3].id, NOW - dt.timedelta(hours=i * 0.7)
            group = new_id()
            for part in range(1 + i % 2):  # some split into two linked parts
                row = recovery(user, f"n{i % 4}", f"d{i % 5}" if i % 3 else "", states[i % 6], at, 1_000 + i, group)
                row.part, row.idempotency_key = part + 1, f"k{i}"
                uow.session.add(row)
        for key in (f"user:{users[0].id}", "number:n1", "payee:p0", "device:d2", "device:d9"):
            uow.session.add(DenyEntry(key=key, kind=key.split(":")[0], reason="test", added_by=users[2].id))
        uow.commit()
    subjects = [
        Subject(users[0].id, "n1", "d2", "p0"),
        Subject(users[1].id, "n0", "", "p1"),
        Subject(users[2].id, "n3", "d4", "p0"),
        Subject("no-such-user", "n9", "d9", "p9"),
    ]
    seen = 0
    with UnitOfWork(engine) as uow:
        for subject in subjects:
            created, by_user, by_number, by_device, denied = facts_as_read_before(uow, subject, since)
            facts = read_facts(uow, subject, since)
            assert facts.account_created_at == created
            assert ordered(facts.history["user"]) == by_user
            assert ordered(facts.history["number"]) == by_number
            assert ordered(facts.history["device"]) == by_device
            assert facts.denied == denied
            seen += bool(by_user) + bool(by_number) + bool(by_device)
    assert seen >= 6  # the histories compared are not all empty
    assert by_user == [] and denied == {"device"}  # the last subject: no account, its device denied


def test_a_decision_on_a_subject_with_history_is_the_same_as_the_rules_on_its_facts(portal):
    """Through the portal's own risk control: a denied payee is refused, with the reason kept."""
    c = portal.consumer(1)
    portal.risk.deny(portal.operator("risk-op"), "payee", "blocked@example.com", "fraud reported")
    view = portal.recover(c, payee="blocked@example.com")
    assert view.state is RecoveryState.REJECTED
    assert view.risk is not None and view.risk.decision is Decision.REJECT
    assert any(r.rule == "deny_list" for r in view.risk.reasons)
    assert dataclasses.replace(view, created=False) == portal.recoveries.get(c.who, view.id)
