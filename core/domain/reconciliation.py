"""Reconciliation: a partner's statement of one business day against our books.

Each side is a set of money movements keyed by our reference for the partner call (the
partner's 商户订单号): the statement's rows that succeeded, and ours — what the ledger booked
for that call (a payout confirmed, a carrier debit confirmed, a carrier refund confirmed), with
any correcting entries added. The kinds of break, as every reconciliation tool names them:

    missing_in_statement  we booked it on this day; the partner's statement does not have it
                          (nor did any statement of theirs imported earlier)
    missing_in_ledger     the partner's statement has it; we booked nothing for that reference
                          (a row that is not ours, or a movement we did not record)
    amount_mismatch       both have it, with different amounts
    duplicate             the statement lists the reference more than once
    timing                both have it with the same amount, on different business days; it
                          clears by itself when the statement of the other day is imported
    summary_mismatch      the statement's own summary block disagrees with its rows

Rows that did not succeed (a payout the partner failed) move no money and match nothing.
A break that needs money to move is put right by a correcting entry (`correction`), never by
changing an entry: the difference goes to the partner's account in our books, against
`reconciliation_differences`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from core.domain.calendar import shanghai_day
from core.domain.ledger import Account, Posting
from core.domain.statements import Statement, StatementRow


class BreakKind(enum.StrEnum):
    MISSING_IN_STATEMENT = "missing_in_statement"
    MISSING_IN_LEDGER = "missing_in_ledger"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE = "duplicate"
    TIMING = "timing"
    SUMMARY_MISMATCH = "summary_mismatch"


class BreakStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # an operator resolved it, with a reason (and a correcting entry if money moved)
    CLEARED = "cleared"  # it cleared by itself (the other day's statement brought it)


#: Why an operator resolves a break that moves no money.
RESOLUTIONS = ("reported_to_partner", "not_ours", "timing_confirmed", "duplicate_confirmed", "other")
#: The resolution a correcting entry gives (approved by a second operator).
CORRECTED = "corrected"
#: The partner's account in our books for each kind of call, and the sign that turns its
#: postings into what the partner moved (a payout is credited to payouts_settled).
ACCOUNT_OF = {
    "payout": (Account.PAYOUTS_SETTLED, -1),
    "debit": (Account.CARRIER_RECEIVABLE, 1),
    "refund": (Account.REFUNDS_TO_CARRIER, -1),
}
#: The event our ledger books each kind of call on (the day it is ours).
EVENT_OF = {"payout": "payout_confirmed", "debit": "debit_confirmed", "refund": "refund_confirmed"}


@dataclass(frozen=True)
class Ours:
    """What our ledger booked for one partner call."""

    reference: str
    recovery_id: str
    kind: str
    amount_fen: int
    day: dt.date


@dataclass(frozen=True)
class Break:
    kind: BreakKind
    reference: str
    ours_fen: int | None
    theirs_fen: int | None
    our_day: dt.date | None = None
    their_day: dt.date | None = None
    recovery_id: str | None = None


@dataclass(frozen=True)
class Matching:
    matched: int
    breaks: tuple[Break, ...]
    ours_fen: int  # what we booked on the day
    theirs_fen: int  # what the statement's rows moved


def match(
    statement: Statement,
    ours_on_day: Mapping[tuple[str, str], Ours],
    ours_elsewhere: Mapping[tuple[str, str], Ours],
    stated_elsewhere: frozenset[tuple[str, str]],
) -> Matching:
    """A statement of one day against what we booked: `ours_on_day` (booked on that day),
    `ours_elsewhere` (booked on another day, for the statement's references), and which of
    our references another imported statement of this partner already listed. All keyed by
    (kind, reference)."""
    breaks: list[Break] = []
    totals = statement.totals()
    if totals != statement.summary:  # the rows' figures ("ours" here) against the summary's
        breaks.append(Break(BreakKind.SUMMARY_MISMATCH, "", totals.amount_fen, statement.summary.amount_fen))
    theirs: dict[tuple[str, str], StatementRow] = {}  # the first row of each (kind, reference)
    again: dict[tuple[str, str], int] = {}  # what the rows after the first add
    for row in statement.rows:
        if row.status == "success":
            key = (row.kind, row.reference)
            if key in theirs:
                again[key] = again.get(key, 0) + row.amount_fen
            else:
                theirs[key] = row
    matched = 0
    for key, first in theirs.items():
        ours = ours_on_day.get(key) or ours_elsewhere.get(key)
        their_day = shanghai_day(first.at)
        if key in again:
            mine = (ours.amount_fen, ours.day, ours.recovery_id) if ours is not None else (None, None, None)
            breaks.append(Break(BreakKind.DUPLICATE, key[1], mine[0], again[key], mine[1], their_day, mine[2]))
        if ours is None:
            breaks.append(Break(BreakKind.MISSING_IN_LEDGER, key[1], None, first.amount_fen, None, their_day))
        elif ours.amount_fen != first.amount_fen:
            breaks.append(
                Break(
                    BreakKind.AMOUNT_MISMATCH,
                    key[1],
                    ours.amount_fen,
                    first.amount_fen,
                    ours.day,
                    their_day,
                    ours.recovery_id,
                )
            )
        elif ours.day != their_day:
            breaks.append(
                Break(
                    BreakKind.TIMING, key[1], ours.amount_fen, first.amount_fen, ours.day, their_day, ours.recovery_id
                )
            )
        else:
            matched += 1
    for key, ours in ours_on_day.items():
        if key in theirs:
            continue
        if key in stated_elsewhere:  # another day's statement had it: that day's timing break
            matched += 1
            continue
        breaks.append(
            Break(BreakKind.MISSING_IN_STATEMENT, key[1], ours.amount_fen, None, ours.day, None, ours.recovery_id)
        )
    theirs_fen = sum(row.amount_fen for row in theirs.values())
    ours_fen = sum(o.amount_fen for o in ours_on_day.values())
    return Matching(matched, tuple(breaks), ours_fen, theirs_fen)


def correction(kind: str, ours_fen: int, theirs_fen: int) -> tuple[Posting, Posting]:
    """The correcting entry that makes our booking of one partner call what the partner moved:
    the difference on the partner's account, against reconciliation_differences."""
    account, sign = ACCOUNT_OF[kind]
    difference = sign * (theirs_fen - ours_fen)
    if difference == 0:
        raise ValueError("nothing to correct")
    return Posting(account, difference), Posting(Account.RECONCILIATION_DIFFERENCES, -difference)
