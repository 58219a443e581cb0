"""The four mainland carriers a balance can sit with."""

from __future__ import annotations

import enum

from core.errors import InvalidCarrier


class Carrier(enum.Enum):
    CHINA_MOBILE = "china_mobile"
    CHINA_UNICOM = "china_unicom"
    CHINA_TELECOM = "china_telecom"
    CHINA_BROADNET = "china_broadnet"

    @classmethod
    def parse(cls, value: object) -> Carrier:
        if isinstance(value, Carrier):
            return value
        text = str(value or "").strip().lower().replace("-", "_").replace(" ", "_")
        for carrier in cls:
            if text == carrier.value:
                return carrier
        choices = ", ".join(c.value for c in cls)
        raise InvalidCarrier(f"unknown carrier {str(value)[:30]!r}; choose one of {choices}", choices=choices)
