"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import core.persistence.tables  # noqa: F401  (registers the tables)
from core.persistence import migrate
from tests.support.db import scratch_engine


def test_the_schema_after_migrating_matches_the_tables(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    assert migrate.current(engine) == migrate.head()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_totp_steps_and_known_addresses_move_out_of_the_throttles_table(backend, tmp_path):
    """0009 moves `totp-step:<user>` and `known:<account>:<client>` throttle rows into tables of
    their own, and leaves the real throttles alone."""
    with scratch_engine(backend, tmp_path, migrated=False) as engine:
        migrate.upgrade(engine, "0008_process_leases")
        moment = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
        with engine.begin() as db:
            db.execute(text("INSERT INTO users (id, role, created_at) VALUES ('u-1', 'operator', :t)"), {"t": moment})
            for key, failures in (("totp-step:u-1", 59_000_001), ("known:acct9:client7", 0), ("client:client7", 2)):
                db.execute(
                    text("INSERT INTO throttles (key, failures, window_started_at) VALUES (:k, :f, :t)"),
                    {"k": key, "f": failures, "t": moment},
                )
        migrate.upgrade(engine)
        with engine.connect() as db:
            assert db.execute(text("SELECT user_id, step FROM totp_steps")).all() == [("u-1", 59_000_001)]
            assert db.execute(text("SELECT key FROM known_sign_in_addresses")).all() == [("acct9:client7",)]
            assert db.execute(text("SELECT key FROM throttles")).all() == [("client:client7",)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_chain_written_before_the_chainer_keeps_its_order_and_still_verifies(backend, tmp_path):
    """0023 gives every record chained as it was written its place in the chain (its sequence
    number); records written afterwards are chained after them."""
    from core.domain.audit import GENESIS, chain_hash
    from core.persistence.uow import UnitOfWork
    from core.services.audit import AuditLog, verify_audit_chain

    with scratch_engine(backend, tmp_path, migrated=False) as engine:
        migrate.upgrade(engine, "0022_outbox_due_index")
        moment = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
        previous = GENESIS
        with engine.begin() as db:
            for n in range(3):
                record = {"actor": "engine", "action": "submit", "subject": f"r{n}", "detail": {}}
                digest = chain_hash(previous, record)
                db.execute(
                    text(
                        "INSERT INTO audit_records (at, actor, action, subject, detail, previous_hash, hash) "
                        "VALUES (:t, 'engine', 'submit', :s, '{}', :p, :h)"
                    ),
                    {"t": moment, "s": f"r{n}", "p": previous, "h": digest},
                )
                previous = digest
        migrate.upgrade(engine)
        with engine.connect() as db:
            assert db.execute(text("SELECT seq, chain_seq FROM audit_records ORDER BY seq")).all() == [
                (1, 1),
                (2, 2),
                (3, 3),
            ]
        with UnitOfWork(engine) as uow:
            AuditLog(lambda: moment).append(uow, "op-1", "review", "r0", {"reason": "ok"})
            uow.commit()
        assert verify_audit_chain(engine) == (4, None)
        with engine.connect() as db:
            assert db.execute(text("SELECT chain_seq, previous_hash FROM audit_records WHERE seq = 4")).one() == (
                4,
                previous,
            )
