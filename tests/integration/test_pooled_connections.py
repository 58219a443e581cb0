"""Pooled PostgreSQL connections are pinged only after sitting idle (`core.persistence.db`): one
the server dropped while it sat idle is replaced before any statement meets it, and one handed
back moments ago is handed out again without a round trip of its own."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from core.persistence import db


def _backend(engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # the SQLite file has no server to lose
def test_a_connection_the_server_dropped_while_it_sat_idle_is_replaced_unseen(engine, monkeypatch):
    first = _backend(engine)
    admin = db.engine_for(engine.url.render_as_string(hide_password=False))  # a connection of its own
    try:
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection given back counts as idle
    assert _backend(engine) != first  # no error: a new connection answered


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_connection_given_back_moments_ago_is_not_pinged(engine):
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    _backend(engine)
    _backend(engine)  # the same connection, back within PING_AFTER_IDLE_S
    assert statements == ["SELECT pg_backend_pid()"] * 2
    pinged: list[object] = []
    original = engine.dialect.do_ping
    engine.dialect.do_ping = lambda connection: pinged.append(connection) or original(connection)  # type: ignore[method-assign]
    try:
        _backend(engine)
    finally:
        engine.dialect.do_ping = original  # type: ignore[method-assign]
    assert pinged == []
