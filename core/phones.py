"""Mainland mobile numbers: validation, the carrier the number was allocated to, masking.

`phonenumbers` names the carrier a segment was *originally allocated* to. It cannot see
number porting (携号转网), and it leaves some segments unnamed; the user can always override
the carrier, and a carrier adapter can confirm it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import carrier as pn_carrier

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


def parse_mobile(text: object) -> MobileNumber:
    if not isinstance(text, str):
        raise InvalidPhoneNumber("enter a mobile number", key="error.phone.empty")
    cleaned = unicodedata.normalize("NFKC", text)
    for sep in (" ", "-", "(", ")", "\u00a0"):
        cleaned = cleaned.replace(sep, "")
    if not cleaned:
        raise InvalidPhoneNumber("enter a mobile number", key="error.phone.empty")
    if cleaned.startswith("+86"):
        cleaned = cleaned[3:]
    elif cleaned.startswith("0086"):
        cleaned = cleaned[4:]
    if not cleaned.isdigit() or len(cleaned) != 11 or not cleaned.startswith("1"):
        raise InvalidPhoneNumber("a mainland mobile number has 11 digits and starts with 1", key="error.phone.invalid")
    parsed = phonenumbers.parse(cleaned, "CN")
    if (
        not phonenumbers.is_valid_number(parsed)
        or phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE
    ):
        raise InvalidPhoneNumber("not an allocated mainland mobile segment", key="error.phone.segment")
    for prefix in (cleaned[:4], cleaned[:3]):
        if prefix in VIRTUAL_OPERATOR_SEGMENTS:
            return MobileNumber(cleaned, VIRTUAL_OPERATOR_SEGMENTS[prefix], True)
    name = pn_carrier.name_for_number(parsed, "en")
    return MobileNumber(cleaned, _BY_NAME.get(name), False)
