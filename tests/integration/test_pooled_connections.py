"""Pooled PostgreSQL connections are pinged only after sitting idle (`core.persistence.db`): one
the server dropped while it sat idle is replaced before any statement meets it, one handed back
moments ago is handed out again without a round trip of its own, and a statement that meets a
lost server fails once, after which the pool answers with new connections."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, exc, func, select, text

from core.persistence import db
from core.persistence.fast_reads import Read, snapshot

_PID: Read[tuple[int]] = Read(lambda: select(func.pg_backend_pid().label("pid")).where(bindparam("one") == 1))


def _backend(engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine, *pids: int) -> None:
    admin = db.engine_for(engine.url.render_as_string(hide_password=False))  # a connection of its own
    try:
        with admin.begin() as connection:
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def _counting_pings(engine, monkeypatch) -> list[object]:
    pinged: list[object] = []
    original = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pinged.append(connection) or original(connection))
    return pinged


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # the SQLite file has no server to lose
def test_a_connection_the_server_dropped_while_it_sat_idle_is_replaced_unseen(engine, monkeypatch):
    first = _backend(engine)  # the pool's only connection
    _terminate(engine, first)
    pinged = _counting_pings(engine, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection given back counts as idle
    assert _backend(engine) != first  # no error: the ping found it gone and a new connection answered
    assert len(pinged) == 1


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_connection_given_back_moments_ago_is_not_pinged(engine, monkeypatch):
    _backend(engine)
    pinged = _counting_pings(engine, monkeypatch)
    _backend(engine)  # the same connection, back within PING_AFTER_IDLE_S
    assert pinged == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    _backend(engine)
    assert len(pinged) == 1  # the same connection, now counted as idle: asked first


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_compile_once_read_that_meets_a_lost_server_fails_once_and_the_pool_starts_afresh(engine):
    with engine.connect() as one, engine.connect() as two:  # two pooled connections, both then given back
        pids = [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in (one, two)]
    _terminate(engine, *pids)  # the server "restarts" moments after they were used: no ping
    with pytest.raises(exc.OperationalError) as lost, snapshot(engine) as reader:
        reader.rows(_PID, one=1)
    assert lost.value.connection_invalidated
    with snapshot(engine) as reader:  # neither old connection is handed out again
        assert reader.rows(_PID, one=1)[0][0] not in pids
    assert _backend(engine) not in pids
