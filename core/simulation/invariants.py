"""The promises of the recovery engine, checked against the database and against what the
partner sandboxes themselves recorded: every ledger entry balances; no partner moved money for
something that is no recovery's, nor twice for one; once nothing is left to do, every recovery
has ended, nothing is held in flight and the carrier's debits equal payouts + refunds + fees;
the ledger's settled payouts equal what the partners paid; a recovery is paid exactly when its
partner paid; a number's balance moved by its debits and refunds only; the audit chain holds;
and every partner's settlement statement of every day, written in its dialect and read back,
reconciles with our books without a break (a payout settled just before midnight and booked by
us just after is a timing difference, which the next day's statement clears)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel import col, select

from core.adapters.sandbox.carrier import Record
from core.adapters.sandbox.payouts import PayoutRecord
from core.domain.ledger import Account
from core.domain.reconciliation import BreakKind, match
from core.domain.recovery import TERMINAL, RecoveryState
from core.domain.statements import parse_statement, write_statement
from core.persistence.tables import LedgerPosting, OutboxMessage, Recovery, RecoveryTransition
from core.persistence.uow import UnitOfWork
from core.services.audit import verify_audit_chain
from core.services.reconciliation_books import our_bookings
from core.services.recovery_worker import reference
from core.simulation.rig import Rig
from core.statement_dialect_files import dialect_for

REFERENCE_KINDS = ("carrier_debit", "payout", "carrier_refund")


@dataclass
class Books:
    """What the database holds after a run, read once."""

    rows: dict[str, Recovery]
    debited_ids: set[str]
    open_messages: int
    entries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    accounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def by_reference(self) -> dict[str, Recovery]:
        return {reference(r.id, kind): r for r in self.rows.values() for kind in REFERENCE_KINDS}


@dataclass
class PartnerRecords:
    """What the sandboxes themselves recorded as done."""

    debits: list[Record]
    refunds: list[Record]
    paid: list[PayoutRecord]


def read_books(rig: Rig) -> Books:
    with UnitOfWork(rig.engine) as uow:
        rows = {r.id: r for r in uow.session.exec(select(Recovery)).all()}
        postings = uow.session.exec(select(LedgerPosting)).all()
        debited = select(RecoveryTransition).where(RecoveryTransition.event == "debit_confirmed")
        debited_ids = {t.recovery_id for t in uow.session.exec(debited)}
        open_messages = len(uow.session.exec(select(OutboxMessage).where(col(OutboxMessage.done_at).is_(None))).all())
    books = Books(rows, debited_ids, open_messages)
    for posting in postings:
        books.entries[posting.entry_id] += posting.amount_fen
        books.accounts[posting.account] += posting.amount_fen
    return books


def read_partners(rig: Rig) -> PartnerRecords:
    return PartnerRecords(
        debits=[d for d in rig.carrier.debits.values() if d.status == "done"],
        refunds=[r for r in rig.carrier.refunds.values() if r.status == "done"],
        paid=[p for book in rig.payouts.records.values() for p in book.values() if p.status(float("inf")) == "paid"],
    )


def check_invariants(rig: Rig, opening: dict[str, int] | None = None) -> list[str]:
    """Every broken promise, in words (an empty list: the run kept them all). `opening` is each
    number's balance before the run, when the caller knows it."""
    books, partners = read_books(rig), read_partners(rig)
    quiet = not books.open_messages and not rig.payouts.pending_notifications()
    problems = [f"ledger entry {e} sums to {total} fen" for e, total in books.entries.items() if total]
    problems += partner_records_owned_once(books, partners)
    if quiet:
        problems += everything_ended(books)
    problems += money_adds_up(books, partners, quiet=quiet)
    problems += paid_exactly_when_the_partner_paid(books, partners)
    if opening is not None:
        problems += balances_moved_by_debits_and_refunds(rig, partners, opening)
    if quiet:
        problems += statements_agree(rig)
    checked, broken = verify_audit_chain(rig.engine)
    if broken is not None:
        problems.append(f"audit chain broken at record {broken} of {checked}")
    return problems


