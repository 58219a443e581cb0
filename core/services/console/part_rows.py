"""The console's reads of recovery parts as plain rows (`core.persistence.fast_reads`): only the
columns a view, its carrier and its number's index need, in a `PartRow` that `view_of` and
`grouped` read like a `Recovery`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select

from core.persistence.tables import Recovery
from core.services.recovery.views import RecoveryView, grouped

RECOVERIES = cast(Table, Recovery.__table__)  # type: ignore[attr-defined]


class PartRow(NamedTuple):
    """One part as the console's views are built from it (the columns `view_of` reads, with
    the carrier and the number's blind index)."""

    id: str
    group_id: str
    part: int
    user_id: str
    channel_id: str
    masked_number: str
    created_at: dt.datetime
    state: str
    debit_fen: int
    fee_fen: int
    reason: str
    risk_reasons: str
    quote_lock_id: str | None
    carrier: str
    number_index: str


def select_parts(table: Any = RECOVERIES) -> Any:
    """`SELECT` of a `PartRow`'s columns from `table` (the recoveries table or an alias of it)."""
    return select(*(table.c[name] for name in PartRow._fields))


def views_of(rows: Sequence[PartRow]) -> list[RecoveryView]:
    """Rows ordered by group then part, as one view per group (in the rows' order)."""
    return grouped(cast(Sequence[Recovery], rows))
