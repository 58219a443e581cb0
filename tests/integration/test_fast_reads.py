"""Fast reads (`core.persistence.fast_reads`) give back what SQLAlchemy itself gives back for the
same select: the same values with the same types, aware UTC datetimes included."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, insert, select, text

from core.persistence.fast_reads import Read, snapshot
from core.persistence.tables import User

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
