"""Double-entry bookkeeping in integer fen. An entry's postings sum to zero; entries are never
changed once written; every balance is derived from entries. Checks are plain functions that
return a list of problems (beancount's habit), and `Entry` cannot be built unbalanced.

Signs: a positive amount is a debit, a negative one a credit.

    carrier_receivable  what a carrier owes us for balance it debited (asset)
    customer_payable    what we owe the customer for a debited balance (liability)
    payouts_in_flight   handed to a payout partner, not yet confirmed (liability)
    payouts_settled     what partners have paid customers (the payouts' clearing account)
    fee_revenue         our fees (income)
    refunds_to_carrier  balance the carrier put back: the contra account of carrier_receivable,
                        so what a carrier still owes is the two netted
    reconciliation_differences
                        what a partner's statement moved beyond (or short of) what we booked,
                        put right by a correcting entry an operator and a second one agreed to
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.domain.recovery import RecoveryEvent
from core.errors import PortalError


class UnbalancedEntry(PortalError):
    key = "error.ledger.unbalanced"


class Account(enum.Enum):
    CARRIER_RECEIVABLE = "carrier_receivable"
    CUSTOMER_PAYABLE = "customer_payable"
    PAYOUTS_IN_FLIGHT = "payouts_in_flight"
    PAYOUTS_SETTLED = "payouts_settled"
    FEE_REVENUE = "fee_revenue"
    REFUNDS_TO_CARRIER = "refunds_to_carrier"
    RECONCILIATION_DIFFERENCES = "reconciliation_differences"


@dataclass(frozen=True)
class Posting:
    account: Account
    amount_fen: int  # debit > 0, credit < 0


@dataclass(frozen=True)
class Entry:
    recovery_id: str
    event: RecoveryEvent
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "postings", tuple(self.postings))  # immutable, whatever it was given
        problems = entry_problems(self)
        if problems:
            raise UnbalancedEntry("; ".join(problems), problems=problems)


def entry_problems(entry: Entry) -> list[str]:
    problems = []
    if len(entry.postings) < 2:
        problems.append("an entry needs at least two postings")
    for posting in entry.postings:
        if isinstance(posting.amount_fen, bool) or not isinstance(posting.amount_fen, int):
            problems.append(f"{posting.account.value}: amounts are integer fen")
        elif posting.amount_fen == 0:
            problems.append(f"{posting.account.value}: a zero posting says nothing")
    if not problems and sum(p.amount_fen for p in entry.postings) != 0:
        problems.append(f"postings sum to {sum(p.amount_fen for p in entry.postings)} fen, not 0")
    return problems


def balances(entries: Iterable[Entry]) -> dict[Account, int]:
    totals: dict[Account, int] = defaultdict(int)
    for entry in entries:
        for posting in entry.postings:
            totals[posting.account] += posting.amount_fen
    return dict(totals)


def _pair(debit: Account, credit: Account, fen: int) -> tuple[Posting, Posting]:
    return Posting(debit, fen), Posting(credit, -fen)


def entry_for(recovery_id: str, event: RecoveryEvent, *, debited_fen: int, fee_fen: int) -> Entry | None:
    """The bookkeeping of a transition, or None when the transition moves no money.

    - debit_confirmed: the carrier owes us the balance; we owe it to the customer.
    - start_payout: the customer's share goes to the payout partner, our fee to revenue.
    - payout_confirmed: the partner has paid the customer.
    - payout_failed: the partner returned it; the customer is owed the whole balance back.
    - refund_confirmed: the carrier has put the balance back; nothing is owed either way.
    """
    if not 0 <= fee_fen < debited_fen:
        raise UnbalancedEntry("the fee must be below the debited amount")
    paid_out = debited_fen - fee_fen
    postings: tuple[Posting, ...]
    if event is RecoveryEvent.DEBIT_CONFIRMED:
        postings = _pair(Account.CARRIER_RECEIVABLE, Account.CUSTOMER_PAYABLE, debited_fen)
    elif event is RecoveryEvent.START_PAYOUT:
        postings = (
            Posting(Account.CUSTOMER_PAYABLE, debited_fen),
            Posting(Account.PAYOUTS_IN_FLIGHT, -paid_out),
            *((Posting(Account.FEE_REVENUE, -fee_fen),) if fee_fen else ()),
        )
    elif event is RecoveryEvent.PAYOUT_CONFIRMED:
        postings = _pair(Account.PAYOUTS_IN_FLIGHT, Account.PAYOUTS_SETTLED, paid_out)
    elif event is RecoveryEvent.PAYOUT_FAILED:
        postings = (
            Posting(Account.PAYOUTS_IN_FLIGHT, paid_out),
            *((Posting(Account.FEE_REVENUE, fee_fen),) if fee_fen else ()),
            Posting(Account.CUSTOMER_PAYABLE, -debited_fen),
        )
    elif event is RecoveryEvent.REFUND_CONFIRMED:
        postings = (
            Posting(Account.CUSTOMER_PAYABLE, debited_fen),
            Posting(Account.REFUNDS_TO_CARRIER, -debited_fen),
        )
    else:
        return None
    return Entry(recovery_id, event, postings)


def ledger_problems(entries: Iterable[Entry], open_recoveries: Mapping[str, bool] | None = None) -> list[str]:
    """Checks over a whole ledger: every entry balanced (re-checked), and once quiet nothing is
    owed to a customer or held by a payout partner."""
    problems: list[str] = []
    listed = list(entries)
    for i, entry in enumerate(listed):
        problems.extend(f"entry {i} ({entry.recovery_id}): {p}" for p in entry_problems(entry))
    if open_recoveries is not None and not any(open_recoveries.values()):
        totals = balances(listed)
        for account in (Account.CUSTOMER_PAYABLE, Account.PAYOUTS_IN_FLIGHT):
            if totals.get(account, 0):
                problems.append(f"{account.value} is {totals[account]} fen with no recovery open")
    return problems
