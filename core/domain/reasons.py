"""What happened to a recovery's money, and why each step happened, as sentences in waiting
(`Reason`) for the person whose recovery it is.

A partner speaks in codes (`insufficient_balance`, `payee_account_closed` ...): the catalog
below names each code we know, and anything else becomes a plain "the partner gave no reason
we can show" — a raw code never reaches a reader. Who made a step decides how its reason is
shown: an operator's reason is their own words; the risk rules' reasons are on the recovery
itself; the engine and the partners speak in codes.
"""

from __future__ import annotations

from core.domain.carriers import Carrier
from core.domain.quotes import Reason
from core.domain.recovery import Outcome, RecoveryEvent
from core.domain.review import review_code
from core.errors import InvalidCarrier

#: Every partner code the portal can explain; each has `reason.partner.<code>` in every locale.
PARTNER_CODES = frozenset(
    {
        # the carrier
        "insufficient_balance",
        "inactive_number",
        "no_such_debit",
        "exceeds_debit",
        "unknown_number",
        "not_a_mobile_number",
        "unknown_segment",
        "carrier_not_served",
        # payout partners
        "payee_rejected",
        "payee_account_closed",
        "payee_limit",
        "risk_control",
    }
)
#: Codes that mean "refused" and nothing more.
SILENT_CODES = frozenset({"refused", "failed", ""})
FALLBACK = Reason("reason.partner.other")
SILENT = Reason("reason.partner.silent")


def partner_reason(code: str) -> Reason:
    """A partner's code in words. `lookup:<code>` (the number lookup before a debit) and
    `carrier_not_served:<carrier>` are understood; an unknown code gets the fallback."""
    code = str(code or "").strip().lower()
    if code.startswith("lookup:"):
        code = code.removeprefix("lookup:")
    name, _, detail = code.partition(":")
    if name == "carrier_not_served":
        try:
            return Reason("reason.partner.carrier_not_served", {"carrier": Carrier.parse(detail).value})
        except InvalidCarrier:
            return Reason("reason.partner.carrier_not_served_unknown")
    if name in PARTNER_CODES and not detail:
        return Reason(f"reason.partner.{name}")
    if name in SILENT_CODES and not detail:
        return SILENT
    return FALLBACK


def why(event: RecoveryEvent, by: str, reason: str) -> Reason | None:
    """The reason to show beside one step of a recovery's timeline; None when the step needs
    none. `by` is who made it: owner | operator | engine | partner."""
    if event in (RecoveryEvent.DEBIT_FAILED, RecoveryEvent.PAYOUT_FAILED):
        return partner_reason(reason)
    if event in (RecoveryEvent.APPROVE, RecoveryEvent.REJECT) and by == "operator":
        code = review_code(reason)
        if code is not None:
            return Reason(f"reason.review.{code}")
        return Reason("reason.operator", {"text": reason}) if event is RecoveryEvent.REJECT else None
    if event in (RecoveryEvent.REJECT, RecoveryEvent.REVIEW) and by == "engine":
        return Reason("reason.risk")  # the risk rules' own reasons are on the recovery
    if event is RecoveryEvent.CANCEL:
        return Reason("reason.cancelled_by_owner" if by == "owner" else "reason.operator", {"text": reason})
    return None


def describe_outcome(outcome: Outcome) -> list[Reason]:
    """What happened to a recovery's money, one sentence per kind of result: received only for
    paid transactions; refunded ones went back to the number; the rest never moved; and what is
    still under way, with what it should pay."""
    lines = []
    if outcome.received_fen:
        lines.append(
            Reason(
                "outcome.received",
                {
                    "net_fen": outcome.received_fen,
                    "amount_fen": outcome.received_fen + outcome.fee_fen,
                    "fee_fen": outcome.fee_fen,
                },
            )
        )
    if outcome.refunded_fen:
        lines.append(Reason("outcome.refunded", {"amount_fen": outcome.refunded_fen}))
    if outcome.not_moved_fen:
        lines.append(Reason("outcome.not_moved", {"amount_fen": outcome.not_moved_fen}))
    if outcome.pending_fen:
        lines.append(
            Reason(
                "outcome.pending",
                {
                    "amount_fen": outcome.pending_fen,
                    "fee_fen": outcome.pending_fen - outcome.expected_fen,
                    "net_fen": outcome.expected_fen,
                },
            )
        )
    return lines
