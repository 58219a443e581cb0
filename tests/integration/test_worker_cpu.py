"""The worker's hot path runs its statements compiled once, on the DBAPI cursor
(`core.persistence.uow.Prepared`, `run`, `run_many`), and `settle` in a unit of work without an
ORM session (`UnitOfWork(orm=False)`). What they write and return is what SQLAlchemy's own
execution writes and returns, the engine's cursor listeners still see every statement, and a
driver error is still SQLAlchemy's; on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, event, exc, insert, select, update

from core.config import Settings
from core.domain.recovery import RecoveryEvent, RecoveryState
from core.persistence.tables import OutboxMessage, Recovery, User
from core.persistence.uow import Prepared, UnitOfWork, run, run_many
from core.reference_data import load_catalog
from core.services.recovery.views import RecoveryRequest
from core.services.recovery_worker import _claim_statement
from core.simulation.rig import SimClock, build_rig
from tests.support.people import mobile

_USERS = User.__table__  # type: ignore[attr-defined]
CATALOG = load_catalog(Settings().data_dir / "channels.json")
NOW = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)
BEIJING = dt.timezone(dt.timedelta(hours=8))


def _users(engine, prefix: str) -> list[tuple[object, ...]]:
    query = select(_USERS.c.id, _USERS.c.role, _USERS.c.created_at, _USERS.c.deleted_at).where(
        _USERS.c.id.like(f"{prefix}%")
    )
    with engine.connect() as connection:
        return [(id_[len(prefix) :], *rest) for id_, *rest in connection.execute(query.order_by(_USERS.c.id))]


def _user(i: int, prefix: str) -> dict[str, object]:
    at = NOW + dt.timedelta(minutes=i, microseconds=7 * i)
    return {"id": f"{prefix}{i}", "role": "consumer", "created_at": at.astimezone(BEIJING), "deleted_at": None}


def test_batched_rows_are_written_as_sqlalchemy_writes_them(engine):
    with engine.begin() as connection:
        connection.execute(insert(_USERS), [_user(i, "core-") for i in range(3)])
    for orm in (True, False):
        prefix = f"uow-{orm}-"
        with UnitOfWork(engine, batched=True, orm=orm) as uow:
            for i in range(3):
                uow.write(_USERS, _user(i, prefix))
            assert _users(engine, prefix) == []  # nothing before commit
            uow.commit()
        assert _users(engine, prefix) == _users(engine, "core-")
    with UnitOfWork(engine) as uow:  # one row at once, not batched
        uow.write(_USERS, _user(0, "now-"))
        uow.commit()
    assert _users(engine, "now-") == _users(engine, "core-")[:1]


def test_a_unit_of_work_without_the_orm_rolls_back_unless_committed_and_has_no_session(engine):
    with UnitOfWork(engine, batched=False, orm=False) as uow:
        uow.write(_USERS, _user(0, "gone-"))
        with pytest.raises(RuntimeError):
            uow.session  # noqa: B018
    assert _users(engine, "gone-") == []


def test_prepared_statements_are_seen_by_the_cursor_listeners_and_fail_as_sqlalchemy(engine):
    seen: list[tuple[str, bool]] = []

    def listen(connection, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement.split()[0], executemany))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        rename = Prepared(update(_USERS).where(_USERS.c.id == bindparam("who")).values(role=bindparam("role")))
        with engine.begin() as connection:
            run_many(
                connection,
                Prepared(insert(_USERS).inline(), columns=list(_user(0, ""))),
                [_user(0, "p-"), _user(1, "p-")],
            )
            assert run(connection, rename, {"who": "p-1", "role": "operator"}) == []
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert [s for s in seen if s[0] != "BEGIN"] == [("INSERT", True), ("UPDATE", False)]
    assert [row[1] for row in _users(engine, "p-")] == ["consumer", "operator"]
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        run_many(connection, Prepared(insert(_USERS).inline(), columns=list(_user(0, ""))), [_user(0, "p-")])


def test_a_cursor_listener_on_one_connection_alone_sees_its_prepared_statements(engine):
    """The engine has none: the connection's own listener is still found (and only there)."""
    seen: list[str] = []

    def listen(connection, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.split()[0])

    rename = Prepared(update(_USERS).where(_USERS.c.id == bindparam("who")).values(role=bindparam("role")))
    with engine.connect() as connection:
        event.listen(connection, "after_cursor_execute", listen)
        with connection.begin():
            run(connection, rename, {"who": "nobody", "role": "operator"})
    with engine.begin() as connection:
        run(connection, rename, {"who": "nobody", "role": "operator"})
    assert seen.count("UPDATE") == 1


