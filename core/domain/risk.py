"""Risk rules for a recovery submission: approve, send to review, or reject, each with a reason.

Every rule is a plain function `(facts, thresholds) -> RiskReason | None`, listed in `RULES`,
so each can be tested alone; `assess` runs them all and keeps the most severe decision.
The caller gathers the facts (history, deny list, carriers) and passes the time in: nothing
here reads a clock or does I/O. All amounts are integer fen; all windows are in seconds and
a history entry counts while `at > now - window`.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from core.domain.carriers import Carrier


@functools.total_ordering
class Decision(enum.Enum):
    """Ordered by severity, so `max(decisions)` is the most severe one."""

    APPROVE = "approve"
    REVIEW = "review"
    REJECT = "reject"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return _SEVERITY[self] < _SEVERITY[other]


#: The decisions from least to most severe.
ORDER: tuple[Decision, ...] = (Decision.APPROVE, Decision.REVIEW, Decision.REJECT)
_SEVERITY: dict[Decision, int] = {decision: rank for rank, decision in enumerate(ORDER)}


@dataclass(frozen=True)
class Past:
    """One earlier recovery that counts (not rejected, cancelled, failed or refunded)."""

    at: dt.datetime  # aware UTC
    amount_fen: int


@dataclass(frozen=True)
class RiskThresholds:
    # Velocity: recoveries counted over the last `velocity_window_s` seconds, this one included.
    velocity_window_s: int = 3600
    # More than this many recoveries by one user in the window -> review.
    velocity_review_user: int = 3
    # More than this many recoveries by one user in the window -> reject.
    velocity_reject_user: int = 10
    # More than this many recoveries on one phone number (by anyone) in the window -> review.
    velocity_review_number: int = 3
    # More than this many recoveries on one phone number (by anyone) in the window -> reject.
    velocity_reject_number: int = 10
    # More than this many recoveries from one device (across all users) in the window -> review.
    velocity_review_device: int = 5
    # More than this many recoveries from one device (across all users) in the window -> reject.
    velocity_reject_device: int = 20
    # An amount at or above this (1,000 CNY) -> review.
    review_amount_fen: int = 100_000
    # An account younger than this many seconds ...
    new_account_s: int = 86_400
    # ... asking this much or more -> review.
    new_account_review_fen: int = 50_000
    # A ported number (current carrier != the carrier its prefix was allocated to) asking this
    # much or more -> review.
    ported_review_fen: int = 20_000
    # Structuring: amounts counted over the last `structuring_window_s` seconds, this one included.
    structuring_window_s: int = 7 * 86_400
    # "Just under" a watched limit L: L * (100 - pct) / 100 <= amount < L.
    structuring_band_pct: int = 10
    # This many just-under amounts in the window (this one included), by the user or on the
    # number -> review.
    structuring_count: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"risk threshold {f.name} must be a positive integer, not {value!r}")
        for who in ("user", "number", "device"):
            review = getattr(self, f"velocity_review_{who}")
            reject = getattr(self, f"velocity_reject_{who}")
            if reject < review:
                raise ValueError(
                    f"risk threshold velocity_reject_{who} ({reject}) must be at least velocity_review_{who} ({review})"
                )
        if not 0 < self.structuring_band_pct < 100:
            pct = self.structuring_band_pct
            raise ValueError(f"risk threshold structuring_band_pct must be between 1 and 99, not {pct}")


DEFAULT_THRESHOLDS = RiskThresholds()


@dataclass(frozen=True)
class RiskFacts:
    now: dt.datetime  # aware UTC
    amount_fen: int
    account_created_at: dt.datetime
    user_history: tuple[Past, ...]  # the user's earlier recoveries (any lookback; rules filter by window)
    number_history: tuple[Past, ...]  # this number's, by anyone
    device_history: tuple[Past, ...]  # this device's, by anyone (empty when the device is unknown)
    limit_fen: int  # the portal's hard per-recovery limit; above it -> reject
    watched_limits: tuple[int, ...]  # limits the structuring rule watches
    allocated_carrier: Carrier | None  # by number prefix
    current_carrier: Carrier | None  # by the carrier API (after porting)
    quoted_carrier: Carrier | None  # the carrier the user's quote was computed for
    denied: frozenset[str]  # identifiers on the deny list: subset of {"user", "number", "device", "payee"}


@dataclass(frozen=True)
class RiskReason:
    rule: str  # e.g. "velocity_user"
    decision: Decision
    key: str  # i18n message key: "risk.<rule>"
    params: Mapping[str, int | str]  # numbers the message shows; carriers as their .value


def _reason(rule: str, decision: Decision, **params: int | str) -> RiskReason:
    return RiskReason(rule, decision, f"risk.{rule}", params)


@dataclass(frozen=True)
class Assessment:
    decision: Decision  # the most severe of the reasons; APPROVE when none fired
    reasons: tuple[RiskReason, ...]

    def to_json(self) -> str:
        """Compact JSON with a stable key order: decision, reasons[rule, decision, key, params];
        params sorted by name."""
        return json.dumps(
            {
                "decision": self.decision.value,
                "reasons": [
                    {
                        "rule": r.rule,
                        "decision": r.decision.value,
                        "key": r.key,
                        "params": {name: r.params[name] for name in sorted(r.params)},
                    }
                    for r in self.reasons
                ],
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Assessment:
        """The assessment `to_json` wrote; ValueError for anything else."""
        data = json.loads(text)  # json.JSONDecodeError is a ValueError
        if not isinstance(data, dict) or not isinstance(data.get("reasons"), list):
            raise ValueError("a risk assessment is an object with a decision and a list of reasons")
        reasons = tuple(_reason_from(item) for item in data["reasons"])
        return cls(_decision_from(data.get("decision")), reasons)


def _decision_from(value: Any) -> Decision:
    if not isinstance(value, str):
        raise ValueError(f"not a risk decision: {value!r}")
    return Decision(value)  # ValueError for an unknown one


def _reason_from(item: Any) -> RiskReason:
    if not isinstance(item, dict):
        raise ValueError("a risk reason is an object")
    rule, key, params = item.get("rule"), item.get("key"), item.get("params")
    if not isinstance(rule, str) or not isinstance(key, str) or not isinstance(params, dict):
        raise ValueError("a risk reason has a rule, a key and params")
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"risk reason parameter {name!r} must be an integer or a string")
    return RiskReason(rule, _decision_from(item.get("decision")), key, params)


# --- the rules -------------------------------------------------------------------------------


def _cutoff(now: dt.datetime, seconds: int) -> dt.datetime | None:
    """`now - seconds`, or None when that is before the calendar begins (everything counts)."""
    try:
        return now - dt.timedelta(seconds=seconds)
    except OverflowError:
        return None


def _count_since(history: tuple[Past, ...], cutoff: dt.datetime | None) -> int:
    if cutoff is None:
        return len(history)
    count = 0
    for past in history:
        if past.at > cutoff:
            count += 1
    return count


def _velocity(
    rule: str, history: tuple[Past, ...], now: dt.datetime, t: RiskThresholds, review: int, reject: int
) -> RiskReason | None:
    count = _count_since(history, _cutoff(now, t.velocity_window_s)) + 1
    if count > reject:
        return _reason(rule, Decision.REJECT, count=count, limit=reject, window_min=t.velocity_window_s // 60)
    if count > review:
        return _reason(rule, Decision.REVIEW, count=count, limit=review, window_min=t.velocity_window_s // 60)
    return None


def rule_velocity_user(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """Too many recoveries by one user within the velocity window."""
    return _velocity("velocity_user", facts.user_history, facts.now, t, t.velocity_review_user, t.velocity_reject_user)


def rule_velocity_number(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """Too many recoveries on one phone number (by anyone) within the velocity window."""
    return _velocity(
        "velocity_number", facts.number_history, facts.now, t, t.velocity_review_number, t.velocity_reject_number
    )


def rule_velocity_device(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """Too many recoveries from one device (across all users) within the velocity window."""
    return _velocity(
        "velocity_device", facts.device_history, facts.now, t, t.velocity_review_device, t.velocity_reject_device
    )


def rule_amount(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """Above the hard limit -> reject; at or above the review amount -> review. `limit_fen` is
    whichever of the two applied."""
    if facts.amount_fen > facts.limit_fen:
        return _reason("amount", Decision.REJECT, amount_fen=facts.amount_fen, limit_fen=facts.limit_fen)
    if facts.amount_fen >= t.review_amount_fen:
        return _reason("amount", Decision.REVIEW, amount_fen=facts.amount_fen, limit_fen=t.review_amount_fen)
    return None


def rule_new_account(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """A young account asking for a large amount."""
    if facts.amount_fen < t.new_account_review_fen:
        return None
    age = facts.now - facts.account_created_at
    if age >= dt.timedelta(seconds=t.new_account_s):
        return None
    return _reason(
        "new_account",
        Decision.REVIEW,
        amount_fen=facts.amount_fen,
        limit_fen=t.new_account_review_fen,
        age_min=max(0, age // dt.timedelta(minutes=1)),
    )


def rule_carrier_mismatch(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """The quote was computed for another carrier than the one the number is with now: re-quote."""
    quoted, current = facts.quoted_carrier, facts.current_carrier
    if quoted is None or current is None or quoted is current:
        return None
    return _reason("carrier_mismatch", Decision.REJECT, quoted=quoted.value, current=current.value)


def rule_ported(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """A number ported away from the carrier its prefix belongs to, asking for a large amount."""
    allocated, current = facts.allocated_carrier, facts.current_carrier
    if allocated is None or current is None or allocated is current or facts.amount_fen < t.ported_review_fen:
        return None
    return _reason("ported", Decision.REVIEW, allocated=allocated.value, current=current.value)


def rule_deny_list(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """Any identifier of this submission on the deny list."""
    if not facts.denied:
        return None
    return _reason("deny_list", Decision.REJECT, on=",".join(sorted(facts.denied)))


def _count_just_under(history: tuple[Past, ...], cutoff: dt.datetime | None, low: int, high: int) -> int:
    """Entries in the window with low <= amount * 100 < high."""
    count = 0
    for past in history:
        if low <= past.amount_fen * 100 < high and (cutoff is None or past.at > cutoff):
            count += 1
    return count


def rule_structuring(facts: RiskFacts, t: RiskThresholds) -> RiskReason | None:
    """Repeated amounts just under a watched limit, by the user or on the number: splitting to
    stay below it. Fires only when this amount is itself just under a limit; reports the limit
    with the highest count (the smallest such limit on a tie)."""
    amount = facts.amount_fen
    cutoff: dt.datetime | None = None
    cutoff_known = False
    best: tuple[int, int] | None = None  # (count, limit)
    for limit in sorted(set(facts.watched_limits)):
        if limit <= 0:
            continue
        # Scaled by 100 to stay in integers: limit * (100 - pct) / 100 <= amount < limit.
        low, high = limit * (100 - t.structuring_band_pct), limit * 100
        if not low <= amount * 100 < high:
            continue
        if not cutoff_known:
            cutoff, cutoff_known = _cutoff(facts.now, t.structuring_window_s), True
        count = 1 + max(
            _count_just_under(facts.user_history, cutoff, low, high),
            _count_just_under(facts.number_history, cutoff, low, high),
        )
        if count >= t.structuring_count and (best is None or count > best[0]):
            best = (count, limit)
    if best is None:
        return None
    return _reason("structuring", Decision.REVIEW, limit_fen=best[1], count=best[0])


Rule = Callable[[RiskFacts, RiskThresholds], RiskReason | None]

#: Every rule, in the order their reasons are listed.
RULES: tuple[Rule, ...] = (
    rule_deny_list,
    rule_carrier_mismatch,
    rule_amount,
    rule_velocity_user,
    rule_velocity_number,
    rule_velocity_device,
    rule_new_account,
    rule_ported,
    rule_structuring,
)


def assess(facts: RiskFacts, thresholds: RiskThresholds = DEFAULT_THRESHOLDS) -> Assessment:
    """Run every rule; the decision is the most severe of the reasons, APPROVE when none fired."""
    reasons = []
    decision = Decision.APPROVE
    for rule in RULES:
        reason = rule(facts, thresholds)
        if reason is not None:
            reasons.append(reason)
            if reason.decision > decision:
                decision = reason.decision
    return Assessment(decision, tuple(reasons))
