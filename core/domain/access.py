"""Who is calling and what they may do: the access vocabulary every service speaks.

Every service call that touches money or someone else's data takes a `Principal` and checks it
here — never only on a page. Roles:

    consumer   recovers their own balance; reads and cancels their own recoveries
    analyst    product manager: reads metrics and designs prices, never acts on a recovery
    operator   reviews recoveries, keeps the deny list, reads anyone's recoveries
    admin      an operator who also manages staff accounts
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.errors import PortalError


class Role(enum.StrEnum):
    CONSUMER = "consumer"
    ANALYST = "analyst"
    OPERATOR = "operator"
    ADMIN = "admin"


#: Staff: every role but the consumer's.
STAFF = frozenset({Role.ANALYST, Role.OPERATOR, Role.ADMIN})
#: Who may act on anyone's data and recoveries.
OPERATORS = frozenset({Role.OPERATOR, Role.ADMIN})


class NotAllowed(PortalError):
    """The caller may not do this (to this object)."""

    key = "error.not_allowed"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account id and its role (a `Role`; its plain value is accepted)."""

    user_id: str
    role: Role

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    @property
    def is_operator(self) -> bool:
        return self.role in OPERATORS


def require_consumer(caller: Principal, message: str = "only a consumer does this, in their own account") -> None:
    if caller.role is not Role.CONSUMER:
        raise NotAllowed(message)


def require_operator(caller: Principal, message: str = "only an operator or admin does this") -> None:
    if caller.role not in OPERATORS:
        raise NotAllowed(message)


def require_staff(caller: Principal, message: str = "only staff do this") -> None:
    if caller.role not in STAFF:
        raise NotAllowed(message)
