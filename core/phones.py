"""Mainland mobile numbers: validation, the carrier the number was allocated to, masking.

`phonenumbers` names the carrier a segment was *originally allocated* to. It cannot see
number porting (携号转网), and it leaves some segments unnamed; the user can always override
the carrier, and a carrier adapter can confirm it.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import carrier as pn_carrier

from core.domain import typed_text
from core.domain.carriers import Carrier
from core.errors import InvalidPhoneNumber

_BY_NAME = {
    "China Mobile": Carrier.CHINA_MOBILE,
    "China Unicom": Carrier.CHINA_UNICOM,
    "China Telecom": Carrier.CHINA_TELECOM,
    "China Broadnet": Carrier.CHINA_BROADNET,
}

#: Virtual-operator (MVNO) segments and the network each rides on (MIIT allocations).
#: phonenumbers leaves 162 and 165 unnamed and names the host network for the others.
VIRTUAL_OPERATOR_SEGMENTS: dict[str, Carrier] = {
    "162": Carrier.CHINA_TELECOM,
    "165": Carrier.CHINA_MOBILE,
    "167": Carrier.CHINA_UNICOM,
    "1700": Carrier.CHINA_TELECOM,
    "1701": Carrier.CHINA_TELECOM,
    "1702": Carrier.CHINA_TELECOM,
    "1703": Carrier.CHINA_MOBILE,
    "1705": Carrier.CHINA_MOBILE,
    "1706": Carrier.CHINA_MOBILE,
    "1704": Carrier.CHINA_UNICOM,
    "1707": Carrier.CHINA_UNICOM,
    "1708": Carrier.CHINA_UNICOM,
    "1709": Carrier.CHINA_UNICOM,
    "171": Carrier.CHINA_UNICOM,
}


@dataclass(frozen=True)
class MobileNumber:
    national: str  # 11 digits; never logged or shown in full
    allocated_carrier: Carrier | None  # None: a segment no carrier is known for (e.g. 1349 satellite)
    is_virtual_operator: bool

    @property
    def masked(self) -> str:
        return mask(self.national)

    def __repr__(self) -> str:  # keep full numbers out of logs and tracebacks
        return f"MobileNumber({self.masked}, {self.allocated_carrier}, virtual={self.is_virtual_operator})"

    __str__ = __repr__


def mask(national: str) -> str:
    """138****1234: the first three and last four digits, the common mainland masking."""
    return f"{national[:3]}****{national[-4:]}" if len(national) >= 7 else "****"


#: Characters a typed number may have, separators and all: more is junk, refused unread.
MAX_TYPED = 64


def parse_mobile(text: object) -> MobileNumber:
    if not isinstance(text, str):
        raise InvalidPhoneNumber("enter a mobile number", key="error.phone.empty")
    # ٨ is 8 (as phonenumbers reads it); ①, ², ❶ are no digits; an overlong input is not read
    cleaned = typed_text.folded(text) if len(text) <= MAX_TYPED else None
    if cleaned is None:
        raise InvalidPhoneNumber("a mainland mobile number has 11 digits and starts with 1", key="error.phone.invalid")
    for sep in (" ", "-", "(", ")", "\u00a0"):
        cleaned = cleaned.replace(sep, "")
    if not cleaned:
        raise InvalidPhoneNumber("enter a mobile number", key="error.phone.empty")
    if cleaned.startswith("+86"):
        cleaned = cleaned[3:]
    elif cleaned.startswith("0086"):
        cleaned = cleaned[4:]
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) != 11 or not cleaned.startswith("1"):
        raise InvalidPhoneNumber("a mainland mobile number has 11 digits and starts with 1", key="error.phone.invalid")
    key = cleaned[:SEGMENT_DIGITS]
    try:
        segment = _SEGMENTS[key]
    except KeyError:
        if len(_SEGMENTS) >= _SEGMENTS_KEPT:
            _SEGMENTS.clear()
        segment = _SEGMENTS[key] = _segment_of(cleaned)
    if segment is None:
        raise InvalidPhoneNumber("not an allocated mainland mobile segment", key="error.phone.segment")
    carrier, virtual = segment
    return MobileNumber(cleaned, carrier, virtual)


#: The digits of a mainland mobile number that say all `parse_mobile` tells of it: its 号段 and
#: H code (1XX-XXXX). phonenumbers' patterns for an 11-digit number that starts with 1 (mobile,
#: and the 10… fixed lines) read at most its first 6 digits, its carrier names at most 7, and a
#: number that begins as an international prefix does (1XX XX00) is none of them whatever
#: follows (tests/unit/test_phones.py holds a seeded sample of segments and every 4-digit one to
#: this). Parsing takes about 40 µs a number; a remembered segment, a dictionary look-up.
SEGMENT_DIGITS = 7
_SEGMENTS: dict[str, tuple[Carrier | None, bool] | None] = {}  # by first digits; None: not a mobile segment
_SEGMENTS_KEPT = 65_536  # segments remembered before starting over


def _segment_of(national: str) -> tuple[Carrier | None, bool] | None:
    """(the carrier its segment was allocated to, whether it is a virtual operator's) for an
    11-digit number that starts with 1; None: not a mainland mobile number."""
    try:
        parsed = phonenumbers.parse(national, "CN")
    except phonenumbers.NumberParseException:  # 1XX XX00 is also a carrier's international prefix
        return None  # (11187009999: "00"-style dialling to country code 9999, which does not exist)
    if (
        not phonenumbers.is_valid_number(parsed)
        or phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE
    ):
        return None
    for prefix in (national[:4], national[:3]):
        if prefix in VIRTUAL_OPERATOR_SEGMENTS:
            return VIRTUAL_OPERATOR_SEGMENTS[prefix], True
    return _BY_NAME.get(pn_carrier.name_for_number(parsed, "en")), False
