"""The books as files: beancount and CSV (`BooksService.export`), and how the ledger's accounts
are named in beancount.

Beancount has five roots; the ledger's accounts (core.domain.ledger) go under them as follows:

    carrier_receivable   Assets:Receivable:Carriers         what carriers owe us for balance debited
    refunds_to_carrier   Assets:Receivable:Carrier-Refunds  its contra account: netted with the one
                                                            above, what a carrier still owes
    customer_payable     Liabilities:Payable:Customers      what we owe customers
    payouts_in_flight    Liabilities:Payouts:In-Flight      handed to a payout partner, unconfirmed
    payouts_settled      Liabilities:Payouts:Settled        what partners paid customers for us (a
                                                            credit: the clearing account of payouts,
                                                            until the partners are settled with)
    fee_revenue          Income:Fees                        our margin: users' fees less partners' fees
    partner_fees_payable Liabilities:Payable:Partner-Fees   the payout partners' fees we owe them
    reconciliation_differences
                         Expenses:Reconciliation-Differences  what partners' statements moved
                                                            beyond (or short of) what we booked

An account the ledger gains later keeps its name, turned into beancount's form (words
capitalised, joined by hyphens), under the root its name suggests: *receivable* Assets,
*payable* / *in_flight* Liabilities, *revenue* / *income* Income, *difference* / *expense* /
*loss* Expenses (a `write_off_loss`: Expenses:Write-Off-Loss); any other
under Equity:Unclassified, where a reader sees it needs a home. Opening balances are posted
against Equity:Opening-Balances.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case
from sqlalchemy.sql.elements import ColumnElement

from core.domain.calendar import shanghai_day
from core.domain.recovery import RecoveryEvent
from core.money import to_yuan
from core.services.recovery_worker import reference

CURRENCY = "CNY"
OPENING = "Equity:Opening-Balances"
BEANCOUNT_ACCOUNTS: Mapping[str, str] = {
    "carrier_receivable": "Assets:Receivable:Carriers",
    "refunds_to_carrier": "Assets:Receivable:Carrier-Refunds",
    "customer_payable": "Liabilities:Payable:Customers",
    "payouts_in_flight": "Liabilities:Payouts:In-Flight",
    "payouts_settled": "Liabilities:Payouts:Settled",
    "fee_revenue": "Income:Fees",
    "partner_fees_payable": "Liabilities:Payable:Partner-Fees",
    "reconciliation_differences": "Expenses:Reconciliation-Differences",
}
#: The root an account added later goes under, by a word in its name (the first that matches).
_ROOT_BY_WORD = (
    ("receivable", "Assets"),
    ("payable", "Liabilities"),
    ("in_flight", "Liabilities"),
    ("revenue", "Income"),
    ("income", "Income"),
    ("difference", "Expenses"),
    ("expense", "Expenses"),
    ("loss", "Expenses"),
)
#: The partner call an entry's event answers (or starts): our reference for the partner is that
#: call's (`core.services.recovery_worker.reference`). Other events call no partner.
CALL_OF_EVENT: Mapping[str, str] = {
    RecoveryEvent.DEBIT_CONFIRMED.value: "carrier_debit",
    RecoveryEvent.START_PAYOUT.value: "payout",
    RecoveryEvent.PAYOUT_CONFIRMED.value: "payout",
    RecoveryEvent.PAYOUT_FAILED.value: "payout",
    RecoveryEvent.REFUND_CONFIRMED.value: "carrier_refund",
}
#: Entries written at the same moment (one transaction moving a recovery twice, or a simulated
#: clock) in the order their events happen to a recovery; events added later come after these.
EVENT_ORDER: Mapping[str, int] = {event.value: i for i, event in enumerate(RecoveryEvent)}
CSV_HEADER = ("date", "entry", "recovery", "event", "account", "amount_yuan")
_SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class PostingRow:
    """One posting as the exports read it."""

    entry_id: str
    recovery_id: str
    event: str
    account: str
    amount_fen: int
    at: dt.datetime


def event_rank(event: Any) -> ColumnElement[int]:
    """An SQL expression ranking an event column by `EVENT_ORDER`, to order entries of one moment."""
    return case(EVENT_ORDER, value=event, else_=len(EVENT_ORDER))


def yuan(fen: int) -> str:
    """-1234.50: yuan with two decimals, no grouping (as beancount and spreadsheets read it)."""
    return f"{to_yuan(fen):f}"


def partner_reference(recovery_id: str, event: str) -> str:
    """Our reference for the partner call behind an entry, or "" for an event that calls none."""
    kind = CALL_OF_EVENT.get(event)
    return reference(recovery_id, kind) if kind is not None else ""


def beancount_account(name: str) -> str:
    """The beancount name of a ledger account (see the module's docstring)."""
    if name in BEANCOUNT_ACCOUNTS:
        return BEANCOUNT_ACCOUNTS[name]
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]
    leaf = "-".join(w[:1].upper() + w[1:] for w in words) or "Unnamed"
    if not leaf[0].isupper() and not leaf[0].isdigit():
        leaf = "X" + leaf
    lowered = name.lower()
    root = next((root for word, root in _ROOT_BY_WORD if word in lowered), "Equity:Unclassified")
    return f"{root}:{leaf}"


