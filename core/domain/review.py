"""The rules of the operators' review: the reasons an operator may give, the actions that need
a second person (four eyes), and when a claim on a case or a request for a second person has
run out. Pure: the console's services apply them (`core.services.console`).

An operator decides with a reason from a short list (which the recovery's owner reads in their
own language) and, if they like, a note for colleagues (which only staff read). Reasons are
stored on the transition as `review:<code>`; anything else there is an operator's own words,
from the command line before it took codes only (and from the engine's own callers)."""

from __future__ import annotations

import datetime as dt
import enum

#: Why an operator approved a recovery in review.
APPROVE_REASONS = ("identity_confirmed", "history_explains", "within_usual_pattern")
#: Why an operator rejected one.
REJECT_REASONS = ("suspected_fraud", "not_the_owner", "structuring", "balance_already_claimed", "unverifiable")
REASON_PREFIX = "review:"
NOTE_MAX = 300


class FourEyesAction(enum.StrEnum):
    """What one operator asks and a second one must agree to before it happens."""

    APPROVE_RECOVERY = "approve_recovery"  # above the four-eyes amount
    MANUAL_REFUND = "manual_refund"
    MARK_PAID = "mark_paid"
    MARK_FAILED = "mark_failed"
    REMOVE_DENY = "remove_deny"
    CORRECT_BREAK = "correct_break"  # a correcting ledger entry for a reconciliation break


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"  # the second person agreed and it happened
    REFUSED = "refused"  # the second person said no
    LAPSED = "lapsed"  # nobody agreed in time
    FAILED = "failed"  # the second person agreed, but it could no longer happen (the case moved on)


def reasons_for(approve: bool) -> tuple[str, ...]:
    return APPROVE_REASONS if approve else REJECT_REASONS


def stored_reason(code: str) -> str:
    return REASON_PREFIX + code


def review_code(stored: str) -> str | None:
    """The reason code of a stored review reason; None for an operator's own words."""
    if stored.startswith(REASON_PREFIX):
        code = stored.removeprefix(REASON_PREFIX)
        if code in APPROVE_REASONS or code in REJECT_REASONS:
            return code
    return None


def needs_second_person(amount_fen: int, threshold_fen: int) -> bool:
    """Approving a recovery above the four-eyes amount takes a second operator."""
    return amount_fen > threshold_fen


def held(expires_at: dt.datetime | None, now: dt.datetime) -> bool:
    """A claim or a pending request holds until it expires."""
    return expires_at is not None and expires_at > now


def overdue(created_at: dt.datetime, now: dt.datetime, service_s: float) -> bool:
    """A case waiting longer than the review service time gets a warning."""
    return (now - created_at).total_seconds() > service_s
