from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.batch_quotes import batch_fee, batch_quote, net_of, one_transaction_sizes
from core.domain.carriers import Carrier
from core.domain.pricing import scale_fee
from core.domain.quotes import payout_value, quote_channel, transaction_size
from core.money import MAX_BALANCE_FEN, PPM
from tests.support.quotes import make_request


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=MAX_BALANCE_FEN), min_size=1, max_size=40),
    st.sampled_from(list(Carrier)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=PPM)),
)
def test_batch_form_agrees_with_single_quotes_fen_for_fen(catalog, calendar, balances, carrier, credit, value):
    request = make_request(1, carrier, credit_limit_fen=credit, voucher_value_ppm=value, points_value_ppm=value)
    array = np.array(balances, dtype=np.int64)
    for channel in catalog.channels:
        batch = batch_quote(channel, request, array)
        for i, balance in enumerate(balances):
            single = quote_channel(
                channel,
                make_request(
                    1,
                    carrier,
                    balance_fen=balance,
                    credit_limit_fen=credit,
                    voucher_value_ppm=value,
                    points_value_ppm=value,
                ),
                calendar,
            )
            assert bool(batch.eligible[i]) == single.eligible
            got = (
                batch.recoverable_fen[i],
                batch.transactions[i],
                batch.fee_fen[i],
                batch.hidden_cost_fen[i],
                batch.net_fen[i],
            )
            assert tuple(int(x) for x in got) == (
                single.recoverable_fen,
                single.transactions,
                single.fee_fen,
                single.hidden_cost_fen,
                single.net_fen,
            )


def test_batch_over_a_million_balances_keeps_every_fen_accounted(catalog):
    balances = np.arange(1, 1_000_001, dtype=np.int64)
    for channel in catalog.channels:
        b = batch_quote(channel, make_request(1, credit_limit_fen=1_000_000), balances)
        assert np.array_equal(b.fee_fen + b.hidden_cost_fen + b.net_fen, b.recoverable_fen)
        assert np.all(np.diff(b.net_fen) >= 0)  # more balance never yields less


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=MAX_BALANCE_FEN), min_size=1, max_size=40),
    st.sampled_from(list(Carrier)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)),
    st.integers(min_value=0, max_value=3 * PPM),
)
def test_a_quote_priced_again_at_another_fee_is_the_quote_at_that_fee(catalog, balances, carrier, credit, factor_ppm):
    """What a margin curve relies on: changing a channel's fee changes its quotes' fee and net and
    nothing else, so a quote worked out once is priced again at each fee, every user at once
    (`batch_fee` with each user's transaction size, `net_of` with the channel's valuation)."""
    request = make_request(1, carrier, credit_limit_fen=credit)
    array = np.array(balances, dtype=np.int64)
    for channel in catalog.channels:
        other = replace(channel, fee=scale_fee(channel.fee, factor_ppm))
        first, direct = batch_quote(channel, request, array), batch_quote(other, request, array)
        size = transaction_size(channel, credit)
        sizes = one_transaction_sizes(first.recoverable_fen) if size is None else np.full(len(array), size)
        fee = batch_fee(other.fee, sizes, first.recoverable_fen)
        net = net_of(first.recoverable_fen, fee, payout_value(other, request))
        for field in ("eligible", "recoverable_fen", "transactions"):
            assert np.array_equal(getattr(first, field), getattr(direct, field)), field
        assert np.array_equal(fee, direct.fee_fen) and np.array_equal(net, direct.net_fen)
