"""How a recovery is cut into partner transactions, and the limits it must stay within.

A channel's per-transaction limit splits an amount into linked transactions (largest first);
a remainder below the channel's minimum is refused rather than silently left behind, so the
user always recovers exactly what they asked for. The portal's own limits and the channel's
daily and monthly ones are checked against what the user and the number already recovered
(Asia/Shanghai days and months).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.carriers import Carrier
from core.domain.catalog import Channel, ServesRule
from core.domain.quotes import Reason, transaction_size
from core.errors import InputError


class LimitExceeded(InputError):
    key = "error.recovery.limit"


@dataclass(frozen=True)
class Part:
    debit_fen: int
    fee_fen: int


def plan_parts(channel: Channel, amount_fen: int) -> list[Part]:
    """The linked transactions for `amount_fen`, each with its own fee."""
    minimum = channel.limits.min_transaction_fen
    if amount_fen < minimum:
        raise LimitExceeded("below the channel's minimum", key="error.recovery.below_minimum", minimum_fen=minimum)
    if channel.limits.per_month_fen is not None and amount_fen > channel.limits.per_month_fen:
        raise LimitExceeded(
            "above the channel's monthly limit",
            key="error.recovery.channel_month",
            limit_fen=channel.limits.per_month_fen,
        )
    size = transaction_size(channel, None) or amount_fen
    full, remainder = divmod(amount_fen, size)
    if remainder and remainder < minimum:
        raise LimitExceeded(
            "the last transaction would be below the channel's minimum",
            key="error.recovery.remainder",
            size_fen=size,
            minimum_fen=minimum,
        )
    amounts = [size] * full + ([remainder] if remainder else [])
    parts = [Part(amount, channel.fee.fee(amount)) for amount in amounts]
    for part in parts:
        if part.fee_fen >= part.debit_fen:
            raise LimitExceeded("the fee would eat the whole amount", key="error.recovery.fee", minimum_fen=minimum)
    return parts


@dataclass(frozen=True)
class PortalLimits:
    per_recovery_fen: int
    per_day_fen: int  # per user, and per number
    per_month_fen: int


@dataclass(frozen=True)
class Usage:
    """What is already committed (recovering or recovered) today and this month."""

    user_day: int
    user_month: int
    number_day: int
    number_month: int
    number_channel_day: int
    number_channel_month: int


def limit_problems(amount_fen: int, channel: Channel, limits: PortalLimits, used: Usage) -> list[Reason]:
    """Every limit the amount would break, as reasons to show; empty when it fits."""
    problems = []
    if amount_fen > limits.per_recovery_fen:
        problems.append(Reason("error.recovery.limit.per_recovery", {"limit_fen": limits.per_recovery_fen}))
    checks = (
        ("error.recovery.limit.user_day", limits.per_day_fen, used.user_day),
        ("error.recovery.limit.user_month", limits.per_month_fen, used.user_month),
        ("error.recovery.limit.number_day", limits.per_day_fen, used.number_day),
        ("error.recovery.limit.number_month", limits.per_month_fen, used.number_month),
        ("error.recovery.limit.channel_day", channel.limits.per_day_fen, used.number_channel_day),
        ("error.recovery.limit.channel_month", channel.limits.per_month_fen, used.number_channel_month),
    )
    for key, limit, already in checks:
        if limit is not None and already + amount_fen > limit:
            problems.append(Reason(key, {"limit_fen": limit, "left_fen": max(0, limit - already)}))
    return problems


def serves(channel: Channel, carrier: Carrier) -> bool:
    """Whether the channel takes balance from this carrier. A bound card's carrier cannot be
    known here, so that rule is left to the channel (its refusal comes back as a failed debit)."""
    if channel.serves.rule is ServesRule.BOUND_CARD_CARRIER:
        return True
    return carrier in channel.serves.carriers
