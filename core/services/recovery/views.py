"""What a recovery looks like to the people who follow it: one or more linked transactions
(`RecoveryView`), each change on its timeline (`Step`), and what a submission asks for
(`RecoveryRequest`). Built from rows by `view_of`; nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from sqlmodel import SQLModel, col, select

from core.domain.quotes import Reason
from core.domain.reasons import why
from core.domain.recovery import TERMINAL, Outcome, RecoveryEvent, RecoveryState, outcome_of
from core.domain.risk import Assessment
from core.errors import PortalError
from core.persistence.tables import Recovery
from core.persistence.uow import UnitOfWork

#: Unfinished states from least to most advanced (a refund comes after a failed payout).
PROGRESS = (
    RecoveryState.CREATED,
    RecoveryState.REVIEW,
    RecoveryState.APPROVED,
    RecoveryState.DEBITING,
    RecoveryState.DEBITED,
    RecoveryState.PAYING,
    RecoveryState.REFUNDING,
)
#: A group can be cancelled by its owner only while every part is still in one of these.
CANCELLABLE = frozenset({RecoveryState.CREATED, RecoveryState.REVIEW, RecoveryState.APPROVED})


class UnknownRecovery(PortalError):
    key = "error.recovery.unknown"


@dataclass(frozen=True)
class RecoveryRequest:
    channel_id: str
    phone: str  # one of the caller's verified numbers
    amount_fen: int
    payee: str  # where the channel pays: a wallet account, a bank card ...
    quote_lock_id: str | None = None  # the locked quote to honour (its transactions and fees)
    device: str = field(default="", repr=False)  # the device descriptor (`core.domain.device`)


@dataclass(frozen=True)
class PartView:
    id: str
    part: int
    state: RecoveryState
    debit_fen: int
    fee_fen: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """As the command line prints it and a receipt signs it."""
        return {
            "id": self.id,
            "part": self.part,
            "state": self.state.value,
            "debit_fen": self.debit_fen,
            "fee_fen": self.fee_fen,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RecoveryView:
    """A recovery as its owner sees it: one or more linked transactions."""

    id: str  # the group id (its first part's id)
    user_id: str
    channel_id: str
    masked_number: str
    created_at: dt.datetime
    parts: tuple[PartView, ...]
    created: bool = False  # False: an earlier submission with the same key is returned
    risk: Assessment | None = None  # the risk rules' decision and reasons (None before risk control)
    quote_lock_id: str | None = None

    @property
    def payout_fen(self) -> int:
        """What the recovery pays if every transaction succeeds (the quote); what it did pay
        is `outcome.received_fen`."""
        return self.amount_fen - self.fee_fen

    @property
    def outcome(self) -> Outcome:
        return outcome_of((p.state, p.debit_fen, p.fee_fen) for p in self.parts)

    @property
    def cancellable(self) -> bool:
        """Nothing debited and no debit asked for yet."""
        return all(p.state in CANCELLABLE for p in self.parts)

    @property
    def amount_fen(self) -> int:
        return sum(p.debit_fen for p in self.parts)

    @property
    def fee_fen(self) -> int:
        return sum(p.fee_fen for p in self.parts)

    @property
    def settled(self) -> bool:
        return all(p.state in TERMINAL for p in self.parts)

    @property
    def state(self) -> RecoveryState:
        """The group's state: its least advanced unfinished part's; once all have ended, the
        first part's (each part's own outcome is in `parts`)."""
        unfinished = [p.state for p in self.parts if p.state not in TERMINAL]
        if not unfinished:
            return self.parts[0].state
        return min(unfinished, key=PROGRESS.index)


class Step(NamedTuple):
    """One change on a recovery's timeline (a named tuple: a detail builds dozens)."""

    part: int
    at: dt.datetime
    event: RecoveryEvent
    state: RecoveryState  # the state it led to
    by: str  # owner | operator | engine | partner
    reason: str  # as recorded: an operator's words, a partner's code

    @property
    def why(self) -> Reason | None:
        """The reason in words for the recovery's owner (`core.domain.reasons`)."""
        return why(self.event, self.by, self.reason)


def parts_of(uow: UnitOfWork, *where: Any) -> list[Recovery]:
    """The transaction rows matching `where`, in part order."""
    return list(uow.session.exec(select(Recovery).where(*where).order_by(col(Recovery.part))).all())


RECOVERY_COLUMNS = tuple(SQLModel.metadata.tables["recoveries"].columns)
#: A transaction row as plain values, read by attribute like `Recovery` (what `row_of` makes).
PlainRecovery = namedtuple("PlainRecovery", [c.name for c in RECOVERY_COLUMNS])  # type: ignore[misc]


def row_of(values: Mapping[str, Any]) -> Recovery:
    """A row about to be written (every column by name) as a read-only row with the same
    attributes as `Recovery`: a view is built from what a transaction wrote without reading it back."""
    return cast(Recovery, PlainRecovery(**values))


def plain_rows(uow: UnitOfWork, *where: Any, order: Sequence[Any] = ()) -> list[Recovery]:
    """Transaction rows as plain result rows with the same attributes as `Recovery` (read-only:
    no ORM objects, no identity map) — for reads of many rows that only build views."""
    query = select(*RECOVERY_COLUMNS).where(*where).order_by(*order)
    return cast(list[Recovery], list(uow.session.execute(query).all()))


_STATE = {state.value: state for state in RecoveryState}  # a stored value as its member, by look-up


def view_of(parts: Sequence[Recovery], *, created: bool = False) -> RecoveryView:
    first = parts[0]
    return RecoveryView(
        id=first.group_id,
        user_id=first.user_id,
        channel_id=first.channel_id,
        masked_number=first.masked_number,
        created_at=first.created_at,
        parts=tuple(PartView(p.id, p.part, _STATE[p.state], p.debit_fen, p.fee_fen, p.reason) for p in parts),
        created=created,
        risk=Assessment.from_json(first.risk_reasons) if first.risk_reasons else None,
        quote_lock_id=first.quote_lock_id,
    )


def grouped(rows: Sequence[Recovery]) -> list[RecoveryView]:
    """Rows ordered by group then part, as one view per group (in the rows' order)."""
    groups: dict[str, list[Recovery]] = {}
    for row in rows:
        groups.setdefault(row.group_id, []).append(row)
    return [view_of(parts) for parts in groups.values()]
