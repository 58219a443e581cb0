"""Random event sequences over a bundle of recoveries, checked against the transition table and
the ledger: illegal events change nothing, legal ones write exactly their bookkeeping, each
recovery's balances are what its state implies, and once every recovery has ended nobody is
owed anything. Plain properties pin down that `Entry` and `entry_for` refuse bad amounts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from core.domain.ledger import (
    Account,
    Entry,
    Posting,
    UnbalancedEntry,
    balances,
    entry_for,
    ledger_problems,
)
from core.domain.recovery import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    RecoveryEvent,
    RecoveryState,
    next_state,
)

S, E, A = RecoveryState, RecoveryEvent, Account

MAX_DEBITED_FEN = 10_000_000
BEFORE_DEBIT_CONFIRMED = frozenset({S.CREATED, S.REVIEW, S.APPROVED, S.DEBITING, S.REJECTED, S.CANCELLED, S.FAILED})


def allowed_events(state: RecoveryState) -> list[RecoveryEvent]:
    return [event for (before, event) in TRANSITIONS if before is state]


def implied_balances(state: RecoveryState, debited: int, fee: int) -> dict[Account, int]:
    """Nonzero balances of one recovery in `state`, as ledger.py's entries define them."""
    paid_out = debited - fee
    table = {
        S.DEBITED: {A.CARRIER_RECEIVABLE: debited, A.CUSTOMER_PAYABLE: -debited},
        S.PAYING: {A.CARRIER_RECEIVABLE: debited, A.PAYOUTS_IN_FLIGHT: -paid_out, A.FEE_REVENUE: -fee},
        S.PAID: {A.CARRIER_RECEIVABLE: debited, A.PAYOUTS_SETTLED: -paid_out, A.FEE_REVENUE: -fee},
        S.REFUNDING: {A.CARRIER_RECEIVABLE: debited, A.CUSTOMER_PAYABLE: -debited},
        S.REFUNDED: {A.CARRIER_RECEIVABLE: debited, A.REFUNDS_TO_CARRIER: -debited},
    }
    return {account: fen for account, fen in table.get(state, {}).items() if fen}


def nonzero(totals: dict[Account, int]) -> dict[Account, int]:
    return {account: fen for account, fen in totals.items() if fen}


debited_and_fee = st.integers(min_value=1, max_value=MAX_DEBITED_FEN).flatmap(
    lambda debited: st.tuples(st.just(debited), st.integers(min_value=0, max_value=debited - 1))
)


class RecoveriesAndLedger(RuleBasedStateMachine):
    """A bundle of recoveries driven by random events, and the ledger their legal moves write."""

    recoveries = Bundle("recoveries")

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, RecoveryState] = {}
        self.amounts: dict[str, tuple[int, int]] = {}
        self.histories: dict[str, list[RecoveryEvent]] = {}
        self.entries: list[Entry] = []

    @rule(target=recoveries, amounts=debited_and_fee)
    def create_a_recovery(self, amounts):
        rid = f"r{len(self.states)}"
        self.states[rid] = S.CREATED
        self.amounts[rid] = amounts
        self.histories[rid] = []
        return rid

    def apply(self, rid: str, event: RecoveryEvent) -> None:
        before = self.states[rid]
        ledger_before = list(self.entries)
        if (before, event) not in TRANSITIONS:
            with pytest.raises(IllegalTransition) as refused:
                next_state(before, event)
            assert refused.value.params == {"state": before.value, "event": event.value}
            assert self.states[rid] is before
            assert self.entries == ledger_before
            return
        after = next_state(before, event)
        assert after is TRANSITIONS[(before, event)]
        debited, fee = self.amounts[rid]
        entry = entry_for(rid, event, debited_fen=debited, fee_fen=fee)
        if entry is not None:
            assert entry.recovery_id == rid and entry.event is event
            self.entries.append(entry)
        self.states[rid] = after
        self.histories[rid].append(event)

    @rule(rid=recoveries, event=st.sampled_from(list(E)))
    def apply_any_event(self, rid, event):
        self.apply(rid, event)

    @precondition(lambda self: any(state not in TERMINAL for state in self.states.values()))
    @rule(data=st.data())
    def apply_an_allowed_event(self, data):
        rid = data.draw(st.sampled_from(sorted(r for r, s in self.states.items() if s not in TERMINAL)))
        self.apply(rid, data.draw(st.sampled_from(allowed_events(self.states[rid]))))

    @precondition(lambda self: any(state not in TERMINAL for state in self.states.values()))
    @rule(data=st.data())
    def drive_every_open_recovery_to_an_end(self, data):
        for rid in sorted(self.states):
            while self.states[rid] not in TERMINAL:
                self.apply(rid, data.draw(st.sampled_from(allowed_events(self.states[rid]))))

    @invariant()
    def every_entry_is_balanced_in_nonzero_integer_fen(self):
        assert ledger_problems(self.entries) == []
        for entry in self.entries:
            assert sum(p.amount_fen for p in entry.postings) == 0
            assert all(type(p.amount_fen) is int and p.amount_fen != 0 for p in entry.postings)

    @invariant()
    def the_ledger_is_exactly_the_bookkeeping_of_each_recoverys_legal_history(self):
        expected = []
        for rid, history in self.histories.items():
            debited, fee = self.amounts[rid]
            expected.extend(e for ev in history if (e := entry_for(rid, ev, debited_fen=debited, fee_fen=fee)))
        assert sorted(self.entries, key=repr) == sorted(expected, key=repr)

    @invariant()
    def each_recoverys_balances_are_what_its_state_implies(self):
        for rid, state in self.states.items():
            debited, fee = self.amounts[rid]
            own = [entry for entry in self.entries if entry.recovery_id == rid]
            if state in BEFORE_DEBIT_CONFIRMED:
                assert own == []
            assert nonzero(balances(own)) == implied_balances(state, debited, fee)
            totals = dict.fromkeys(A, 0) | balances(own)
            if state is S.DEBITED:
                assert totals[A.CARRIER_RECEIVABLE] == debited and totals[A.CUSTOMER_PAYABLE] == -debited
            if state is S.PAYING:
                assert totals[A.PAYOUTS_IN_FLIGHT] == -(debited - fee)
            if state is S.REFUNDING:
                assert totals[A.CUSTOMER_PAYABLE] == -debited
            if state is S.PAID:
                assert totals[A.CUSTOMER_PAYABLE] == 0 and totals[A.PAYOUTS_IN_FLIGHT] == 0
                assert totals[A.PAYOUTS_SETTLED] == -(debited - fee) and totals[A.FEE_REVENUE] == -fee
                assert totals[A.CARRIER_RECEIVABLE] == debited
            if state is S.REFUNDED:
                assert totals[A.CUSTOMER_PAYABLE] == 0 and totals[A.PAYOUTS_IN_FLIGHT] == 0
                assert totals[A.FEE_REVENUE] == 0
                assert totals[A.CARRIER_RECEIVABLE] + totals[A.REFUNDS_TO_CARRIER] == 0

    @invariant()
    def a_terminal_state_has_no_way_out_and_every_other_state_has_one(self):
        for state in S:
            assert (allowed_events(state) == []) == (state in TERMINAL)
        for state in set(self.states.values()) & TERMINAL:
            for event in E:
                with pytest.raises(IllegalTransition, match="has ended"):
                    next_state(state, event)

    @invariant()
    def once_every_recovery_has_ended_nobody_is_owed_anything(self):
        open_recoveries = {rid: state not in TERMINAL for rid, state in self.states.items()}
        assert ledger_problems(self.entries, open_recoveries=open_recoveries) == []
        if self.states and not any(open_recoveries.values()):
            assert ledger_problems(self.entries, open_recoveries=dict.fromkeys(self.states, False)) == []
            totals = balances(self.entries)
            assert totals.get(A.CUSTOMER_PAYABLE, 0) == 0 and totals.get(A.PAYOUTS_IN_FLIGHT, 0) == 0
            assert all(self.states[rid] in (S.PAID, S.REFUNDED) for rid in {e.recovery_id for e in self.entries})