def test_the_claim_returns_what_sqlalchemys_own_execution_of_it_returns(engine):
    """The claim (a list parameter, RETURNING; on PostgreSQL SKIP LOCKED) run both ways on the
    same outbox, each in a transaction that rolls back."""
    clock = SimClock()
    rig = build_rig(engine, CATALOG, clock=clock, seconds=clock.seconds)
    for i in range(4):
        phone = mobile(i)
        rig.recoveries.submit(rig.consumer(phone), f"key-{i:08d}", RecoveryRequest("alipay", phone, 5_000, "a@b.cn"))
    claiming = _claim_statement(engine.dialect.name)
    answers: dict[str, list[object]] = {"core": [], "prepared": []}
    for how, found in answers.items():
        for mine in ([], [1], [1, 2, 3]):
            params = {"now": clock(), "most": 2, "lease_until": clock() + dt.timedelta(seconds=30), "worker": "w",
                      "mine": mine}  # fmt: skip
            with engine.connect() as connection, connection.begin() as transaction:
                if how == "core":
                    found.append([tuple(r) for r in connection.execute(claiming._statement, params)])
                else:
                    found.append(run(connection, claiming, params))
                transaction.rollback()
    assert answers["core"] == answers["prepared"]
    assert [len(f) for f in answers["core"]] == [2, 2, 1]
    assert answers["core"][0][0][:3] == (1, 1, "carrier_debit")  # seq, attempt, kind


def test_a_unit_of_work_without_the_orm_goes_on_in_a_new_transaction_after_a_commit(engine):
    with UnitOfWork(engine, orm=False) as uow:
        uow.write(_USERS, _user(0, "twice-"))
        uow.commit()
        uow.write(_USERS, _user(1, "twice-"))
        uow.commit()
        uow.write(_USERS, _user(2, "twice-"))  # not committed: rolled back on leaving
    assert [row[0] for row in _users(engine, "twice-")] == ["0", "1"]


def test_an_answer_recorded_under_a_claim_that_ran_out_changes_nothing(engine):
    """`settle` closes the call's message and checks the claim in one statement: a worker whose
    lease ran out while another took the message records nothing (its close is undone), and the
    worker holding the claim now records its answer once."""
    clock = SimClock()
    rig = build_rig(engine, CATALOG, clock=clock, seconds=clock.seconds)
    phone = mobile(1)
    view = rig.recoveries.submit(rig.consumer(phone), "key-00000001", RecoveryRequest("alipay", phone, 5_000, "a@b.cn"))
    first, second = rig.worker(lease_s=30.0), rig.worker(lease_s=30.0)
    late = first.claim()
    clock.advance_to(clock() + dt.timedelta(seconds=31))  # the first worker's lease runs out
    current = second.claim()
    assert late is not None and current is not None and (late.seq, late.attempt + 1) == (current.seq, current.attempt)
    confirmed = (RecoveryEvent.DEBIT_CONFIRMED, RecoveryEvent.START_PAYOUT)
    part = view.parts[0].id
    settle = rig.recoveries.settle
    assert not settle(part, RecoveryState.DEBITING, confirmed, actor="engine", message=(late.seq, late.attempt))
    assert _outbox(engine) == [(current.seq, "carrier_debit", 2, False)]  # still open, still the second's
    assert _state(engine, part) == RecoveryState.DEBITING.value
    assert settle(part, RecoveryState.DEBITING, confirmed, actor="engine", message=(current.seq, current.attempt))
    assert _outbox(engine) == [(current.seq, "carrier_debit", 2, True), (current.seq + 1, "payout", 0, False)]
    assert _state(engine, part) == RecoveryState.PAYING.value
    assert not settle(part, RecoveryState.DEBITING, confirmed, actor="engine", message=(current.seq, current.attempt))


def _state(engine, part: str) -> str:
    recoveries = Recovery.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return str(connection.execute(select(recoveries.c.state).where(recoveries.c.id == part)).scalar_one())


def _outbox(engine) -> list[tuple[int, str, int, bool]]:
    outbox = OutboxMessage.__table__  # type: ignore[attr-defined]
    query = select(outbox.c.seq, outbox.c.kind, outbox.c.attempts, outbox.c.done_at.is_not(None)).order_by(outbox.c.seq)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def test_a_failing_write_among_those_sent_together_at_commit_is_sqlalchemys_and_keeps_nothing(engine):
    """A batched unit of work sends its rows and its `at_commit` statements together at commit
    (one round trip on PostgreSQL): an error in any of them is SQLAlchemy's, and none is kept."""
    with engine.begin() as connection:
        connection.execute(insert(_USERS), [_user(0, "kept-")])
    promote = Prepared(update(_USERS).where(_USERS.c.id == bindparam("who")).values(role=bindparam("role")))
    with UnitOfWork(engine, batched=True, orm=False) as uow:
        uow.write(_USERS, _user(1, "kept-"))
        uow.at_commit(promote, who="kept-0", role="operator")
        assert [row[1] for row in _users(engine, "kept-")] == ["consumer"]  # nothing before commit
        uow.commit()
    assert [row[1] for row in _users(engine, "kept-")] == ["operator", "consumer"]
    with pytest.raises(exc.IntegrityError), UnitOfWork(engine, batched=True, orm=False) as uow:
        uow.write(_USERS, _user(2, "kept-"))
        uow.write(_USERS, _user(0, "kept-"))  # there already
        uow.at_commit(promote, who="kept-1", role="admin")
        uow.commit()
    assert [(row[0], row[1]) for row in _users(engine, "kept-")] == [("0", "operator"), ("1", "consumer")]
    with pytest.raises(RuntimeError), UnitOfWork(engine, orm=False) as uow:
        uow.at_commit(promote, who="kept-1", role="admin")  # only a batched unit of work keeps statements
