"""The quote arithmetic over many balances at once (numpy int64), for charts and pricing.

Same rules, same integer rounding as `quotes.quote_channel`; a property test keeps the two in
step. Eligibility that does not depend on the balance (carrier, credit limit) is decided once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.domain.catalog import Channel, NoFee, TieredPercentFee
from core.domain.quotes import QuoteRequest, ineligibility, payout_value, transaction_size
from core.money import PPM, Rounding


@dataclass(frozen=True)
class BatchQuote:
    channel: Channel
    eligible: np.ndarray  # bool
    recoverable_fen: np.ndarray
    transactions: np.ndarray
    fee_fen: np.ndarray
    hidden_cost_fen: np.ndarray
    net_fen: np.ndarray


def _rounded(product: np.ndarray, rounding: Rounding) -> np.ndarray:
    if rounding is Rounding.DOWN:
        return product // PPM
    if rounding is Rounding.UP:
        return -((-product) // PPM)
    return (product + PPM // 2) // PPM


def fee_per_transaction(fee_rule: TieredPercentFee | NoFee, amounts: np.ndarray) -> np.ndarray:
    if isinstance(fee_rule, NoFee):
        return np.zeros_like(amounts)
    bounds = np.array([t.up_to_fen for t in fee_rule.tiers[:-1]], dtype=np.int64)
    rates = np.array([t.rate_ppm for t in fee_rule.tiers], dtype=np.int64)
    rate = rates[np.searchsorted(bounds, amounts, side="left")]
    fee = np.maximum(_rounded(amounts * rate, fee_rule.rounding), fee_rule.floor_fen)
    if fee_rule.cap_fen is not None:
        fee = np.minimum(fee, fee_rule.cap_fen)
    return np.minimum(fee, amounts)


def batch_quote(channel: Channel, request: QuoteRequest, balances_fen: np.ndarray) -> BatchQuote:
    """Quote `channel` for every balance in `balances_fen`; `request.balance_fen` is ignored."""
    balances = np.asarray(balances_fen, dtype=np.int64)
    zeros = np.zeros_like(balances)
    limits = channel.limits
    size = transaction_size(channel, request.credit_limit_fen)
    if ineligibility(channel, request) is not None or (size is not None and size < limits.min_transaction_fen):
        return BatchQuote(channel, np.zeros(balances.shape, dtype=bool), zeros, zeros, zeros, zeros, zeros)

    ceiling = balances
    if limits.share_of_balance_ppm is not None:
        ceiling = (balances * limits.share_of_balance_ppm) // PPM
    if limits.per_month_fen is not None:
        ceiling = np.minimum(ceiling, limits.per_month_fen)

    minimum = limits.min_transaction_fen
    if size is None:  # one transaction of whatever the channel takes
        recoverable = np.where(ceiling >= minimum, ceiling, 0)
        transactions = (recoverable > 0).astype(np.int64)
    else:
        full, remainder = np.divmod(ceiling, size)
        remainder = np.where(remainder >= minimum, remainder, 0)
        recoverable = full * size + remainder
        transactions = full + (remainder > 0)
    return _priced(channel, request, size, recoverable, transactions)


def batch_fee(fee_rule: TieredPercentFee | NoFee, size: int | np.ndarray | None, recoverable: np.ndarray) -> np.ndarray:
    """The fee of recovering `recoverable` fen: one transaction (`size` None), or full transactions
    of `size` and the rest (fewer than `size` fen), as `quotes.quote_channel` splits it. `size`
    may differ user by user (an array: `one_transaction_sizes` stands for None where it does)."""
    if size is None:
        return fee_per_transaction(fee_rule, recoverable)
    full, remainder = np.divmod(recoverable, size)
    # full transactions all cost the same fee: one scalar for one size, else one per user
    per_full = fee_rule.fee(size) if isinstance(size, int) else fee_per_transaction(fee_rule, size)
    return full * per_full + np.where(remainder > 0, fee_per_transaction(fee_rule, remainder), 0)


def one_transaction_sizes(recoverable: np.ndarray) -> np.ndarray:
    """Transaction sizes that make `recoverable` one transaction each, for `batch_fee` (where a
    channel has no size of its own): the amount itself (1 where it is nothing)."""
    return np.maximum(recoverable, 1)


def net_of(recoverable: np.ndarray, fee: np.ndarray, value_ppm: int | np.ndarray) -> np.ndarray:
    """What the user gets, valued as the channel pays (`quotes.payout_value`, parts per million)."""
    face = recoverable - fee
    return np.where(value_ppm == PPM, face, (face * value_ppm) // PPM)


def _priced(
    channel: Channel, request: QuoteRequest, size: int | None, recoverable: np.ndarray, transactions: np.ndarray
) -> BatchQuote:
    fee = batch_fee(channel.fee, size, recoverable)
    value_ppm = payout_value(channel, request)
    face = recoverable - fee
    net = face if value_ppm == PPM else (face * value_ppm) // PPM
    return BatchQuote(channel, transactions > 0, recoverable, transactions, fee, face - net, net)
