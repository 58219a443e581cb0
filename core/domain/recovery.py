"""A recovery's life, as a transition table. An illegal move raises `IllegalTransition`.

    created ──approve──▶ approved ──start_debit──▶ debiting ──debit_confirmed──▶ debited
       │  └─review──▶ review ─approve─┘                │                           │
       │                 │                             └─debit_failed──▶ failed     start_payout
       ├─reject──▶ rejected ◀──reject─┘                                             ▼
       └─cancel──▶ cancelled ◀──cancel── (review, approved: nothing debited yet)   paying
                                                       paid ◀──payout_confirmed───┤
                                                   refunded ◀─refund_confirmed─ refunding ◀─payout_failed─┘

Money moves only after `debit_confirmed`; a permanent payout failure is compensated by a
refund of the carrier balance, so every debited recovery ends paid or refunded.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.errors import PortalError


class IllegalTransition(PortalError):
    key = "error.recovery.illegal"


class RecoveryState(enum.Enum):
    CREATED = "created"
    REVIEW = "review"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    DEBITING = "debiting"
    DEBITED = "debited"
    FAILED = "failed"
    PAYING = "paying"
    PAID = "paid"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


class RecoveryEvent(enum.Enum):
    APPROVE = "approve"
    REVIEW = "review"
    REJECT = "reject"
    CANCEL = "cancel"
    START_DEBIT = "start_debit"
    DEBIT_CONFIRMED = "debit_confirmed"
    DEBIT_FAILED = "debit_failed"
    START_PAYOUT = "start_payout"
    PAYOUT_CONFIRMED = "payout_confirmed"
    PAYOUT_FAILED = "payout_failed"
    REFUND_CONFIRMED = "refund_confirmed"


S, E = RecoveryState, RecoveryEvent

TRANSITIONS: Mapping[tuple[RecoveryState, RecoveryEvent], RecoveryState] = {
    (S.CREATED, E.APPROVE): S.APPROVED,
    (S.CREATED, E.REVIEW): S.REVIEW,
    (S.CREATED, E.REJECT): S.REJECTED,
    (S.CREATED, E.CANCEL): S.CANCELLED,
    (S.REVIEW, E.APPROVE): S.APPROVED,
    (S.REVIEW, E.REJECT): S.REJECTED,
    (S.REVIEW, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.START_DEBIT): S.DEBITING,
    (S.DEBITING, E.DEBIT_CONFIRMED): S.DEBITED,
    (S.DEBITING, E.DEBIT_FAILED): S.FAILED,
    (S.DEBITED, E.START_PAYOUT): S.PAYING,
    (S.PAYING, E.PAYOUT_CONFIRMED): S.PAID,
    (S.PAYING, E.PAYOUT_FAILED): S.REFUNDING,
    (S.REFUNDING, E.REFUND_CONFIRMED): S.REFUNDED,
}

TERMINAL = frozenset({S.PAID, S.REFUNDED, S.REJECTED, S.CANCELLED, S.FAILED})
#: Ended without the balance ever leaving the number (refused, cancelled, or the carrier refused the debit).
NOTHING_MOVED = frozenset({S.REJECTED, S.CANCELLED, S.FAILED})
#: Not yet debited as far as our records know: the balance is still on the number, but promised
#: to this recovery (a debit that is under way may already have been applied by the carrier).
COMMITTED = frozenset({S.CREATED, S.REVIEW, S.APPROVED, S.DEBITING})


def next_state(state: RecoveryState, event: RecoveryEvent) -> RecoveryState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        raise IllegalTransition(
            f"a recovery that is {state.value} cannot {event.value}"
            + (f" (it can: {', '.join(allowed)})" if allowed else " (it has ended)"),
            state=state.value,
            event=event.value,
        ) from None


@dataclass(frozen=True)
class Outcome:
    """What actually happened to the money of one recovery (all its linked transactions).

    Only paid transactions count as received, and only they are charged a fee; a refunded one
    put its whole debit back on the number (the fee was reversed with it); a refused, cancelled
    or failed-to-debit one moved nothing. Transactions still under way are `pending_fen`
    (debit asked for) and would pay `expected_fen` if they succeed.
    """

    received_fen: int = 0
    fee_fen: int = 0
    refunded_fen: int = 0
    not_moved_fen: int = 0
    pending_fen: int = 0
    expected_fen: int = 0

    @property
    def settled(self) -> bool:
        return self.pending_fen == 0

    def as_dict(self) -> dict[str, int]:
        return {
            "received_fen": self.received_fen,
            "fee_fen": self.fee_fen,
            "refunded_fen": self.refunded_fen,
            "not_moved_fen": self.not_moved_fen,
            "pending_fen": self.pending_fen,
            "expected_fen": self.expected_fen,
        }


def outcome_of(parts: Iterable[tuple[RecoveryState, int, int]]) -> Outcome:
    """The outcome of (state, debit_fen, fee_fen) transactions."""
    received = fee = refunded = not_moved = pending = expected = 0
    for state, debit_fen, fee_fen in parts:
        if state is S.PAID:
            received, fee = received + debit_fen - fee_fen, fee + fee_fen
        elif state is S.REFUNDED:
            refunded += debit_fen
        elif state in NOTHING_MOVED:
            not_moved += debit_fen
        else:
            pending, expected = pending + debit_fen, expected + debit_fen - fee_fen
    return Outcome(received, fee, refunded, not_moved, pending, expected)