def beancount_names(accounts: Iterable[str]) -> dict[str, str]:
    """Each ledger account's beancount name, told apart when two would read the same."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for account in sorted(set(accounts)):
        name, n = beancount_account(account), 1
        while name in taken or name == OPENING:
            n += 1
            name = f"{beancount_account(account)}-{n}"
        taken.add(name)
        out[account] = name
    return out


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _posting(account: str, fen: int) -> str:
    return f"  {account:<44} {yuan(fen):>14} {CURRENCY}"


def beancount_text(
    start: dt.date, end: dt.date, opening: Mapping[str, int], postings: Sequence[PostingRow], closing: Mapping[str, int]
) -> str:
    """The period as a beancount file: every account opened the day before the period (on or
    before any use), the balances before it as one opening transaction, one transaction per
    ledger entry, and each account's closing balance asserted the day after the period (so
    `bean-check` proves the file adds up to the books)."""
    names = beancount_names([*opening, *(p.account for p in postings), *closing])
    eve = start - dt.timedelta(days=1)
    lines = [
        f'option "title" {_quoted(f"Ledger {start.isoformat()} to {end.isoformat()}")}',
        f'option "operating_currency" "{CURRENCY}"',
        "",
    ]
    carried = {account: fen for account, fen in sorted(opening.items()) if fen}
    lines += [f"{eve.isoformat()} open {names[a]} {CURRENCY}" for a in sorted(names)]
    if carried:
        lines += [f"{eve.isoformat()} open {OPENING} {CURRENCY}", ""]
        lines.append(f'{eve.isoformat()} * "Opening balances" {_quoted(f"postings before {start.isoformat()}")}')
        for account, fen in carried.items():
            lines += [_posting(names[account], fen), _posting(OPENING, -fen)]
    for entry in _entries(postings):
        first = entry[0]
        ref = partner_reference(first.recovery_id, first.event)
        lines += [
            "",
            f"{shanghai_day(first.at).isoformat()} * {_quoted(f'{first.event} {first.recovery_id[:8]}')}",
            f"  entry: {_quoted(first.entry_id)}",
            f"  recovery: {_quoted(first.recovery_id)}",
            *([f"  reference: {_quoted(ref)}"] if ref else []),
            f"  event: {_quoted(first.event)}",
            *(_posting(names[p.account], p.amount_fen) for p in entry),
        ]
    after = (end + dt.timedelta(days=1)).isoformat()
    lines.append("")
    lines += [f"{after} balance {names[a]:<44} {yuan(closing.get(a, 0)):>14} {CURRENCY}" for a in sorted(names)]
    return "\n".join(lines) + "\n"


def _entries(postings: Sequence[PostingRow]) -> list[list[PostingRow]]:
    """The postings grouped by entry, in the order given (the query orders by time, then entry)."""
    grouped: dict[str, list[PostingRow]] = {}
    for p in postings:
        grouped.setdefault(p.entry_id, []).append(p)
    return list(grouped.values())


def csv_text(postings: Sequence[PostingRow]) -> str:
    """One row per posting; text a spreadsheet would run as a formula is quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for p in postings:
        row = [shanghai_day(p.at).isoformat(), p.entry_id, p.recovery_id, _cell(p.event), _cell(p.account)]
        writer.writerow([*row, yuan(p.amount_fen)])
    return out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_SPREADSHEET_FORMULA) else value
