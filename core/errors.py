"""One exception tree for the whole portal. Pages and the command line catch only these.

    PortalError                 every error the portal raises on purpose
    ├── InputError              the user's input is unusable; nothing was changed
    │   ├── InvalidAmount       an amount that is not a clean, positive CNY figure
    │   ├── InvalidPhoneNumber  not a valid mainland mobile number
    │   ├── InvalidCarrier      not one of the four carriers
    │   ├── InvalidValuation    a voucher / points valuation outside (0, 1]
    │   └── InvalidMoment       a date-time that cannot be read
    ├── ReferenceDataError      a bundled or operator-supplied data file is wrong
    │   ├── CatalogError        the channel catalog (names the file and the field)
    │   └── CalendarError       a holiday schedule (names the file and the field)
    └── PartnerError            an outside party failed; translated at the adapter boundary
        ├── FeedUnavailable     a terms feed did not answer usably
        ├── OutcomeUnknown      a call may or may not have taken effect (timeout, dropped
        │                       connection, 5xx): settled by asking for status, never retried blind
        └── PartnerRefused      the partner definitely did not do it, and says why (`reason`)

Every error carries a message key and parameters so that each edge (page, command line)
renders it in the user's language; `str(error)` is the English fallback.
"""

from __future__ import annotations

from typing import Any


class PortalError(Exception):
    """Base of every error the portal raises on purpose."""

    key = "error.generic"

    def __init__(self, message: str, *, key: str | None = None, **params: Any) -> None:
        super().__init__(message)
        if key is not None:
            self.key = key
        self.params = params


class InputError(PortalError):
    key = "error.input"


class InvalidAmount(InputError):
    key = "error.amount.invalid"


class InvalidPhoneNumber(InputError):
    key = "error.phone.invalid"


class InvalidCarrier(InputError):
    key = "error.carrier.invalid"


class InvalidValuation(InputError):
    key = "error.valuation.invalid"


class InvalidMoment(InputError):
    key = "error.moment.invalid"


class ReferenceDataError(PortalError):
    key = "error.reference_data"


class CatalogError(ReferenceDataError):
    key = "error.catalog"


class CalendarError(ReferenceDataError):
    key = "error.calendar"


class PartnerError(PortalError):
    key = "error.partner"


class FeedUnavailable(PartnerError):
    key = "error.feed.unavailable"


class OutcomeUnknown(PartnerError):
    key = "error.partner.unknown"


class PartnerRefused(PartnerError):
    key = "error.partner.refused"
