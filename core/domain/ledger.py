"""Double-entry bookkeeping in integer fen. An entry's postings sum to zero; entries are never
changed once written; every balance is derived from entries. Checks are plain functions that
return a list of problems (beancount's habit), and `Entry` cannot be built unbalanced.

Signs: a positive amount is a debit, a negative one a credit.

    carrier_receivable  what a carrier owes us for balance it debited (asset)
    customer_payable    what we owe the customer for a debited balance (liability)
    payouts_in_flight   handed to a payout partner, not yet confirmed (liability)
    payouts_settled     what partners have paid customers (the payouts' clearing account)
    fee_revenue         our margin (income): what users paid in fees, less the payout partners'
                        fees for those transactions (before the partners' fees were booked
                        apart, the whole fee)
    partner_fees_payable
                        the payout partners' per-transaction fees we owe them (liability), by the
                        cost schedule of the live pricing version when the recovery was submitted
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

#: The event of a correcting entry (core.domain.reconciliation): a second operator agreed to it.
CORRECTION_EVENT = "correction"
#: The transitions that book an entry (`entry_for`); every other moves no money.
BOOKING_EVENTS = (
    RecoveryEvent.DEBIT_CONFIRMED,
    RecoveryEvent.START_PAYOUT,
    RecoveryEvent.PAYOUT_CONFIRMED,
    RecoveryEvent.PAYOUT_FAILED,
    RecoveryEvent.REFUND_CONFIRMED,
)
#: Every event a ledger posting can be written under (each has an `event.<name>` text).
LEDGER_EVENTS = (*(e.value for e in BOOKING_EVENTS), CORRECTION_EVENT)


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
    PARTNER_FEES_PAYABLE = "partner_fees_payable"


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


def _fee_split(fee_fen: int, partner_fee_fen: int, sign: int) -> tuple[Posting, ...]:
    """The user's fee credited (sign -1) or reversed (+1): the partner's fee apart, the rest our
    margin (a loss, on the other side, when the partner charges more than the user paid)."""
    margin = fee_fen - partner_fee_fen
    return (
        *((Posting(Account.PARTNER_FEES_PAYABLE, sign * partner_fee_fen),) if partner_fee_fen else ()),
        *((Posting(Account.FEE_REVENUE, sign * margin),) if margin else ()),
    )


def entry_for(
    recovery_id: str, event: RecoveryEvent, *, debited_fen: int, fee_fen: int, partner_fee_fen: int = 0
) -> Entry | None:
    """The bookkeeping of a transition, or None when the transition moves no money.

    - debit_confirmed: the carrier owes us the balance; we owe it to the customer.
    - start_payout: the customer's share goes to the payout partner; of the user's fee, the
      partner's own fee is owed to the partner and the rest is our margin.
    - payout_confirmed: the partner has paid the customer.
    - payout_failed: the partner returned it (and charges nothing); the customer is owed the
      whole balance back.
    - refund_confirmed: the carrier has put the balance back; nothing is owed either way.
    """
    if not 0 <= fee_fen < debited_fen:
        raise UnbalancedEntry("the fee must be below the debited amount")
    if not 0 <= partner_fee_fen <= debited_fen:
        raise UnbalancedEntry("the partner's fee must be between zero and the debited amount")
    paid_out = debited_fen - fee_fen
    postings: tuple[Posting, ...]
    if event is RecoveryEvent.DEBIT_CONFIRMED:
        postings = _pair(Account.CARRIER_RECEIVABLE, Account.CUSTOMER_PAYABLE, debited_fen)
    elif event is RecoveryEvent.START_PAYOUT:
        postings = (
            Posting(Account.CUSTOMER_PAYABLE, debited_fen),
            Posting(Account.PAYOUTS_IN_FLIGHT, -paid_out),
            *_fee_split(fee_fen, partner_fee_fen, -1),
        )
    elif event is RecoveryEvent.PAYOUT_CONFIRMED:
        postings = _pair(Account.PAYOUTS_IN_FLIGHT, Account.PAYOUTS_SETTLED, paid_out)
    elif event is RecoveryEvent.PAYOUT_FAILED:
        postings = (
            Posting(Account.PAYOUTS_IN_FLIGHT, paid_out),
            *_fee_split(fee_fen, partner_fee_fen, 1),
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
