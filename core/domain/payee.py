"""Where a channel pays: validated and normalised per payout form, and masked for display.

cash_wallet     a wallet account: a mainland mobile number or an e-mail address
cash_bank_card  a bank card number: 12 to 19 digits passing the Luhn check
points          the bank card the points account belongs to (same rule)
e_voucher       the carrier account of the number itself: nothing to type
"""

from __future__ import annotations

import re
import unicodedata

from core.domain import typed_text
from core.domain.catalog import PayoutForm
from core.errors import InputError

CARRIER_ACCOUNT = "carrier-account"  # vouchers go onto the number's own carrier account
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")


class InvalidPayee(InputError):
    key = "error.payee.invalid"


def needs_payee(form: PayoutForm) -> bool:
    return form is not PayoutForm.E_VOUCHER


def canonical_payee(text: str) -> str:
    """The one form a payout account is kept, compared and deny-listed in, whoever typed it and
    however: full-width characters folded (NFKC) and every script's digits read as ASCII ones
    (`core.domain.typed_text`), spaces and dashes dropped from numbers, a
    mainland mobile number without its +86 / 0086 prefix, an e-mail address in lower case.
    Every place a payee enters (the journey, the command line, the deny list) goes through here."""
    typed = str(text)
    cleaned = " ".join((typed_text.folded(typed) or unicodedata.normalize("NFKC", typed)).split())
    compact = cleaned.replace(" ", "").replace("-", "")
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix) and _MOBILE.match(compact[len(prefix) :]):
            return compact[len(prefix) :]
    if compact.isascii() and compact.isdigit():
        return compact
    return cleaned.lower()


def parse_payee(form: PayoutForm, text: str) -> str:
    """The payee in its one stored form (`canonical_payee`), or InvalidPayee saying what is expected."""
    if form is PayoutForm.E_VOUCHER:
        return CARRIER_ACCOUNT
    if len(str(text)) > 200:
        raise InvalidPayee("too long for an account", key=_key(form))
    if typed_text.folded(str(text)) is None:  # ², ①: only look like digits (NFKC would read them as some)
        raise InvalidPayee("an account is typed with digits and letters", key=_key(form))
    payee = canonical_payee(text)
    if len(payee) > 80:
        raise InvalidPayee("too long for an account", key=_key(form))
    if form is PayoutForm.CASH_WALLET:
        if _MOBILE.match(payee) or _EMAIL.match(payee):
            return payee
        raise InvalidPayee("a wallet account is a mobile number or an e-mail address", key=_key(form))
    if not (payee.isascii() and payee.isdigit() and 12 <= len(payee) <= 19 and luhn_ok(payee)):
        raise InvalidPayee("a bank card number has 12 to 19 digits and a valid check digit", key=_key(form))
    return payee


def mask_payee(payee: str) -> str:
    if payee == CARRIER_ACCOUNT:
        return payee
    if "@" in payee:
        name, domain = payee.split("@", 1)
        return f"{name[:1]}***@{domain}"
    if _MOBILE.match(payee):
        return f"{payee[:3]}****{payee[-4:]}"
    return f"**** {payee[-4:]}"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _key(form: PayoutForm) -> str:
    return f"error.payee.{form.value}"
