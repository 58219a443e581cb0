"""A compile-once statement with a list parameter (`IN`, `NOT IN`) is compiled once per power of
two of the list's length, not once per length (the worker's claim took every length up to twice
its concurrency, each compiled in a claim's transaction), and gives the same rows for every
length as the list itself: the placeholders past a shorter list's end repeat its last item."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, update

from core.persistence.compiled import planned_length
from core.persistence.fast_reads import Read, snapshot
from core.persistence.kept_writes import write_transaction
from core.persistence.uow import Prepared, run

NUMBERS = Table("list_plan_numbers", MetaData(), Column("n", Integer, primary_key=True), Column("tag", String(8)))

IN_LIST: Read[tuple[int]] = Read(
    lambda ns: select(NUMBERS.c.n).where(NUMBERS.c.n.in_(ns)).order_by(NUMBERS.c.n), lists=["ns"]
)
#: every number not in the list tagged, and returned
TAG_OTHERS = Prepared(
    update(NUMBERS)
    .where(NUMBERS.c.n.not_in(bindparam("ns", expanding=True)))
    .values(tag=bindparam("tag"))
    .returning(NUMBERS.c.n),
    lists=["ns"],
)


@pytest.fixture
def numbers(engine):  # type: ignore[no-untyped-def]
    NUMBERS.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(NUMBERS), [{"n": n, "tag": ""} for n in range(60)])
    yield engine
    NUMBERS.drop(engine)


def test_a_list_plan_is_made_for_the_next_power_of_two():
    assert [planned_length(n) for n in range(10)] == [0, 1, 2, 4, 4, 8, 8, 8, 8, 16]
    assert planned_length(64) == 64 and planned_length(65) == 128 and planned_length(130) == 256


def test_in_and_not_in_give_the_lists_own_rows_at_every_length_with_a_plan_per_power_of_two(numbers):
    read, prepared = Read(IN_LIST._build, lists=["ns"]), Prepared(TAG_OTHERS._statement, lists=["ns"])
    for length in range(0, 41):
        ns = [n * 7 % 41 for n in range(length)]  # distinct, out of order: the last is not the largest
        with snapshot(numbers) as reader:
            assert [row[0] for row in reader.rows(read, ns=ns)] == sorted(ns), length
        if not ns:
            continue  # NOT IN () is every row; dialects write an empty list each their own way
        with write_transaction(numbers) as connection:
            tagged = sorted(row[0] for row in run(connection, prepared, {"ns": ns, "tag": str(length)}))
        assert tagged == sorted(set(range(60)) - set(ns)), length
    # one plan each for 0, 1, 2, 4, 8, 16, 32 and 64, where every length made one
    assert len(read._plans) == 8  # lengths 0 to 40
    assert len(prepared._plans) == 7  # 1 to 40
    with snapshot(numbers) as reader:
        tags = dict(reader.rows(Read(lambda: select(NUMBERS.c.n, NUMBERS.c.tag))))
    # 0 is in every list, 7 in every one but the first, 50 in none
    assert (tags[0], tags[7], tags[50]) == ("", "1", "40")
