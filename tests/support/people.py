"""Test mobile numbers, and the code the sandbox SMS gateway sent last."""

from __future__ import annotations

import re

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.phones import parse_mobile


def mobile(n: int) -> str:
    """The n-th test number: a valid China Mobile number (138 segment), masked `138****nnnn`."""
    number = f"1380013{n:04d}"
    parse_mobile(number)  # raises if it is not a valid mainland mobile number
    return number


def last_code(sms: SandboxSmsGateway) -> str:
    """The 6-digit code in the last message the sandbox SMS gateway sent."""
    found = re.search(r"\b(\d{6})\b", sms.latest(1)[0].text)
    assert found is not None, "the last message carries no code"
    return found.group(1)
