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
from collections.abc import Mapping
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
class Transition:
    """One recorded change: who made it and why (a person, the worker, a partner's notice)."""

    before: RecoveryState
    after: RecoveryState
    event: RecoveryEvent
    actor: str
    reason: str
