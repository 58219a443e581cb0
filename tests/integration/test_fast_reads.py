"""Fast reads (`core.persistence.fast_reads`) give back what SQLAlchemy itself gives back for the
same select: the same values with the same types, aware UTC datetimes included."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, create_engine, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from core.persistence.db import engine_for
from core.persistence.fast_reads import Read, snapshot
from core.persistence.tables import User
from tests.support.db import database_url

_U = User.__table__.c  # type: ignore[attr-defined]

_CALLS: Read[tuple[object, ...]] = Read(
    lambda ids: select(_U.id, _U.role, _U.created_at, _U.deleted_at).where(_U.id.in_(ids)).order_by(_U.id),
    lists=("ids",),
)
_ONE: Read[tuple[object, ...]] = Read(lambda: select(_U.created_at, _U.deleted_at).where(_U.id == bindparam("uid")))


def test_fast_reads_give_back_what_sqlalchemy_gives_back_moments_included(engine):
    moments = [
        dt.datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC),  # no fraction
        dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),  # given in Beijing time
    ]
    rows = [
        {"id": f"r{i}", "role": "consumer", "created_at": at, "deleted_at": None if i == 1 else at}
        for i, at in enumerate(moments)
    ]
    with engine.begin() as conn:
        conn.execute(insert(User.__table__), rows)  # type: ignore[attr-defined]
        expected = [tuple(r) for r in conn.execute(_CALLS._build(ids=["r0", "r1", "r2"]))]  # SQLAlchemy's own
    with snapshot(engine) as reader:
        fast = reader.rows(_CALLS, ids=["r0", "r1", "r2"])
        again = reader.rows(_CALLS, ids=["r0", "r1", "r2"])  # the plan and its processors kept
        one = reader.rows(_ONE, uid="r2")
    assert fast == expected == again
    for row in fast:
        assert row[2].tzinfo is dt.UTC  # aware, in UTC, as SQLAlchemy gives it
        assert row[2] in moments  # the same instant as written
    assert fast[1][3] is None
    assert one == [(moments[2].astimezone(dt.UTC), moments[2].astimezone(dt.UTC))]
    assert one[0][0].hour == 0  # 08:00 in Beijing is midnight UTC


_CREATED: Read[tuple[object, ...]] = Read(lambda: select(_U.created_at).where(_U.id == bindparam("uid")))


def test_a_moment_stored_with_an_offset_of_its_own_reads_as_the_same_instant_in_utc(engine):
    """SQLAlchemy writes UTC text without an offset; a value written by hand with one (an
    import, a repair) still reads as its instant, in UTC, one column alone included."""
    with engine.begin() as conn:
        conn.execute(insert(User.__table__), [{"id": "r0", "role": "consumer", "created_at": dt.datetime.now(dt.UTC)}])  # type: ignore[attr-defined]
        conn.execute(text("UPDATE users SET created_at = :at WHERE id = 'r0'"), {"at": "2026-06-01 08:00:00+08:00"})
    with snapshot(engine) as reader:
        (row,) = reader.rows(_CREATED, uid="r0")
    assert row == (dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC),)
    assert row[0].tzinfo is dt.UTC
    if engine.dialect.name == "sqlite":  # a day alone, as text: midnight UTC, still aware
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET created_at = '2026-06-02' WHERE id = 'r0'"))
        with snapshot(engine) as reader:
            assert reader.rows(_CREATED, uid="r0") == [(dt.datetime(2026, 6, 2, tzinfo=dt.UTC),)]


_COUNT: Read[tuple[int]] = Read(lambda: select(func.count()).select_from(User.__table__))  # type: ignore[attr-defined]


def _add_user(engine, uid: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(User.__table__), [{"id": uid, "role": "consumer", "created_at": dt.datetime.now(dt.UTC)}])  # type: ignore[attr-defined]


def test_a_snapshot_reads_one_state_of_the_database_whatever_is_committed_between_its_reads(engine):
    """A page reads several statements in one snapshot: a recovery that changes between two of
    them is seen before the change by all, on PostgreSQL too (REPEATABLE READ, not its default)."""
    _add_user(engine, "u0")
    with snapshot(engine) as reader:
        before = reader.rows(_COUNT)
        _add_user(engine, "u1")  # another transaction, committed between the snapshot's reads
        after = reader.rows(_COUNT)
    assert before == after == [(1,)]
    with snapshot(engine) as reader:
        assert reader.rows(_COUNT) == [(2,)]


def test_a_snapshot_with_cursor_listeners_reads_one_state_too_and_they_see_its_statements(engine):
    seen: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", grab)
    try:
        _add_user(engine, "u0")
        with snapshot(engine) as reader:
            before = reader.rows(_COUNT)
            _add_user(engine, "u1")
            after = reader.rows(_COUNT)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert before == after == [(1,)]
    assert sum("count(*)" in s for s in seen) == 2


def test_a_snapshot_gives_its_connection_back_to_the_pool_as_it_found_it(tmp_path, engine):
    """The pooled connection a snapshot read on goes back with no transaction open and the
    database's default isolation: the next user of it (a write) is not held to the snapshot."""
    small = engine_for(database_url(engine), pool_size=1, max_overflow=0)
    try:
        _add_user(small, "u0")
        with snapshot(small) as reader:
            reader.rows(_COUNT)
        with small.connect() as conn:
            if small.dialect.name == "postgresql":
                assert conn.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
            assert conn.execute(select(func.count()).select_from(User.__table__)).scalar() == 1  # type: ignore[attr-defined]
        _add_user(small, "u1")  # the same connection writes and commits
        with snapshot(small) as reader:
            assert reader.rows(_COUNT) == [(2,)]
    finally:
        small.dispose()


def test_a_failed_read_in_a_snapshot_is_sqlalchemys_error_and_the_pool_goes_on(engine):
    broken: Read[tuple[object, ...]] = Read(lambda: select(text("no_such_column")).select_from(User.__table__))  # type: ignore[attr-defined]
    with pytest.raises(DBAPIError), snapshot(engine) as reader:
        reader.rows(broken)
    _add_user(engine, "u0")
    with snapshot(engine) as reader:
        assert reader.rows(_COUNT) == [(1,)]


def test_a_page_read_takes_no_sqlalchemy_connection_but_reads_the_same(engine):
    """The fast path: a pooled connection, no `Connection` made (whose creation `engine_connect`
    tells of); with a cursor listener on the engine, a `Connection`, as listeners expect."""
    made: list[object] = []

    def tell(connection):
        made.append(connection)

    event.listen(engine, "engine_connect", tell)
    try:
        _add_user(engine, "u0")
        made.clear()
        with snapshot(engine) as reader:
            assert reader.rows(_COUNT) == [(1,)]
        assert made == []
    finally:
        event.remove(engine, "engine_connect", tell)


@pytest.mark.parametrize("url", ["sqlite:////proc/no-such-place/portal.sqlite3", "postgresql://postgres@127.0.0.1:9/x"])
def test_a_database_that_cannot_be_reached_is_sqlalchemys_error_as_ever(url):
    """What callers catch (`SQLAlchemyError`: a quote falls back when the pricing versions
    cannot be read) is what a read raises when no connection can be made."""
    unreachable = (
        create_engine(url) if url.startswith("sqlite") else engine_for(url, connect_args={"connect_timeout": 2})
    )
    try:
        with pytest.raises(OperationalError), snapshot(unreachable) as reader:
            reader.rows(_COUNT)
    finally:
        unreachable.dispose()
