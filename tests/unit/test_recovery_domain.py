"""The recovery state machine, the ledger and the audit chain, as pure rules; a hypothesis
stateful test walks random event sequences through all three."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from core.domain.audit import GENESIS, chain_hash, first_broken
from core.domain.ledger import (
    LEDGER_EVENTS,
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
from core.i18n import LANGUAGES, load_messages

S, E = RecoveryState, RecoveryEvent

HAPPY = [E.APPROVE, E.START_DEBIT, E.DEBIT_CONFIRMED, E.START_PAYOUT, E.PAYOUT_CONFIRMED]
COMPENSATED = [E.APPROVE, E.START_DEBIT, E.DEBIT_CONFIRMED, E.START_PAYOUT, E.PAYOUT_FAILED, E.REFUND_CONFIRMED]


def walk(events, start=S.CREATED):
    state = start
    for event in events:
        state = next_state(state, event)
    return state


def test_the_happy_path_ends_paid_and_the_compensated_one_refunded():
    assert walk(HAPPY) is S.PAID
    assert walk(COMPENSATED) is S.REFUNDED


@pytest.mark.parametrize("state", sorted(TERMINAL, key=lambda s: s.value))
def test_an_ended_recovery_accepts_no_event(state):
    for event in E:
        with pytest.raises(IllegalTransition):
            next_state(state, event)


def test_cancel_is_refused_once_the_debit_has_started():
    for state in (S.DEBITING, S.DEBITED, S.PAYING):
        with pytest.raises(IllegalTransition) as caught:
            next_state(state, E.CANCEL)
        assert caught.value.params == {"state": state.value, "event": "cancel"}


def test_every_state_is_reachable_and_every_non_terminal_state_can_end():
    reachable, frontier = {S.CREATED}, [S.CREATED]
    while frontier:
        state = frontier.pop()
        for (before, _), after in TRANSITIONS.items():
            if before is state and after not in reachable:
                reachable.add(after)
                frontier.append(after)
    assert reachable == set(S)
    assert all(any(b is s for b, _ in TRANSITIONS) for s in set(S) - TERMINAL)


def test_an_unbalanced_entry_cannot_be_built():
    with pytest.raises(UnbalancedEntry):
        Entry(
            "r1", E.DEBIT_CONFIRMED, (Posting(Account.CARRIER_RECEIVABLE, 100), Posting(Account.CUSTOMER_PAYABLE, -99))
        )
    with pytest.raises(UnbalancedEntry):
        Entry("r1", E.DEBIT_CONFIRMED, (Posting(Account.CARRIER_RECEIVABLE, 0), Posting(Account.CUSTOMER_PAYABLE, 0)))


def test_a_paid_recovery_leaves_the_fee_as_revenue_and_owes_nobody():
    entries = [e for ev in HAPPY if (e := entry_for("r1", ev, debited_fen=50_000, fee_fen=1_250))]
    totals = balances(entries)
    assert totals[Account.CUSTOMER_PAYABLE] == 0 and totals[Account.PAYOUTS_IN_FLIGHT] == 0
    assert totals[Account.FEE_REVENUE] == -1_250 and totals[Account.PAYOUTS_SETTLED] == -48_750
    assert totals[Account.CARRIER_RECEIVABLE] == 50_000
    assert ledger_problems(entries, {"r1": False}) == []


def test_a_refunded_recovery_keeps_no_fee():
    entries = [e for ev in COMPENSATED if (e := entry_for("r1", ev, debited_fen=50_000, fee_fen=1_250))]
    totals = balances(entries)
    assert totals.get(Account.FEE_REVENUE, 0) == 0
    assert totals[Account.CARRIER_RECEIVABLE] + totals[Account.REFUNDS_TO_CARRIER] == 0
    assert ledger_problems(entries, {"r1": False}) == []


def test_the_audit_chain_names_the_first_altered_record():
    records, previous = [], GENESIS
    for i in range(5):
        record = {"n": i, "event": "approve", "actor": "ops.li"}
        stored = chain_hash(previous, record)
        records.append((record, previous, stored))
        previous = stored
    assert first_broken(records) is None
    altered = list(records)
    altered[2] = ({**records[2][0], "actor": "someone"}, records[2][1], records[2][2])
    assert first_broken(altered) == 2
    assert first_broken(records[:1] + records[2:]) == 1  # a removed record


class RecoveryLedgerMachine(RuleBasedStateMachine):
    """Random events against one recovery at a time: illegal ones change nothing; legal ones
    write balanced entries; once every recovery has ended, nobody is owed anything."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, RecoveryState] = {}
        self.amounts: dict[str, tuple[int, int]] = {}
        self.entries: list[Entry] = []

    @rule(debited=st.integers(min_value=2, max_value=10**7), fee_share=st.integers(min_value=0, max_value=99))
    def create(self, debited, fee_share):
        rid = f"r{len(self.states)}"
        self.states[rid] = S.CREATED
        self.amounts[rid] = (debited, debited * fee_share // 100)

    @precondition(lambda self: self.states)
    @rule(data=st.data(), event=st.sampled_from(list(E)))
    def apply(self, data, event):
        rid = data.draw(st.sampled_from(sorted(self.states)))
        before = self.states[rid]
        try:
            after = next_state(before, event)
        except IllegalTransition:
            assert (before, event) not in TRANSITIONS
            return
        debited, fee = self.amounts[rid]
        entry = entry_for(rid, event, debited_fen=debited, fee_fen=fee)
        if entry is not None:
            self.entries.append(entry)
        self.states[rid] = after

    @invariant()
    def every_entry_balances(self):
        assert ledger_problems(self.entries) == []

    @invariant()
    def money_is_owed_exactly_while_held(self):
        owed = -balances(self.entries).get(Account.CUSTOMER_PAYABLE, 0) - balances(self.entries).get(
            Account.PAYOUTS_IN_FLIGHT, 0
        )
        expected = 0
        for rid, state in self.states.items():
            debited, fee = self.amounts[rid]
            if state in (S.DEBITED, S.REFUNDING):
                expected += debited
            elif state is S.PAYING:
                expected += debited - fee
        assert owed == expected


TestRecoveryLedgerMachine = RecoveryLedgerMachine.TestCase


def test_every_event_the_ledger_can_hold_is_named_in_both_languages():
    """A recovery's ledger table showed the raw key `event.correction` (a correcting entry)."""
    booking = {e.value for e in RecoveryEvent if entry_for("r", e, debited_fen=1_000, fee_fen=10) is not None}
    assert booking < set(LEDGER_EVENTS) and "correction" in LEDGER_EVENTS  # nothing books outside the list
    for lang in LANGUAGES:
        messages = load_messages(lang)
        assert [e for e in LEDGER_EVENTS if f"event.{e}" not in messages] == [], lang
