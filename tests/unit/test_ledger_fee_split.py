"""The user's fee split in the ledger: the payout partner's own fee owed to the partner, the rest
our margin; every entry still balances, a failed payout reverses both, and with no partner fee
the entries are what they were before the split (the whole fee is our revenue)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain.ledger import Account, UnbalancedEntry, balances, entry_for
from core.domain.recovery import RecoveryEvent as E

A = Account


@st.composite
def amounts(draw):
    debited = draw(st.integers(2, 10**9))
    fee = draw(st.integers(0, debited - 1))
    partner = draw(st.integers(0, debited))
    return debited, fee, partner


@given(amounts())
def test_the_fee_is_split_into_the_partners_fee_and_our_margin_and_every_entry_balances(figures):
    debited, fee, partner = figures
    entries = [
        entry_for("r", event, debited_fen=debited, fee_fen=fee, partner_fee_fen=partner)
        for event in (E.DEBIT_CONFIRMED, E.START_PAYOUT, E.PAYOUT_CONFIRMED)
    ]
    totals = balances(e for e in entries if e is not None)
    assert totals.get(A.PARTNER_FEES_PAYABLE, 0) == -partner
    assert totals.get(A.FEE_REVENUE, 0) == -(fee - partner)  # a loss (a debit) when the partner charges more
    assert totals[A.PAYOUTS_SETTLED] == -(debited - fee)
    assert sum(totals.values()) == 0


@given(amounts())
def test_a_failed_payout_reverses_the_partners_fee_and_the_margin(figures):
    debited, fee, partner = figures
    events = (E.DEBIT_CONFIRMED, E.START_PAYOUT, E.PAYOUT_FAILED)
    entries = [entry_for("r", e, debited_fen=debited, fee_fen=fee, partner_fee_fen=partner) for e in events]
    totals = balances(e for e in entries if e is not None)
    assert totals.get(A.PARTNER_FEES_PAYABLE, 0) == 0 and totals.get(A.FEE_REVENUE, 0) == 0
    assert totals[A.CUSTOMER_PAYABLE] == -debited


@given(amounts())
def test_without_a_partner_fee_the_whole_fee_is_our_revenue_as_before(figures):
    debited, fee, _ = figures
    entry = entry_for("r", E.START_PAYOUT, debited_fen=debited, fee_fen=fee)
    assert entry is not None
    assert {p.account for p in entry.postings} <= {A.CUSTOMER_PAYABLE, A.PAYOUTS_IN_FLIGHT, A.FEE_REVENUE}
    assert balances([entry]).get(A.FEE_REVENUE, 0) == -fee


def test_a_partner_fee_outside_the_transaction_is_refused():
    for partner in (-1, 10_001):
        with pytest.raises(UnbalancedEntry):
            entry_for("r", E.START_PAYOUT, debited_fen=10_000, fee_fen=100, partner_fee_fen=partner)
