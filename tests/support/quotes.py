"""Quote requests at an ordinary moment of a published year."""

from __future__ import annotations

import datetime as dt

from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.quotes import QuoteRequest
from core.money import parse_amount

#: A Wednesday morning in an ordinary week of a published year.
ORDINARY_MORNING = dt.datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)


def make_request(balance_yuan: int | str = 200, carrier: Carrier = Carrier.CHINA_MOBILE, **overrides) -> QuoteRequest:
    fields = dict(balance_fen=parse_amount(str(balance_yuan)), carrier=carrier, at=ORDINARY_MORNING)
    fields.update(overrides)
    return QuoteRequest(**fields)
