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


def repriced(quote: BatchQuote, channel: Channel, request: QuoteRequest) -> BatchQuote:
    """`quote`, made by `batch_quote` for `request` on a channel that differs from `channel` in its
    fee alone, as `batch_quote` would make it for `channel`: who may use it, how much and in how
    many transactions do not depend on the fee, so only the fee and what follows from it are
    worked out again (a margin curve prices one offer at many fees)."""
    size = transaction_size(channel, request.credit_limit_fen)
    return _priced(channel, request, size, quote.recoverable_fen, quote.transactions)


def batch_fee(fee_rule: TieredPercentFee | NoFee, size: int | None, recoverable: np.ndarray) -> np.ndarray:
    """The fee of recovering `recoverable` fen: one transaction (`size` None), or full transactions
    of `size` and the rest (fewer than `size` fen), as `quotes.quote_channel` splits it."""
    if size is None:
        return fee_per_transaction(fee_rule, recoverable)
    full, remainder = np.divmod(recoverable, size)  # full transactions all cost the same fee: one scalar
    return full * fee_rule.fee(size) + np.where(remainder > 0, fee_per_transaction(fee_rule, remainder), 0)


def _priced(
    channel: Channel, request: QuoteRequest, size: int | None, recoverable: np.ndarray, transactions: np.ndarray
) -> BatchQuote:
    fee = batch_fee(channel.fee, size, recoverable)
    face = recoverable - fee
    value_ppm = payout_value(channel, request)
    net = face if value_ppm == PPM else (face * value_ppm) // PPM
    return BatchQuote(channel, transactions > 0, recoverable, transactions, fee, face - net, net)