RecoveriesAndLedger.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEveryDebitedRecoveryEndsPaidOrRefundedWithABalancedLedger = pytest.mark.slow(RecoveriesAndLedger.TestCase)  # ~6 s


accounts = st.sampled_from(list(A))
nonzero_fen = st.integers(min_value=-MAX_DEBITED_FEN, max_value=MAX_DEBITED_FEN).filter(bool)


@given(st.lists(st.tuples(accounts, nonzero_fen), min_size=2, max_size=6).filter(lambda ps: sum(f for _, f in ps)))
def test_an_entry_whose_postings_do_not_sum_to_zero_cannot_be_built(postings):
    with pytest.raises(UnbalancedEntry):
        Entry("r0", E.DEBIT_CONFIRMED, tuple(Posting(account, fen) for account, fen in postings))


@given(accounts, st.sampled_from([0, 1.0, True, "1"]))
def test_an_entry_with_a_zero_or_non_integer_posting_cannot_be_built(account, odd):
    with pytest.raises(UnbalancedEntry):
        Entry("r0", E.DEBIT_CONFIRMED, (Posting(account, odd), Posting(A.CUSTOMER_PAYABLE, -1)))
    with pytest.raises(UnbalancedEntry):
        Entry("r0", E.DEBIT_CONFIRMED, (Posting(account, 1),))


@given(st.lists(st.tuples(accounts, nonzero_fen), min_size=1, max_size=5).filter(lambda ps: sum(f for _, f in ps)))
def test_an_entry_whose_postings_sum_to_zero_is_built(postings):
    closing = Posting(A.CARRIER_RECEIVABLE, -sum(fen for _, fen in postings))
    entry = Entry("r0", E.DEBIT_CONFIRMED, (*(Posting(a, f) for a, f in postings), closing))
    assert ledger_problems([entry]) == []


@given(
    st.sampled_from(list(E)),
    st.integers(min_value=0, max_value=MAX_DEBITED_FEN),
    st.integers(min_value=0, max_value=2 * MAX_DEBITED_FEN),
)
def test_entry_for_refuses_a_fee_that_is_not_below_the_debited_amount(event, debited, excess):
    with pytest.raises(UnbalancedEntry):
        entry_for("r0", event, debited_fen=debited, fee_fen=debited + excess)


@given(st.sampled_from(list(E)), st.integers(min_value=1, max_value=MAX_DEBITED_FEN), st.integers(min_value=1))
def test_entry_for_refuses_a_negative_fee(event, debited, below_zero):
    with pytest.raises(UnbalancedEntry):
        entry_for("r0", event, debited_fen=debited, fee_fen=-below_zero)


@given(st.sampled_from(list(E)), debited_and_fee)
def test_entry_for_writes_a_balanced_entry_or_none_for_every_fee_below_the_debited_amount(event, amounts):
    debited, fee = amounts
    entry = entry_for("r0", event, debited_fen=debited, fee_fen=fee)
    moves_money = {E.DEBIT_CONFIRMED, E.START_PAYOUT, E.PAYOUT_CONFIRMED, E.PAYOUT_FAILED, E.REFUND_CONFIRMED}
    assert (entry is not None) == (event in moves_money)
    if entry is not None:
        assert ledger_problems([entry]) == []