def partner_records_owned_once(books: Books, partners: PartnerRecords) -> list[str]:
    by_ref, problems = books.by_reference(), []
    for label, records in (("debited", partners.debits), ("refunded", partners.refunds), ("paid", partners.paid)):
        seen: dict[str, int] = defaultdict(int)
        for record in records:
            owner = by_ref.get(record.reference)
            if owner is None:
                problems.append(f"a partner {label} {record.reference}, which is no recovery's")
                continue
            seen[owner.id] += 1
        problems += [f"recovery {rid} {label} {n} times" for rid, n in seen.items() if n > 1]
    return problems


def everything_ended(books: Books) -> list[str]:
    """With nothing left to do: every recovery ended, a debited one paid or refunded, and
    nothing held for a customer or in flight."""
    problems = []
    for rid, row in books.rows.items():
        state = RecoveryState(row.state)
        if rid in books.debited_ids and state not in (RecoveryState.PAID, RecoveryState.REFUNDED):
            problems.append(f"recovery {rid} was debited but is {state.value}, not paid or refunded")
        if state not in TERMINAL:
            problems.append(f"recovery {rid} is still {state.value} with nothing left to do")
    for account in (Account.CUSTOMER_PAYABLE, Account.PAYOUTS_IN_FLIGHT):
        if books.accounts.get(account.value, 0):
            problems.append(f"{account.value} holds {books.accounts[account.value]} fen with every recovery ended")
    return problems


def _total(records: Iterable[Record] | Iterable[PayoutRecord]) -> int:
    return sum(record.amount_fen for record in records)


def money_adds_up(books: Books, partners: PartnerRecords, *, quiet: bool) -> list[str]:
    by_ref, problems = books.by_reference(), []
    fees = sum(books.rows[by_ref[p.reference].id].fee_fen for p in partners.paid if p.reference in by_ref)
    debited, refunded, paid_out = _total(partners.debits), _total(partners.refunds), _total(partners.paid)
    if quiet and debited != paid_out + refunded + fees:
        problems.append(f"carrier debits {debited} != payouts {paid_out} + refunds {refunded} + fees {fees}")
    settled = -books.accounts.get(Account.PAYOUTS_SETTLED.value, 0)
    if settled != paid_out:
        problems.append(f"the ledger settled {settled} fen; partners paid {paid_out}")
    return problems


def paid_exactly_when_the_partner_paid(books: Books, partners: PartnerRecords) -> list[str]:
    paid_refs = {p.reference for p in partners.paid}
    problems = []
    for row in books.rows.values():
        state = RecoveryState(row.state)
        partner_paid = reference(row.id, "payout") in paid_refs
        if (state is RecoveryState.PAID) != partner_paid:
            problems.append(
                f"recovery {row.id} is {state.value} but the partner {'paid' if partner_paid else 'did not pay'}"
            )
    return problems


def balances_moved_by_debits_and_refunds(rig: Rig, partners: PartnerRecords, opening: dict[str, int]) -> list[str]:
    problems = []
    for phone, start in opening.items():
        moved = _total(d for d in partners.debits if d.msisdn == phone) - _total(
            r for r in partners.refunds if r.msisdn == phone
        )
        if rig.carrier.balances.get(phone, start) != start - moved:
            problems.append("a number's balance moved by more than its debits and refunds")
    return problems


def statements_agree(rig: Rig) -> list[str]:
    """Every partner's statement of every day it did something, against our books."""
    book = rig.payouts.book
    if book is None:
        return []
    problems = []
    for partner, days in sorted(book.days().items()):
        dialect = dialect_for(partner)
        statements = {
            day: parse_statement(write_statement(book.statement_rows(partner, day, until=math.inf), dialect), dialect)
            for day in sorted(days)
        }
        listed = {
            day: {(r.kind, r.reference) for r in s.rows if r.status == "success"} for day, s in statements.items()
        }
        with UnitOfWork(rig.engine) as uow:
            for day, statement in statements.items():
                ours = our_bookings(uow, partner, day=day)
                keys = {(r.kind, r.reference) for r in statement.rows}
                elsewhere = our_bookings(uow, partner, keys=keys - ours.keys())
                stated = frozenset(k for other, seen in listed.items() if other != day for k in seen)
                problems += [
                    f"{partner} {day}: {b.kind.value} {b.reference} ours={b.ours_fen} theirs={b.theirs_fen}"
                    for b in match(statement, ours, elsewhere, stated).breaks
                    if b.kind is not BreakKind.TIMING  # cleared by the other day's statement, also read here
                ]
    return problems
