"""One exception tree for the whole portal. Pages and the command line catch only these.
Every class the portal raises on purpose, and where it lives:

    PortalError                     every error the portal raises on purpose
    ├── InputError                  the user's input is unusable; nothing was changed
    │   ├── InvalidAmount           an amount that is not a clean, positive CNY figure
    │   ├── InvalidPhoneNumber      not a valid mainland mobile number
    │   ├── InvalidCarrier          not one of the four carriers
    │   ├── InvalidValuation        a voucher / points valuation outside (0, 1]
    │   ├── InvalidMoment           a date-time that cannot be read
    │   ├── InvalidPayee            a payout account the channel cannot pay     core.domain.payee
    │   ├── LimitExceeded           over a portal or channel limit              core.domain.limits
    │   ├── WeakPassword            a staff password that is too easy           core.security.passwords
    │   ├── CodeRefused             a wrong or expired SMS code                 core.services.identity.sms_sign_in
    │   ├── AccountBusy             deleting an account with a recovery under way   ….identity.accounts
    │   ├── AgreementRequired       the current agreement is not accepted       core.services.agreements
    │   ├── NumberUnavailable       the carrier cannot check the number         core.services.journey
    │   ├── ReceiptInvalid          not a receipt, or not ours, or altered      core.services.receipts
    │   ├── IdempotencyConflict     a key reused for another request            core.services.recovery.submission
    │   ├── SubmissionInFlight      the same request is being written           ….recovery.submission
    │   ├── QuoteExpired            a locked quote's ten minutes are over       ….recovery.submission
    │   ├── QuoteUnusable           a lock that is not yours, used, or another request   ….recovery.submission
    │   ├── BalanceCommitted        open recoveries already hold the balance    ….recovery.submission
    │   ├── CarrierUnavailable      the carrier did not answer at submission    ….recovery.submission
    │   ├── ChannelNotServed        the channel takes no balance from the carrier   ….recovery.submission
    │   ├── NotStuck                resolving by hand what is not stuck         core.services.console.stuck
    │   ├── StatementError          a partner's settlement statement that cannot be read   core.domain.statement_rows
    │   ├── PricingError            a pricing document that cannot be used (names each field)   core.domain.pricing
    │   ├── SimulationError         figures a pricing simulation cannot use     core.domain.pricing_simulation
    │   └── CannotCancel            the debit has started                       ….recovery.transitions
    ├── NotAllowed                  the caller may not do this (to this object) core.domain.access
    │   ├── OwnRecovery             an operator deciding on their own recovery  ….recovery.transitions
    │   ├── SecondPersonNeeded      approving above the four-eyes amount alone  ….recovery.transitions
    │   ├── LastAdmin               disabling the last enabled admin            core.services.console.staff
    │   ├── SameOperator            agreeing to one's own four-eyes request     ….console.approvals
    │   └── SameAuthor              deciding on one's own pricing version       core.services.pricing
    ├── DuplicateRequest            the same four-eyes request already waits    core.services.console.approvals
    ├── RequestClosed               a four-eyes request decided or lapsed       ….console.approvals
    │   └── RequesterDisabled       agreeing to a disabled operator's request   ….console.approvals
    ├── ClaimHeld                   another operator is working the case        core.services.console.queue
    ├── ClaimNeeded                 deciding on a case one does not hold        ….console.queue
    ├── NotDenied                   an entry not (or no longer) on the deny list    core.services.risk
    ├── BreakClosed                 a reconciliation break resolved or cleared      core.services.reconciliation
    ├── VersionConflict             a pricing version not in the state a step needs   core.services.pricing
    ├── PricingUnavailable          the pricing versions cannot be read now     core.services.pricing
    ├── SetupLinkInvalid            a staff setup link unknown, used or expired     core.services.console.staff
    ├── SignInRefused               wrong user name, password or code (vague on purpose)   ….identity.staff_sign_in
    ├── Throttled                   too many attempts; wait                     core.services.identity.throttles
    ├── UnknownRecovery             no such recovery (or not the caller's)      core.services.recovery.views
    ├── IllegalTransition           a move the state machine forbids            core.domain.recovery
    ├── UnbalancedEntry             a ledger entry whose postings do not sum to 0   core.domain.ledger
    ├── DecryptionFailed            a field that does not decrypt under its row core.security.fields
    ├── ConfigError                 the configuration is unusable               core.config
    │   └── LeaseHeld               another process runs the in-process sandbox core.services.process_lease
    ├── SecretsError                keys missing or malformed                   core.security.keys
    ├── ReferenceDataError          a bundled or operator-supplied data file is wrong
    │   ├── CatalogError            the channel catalog (names the file and the field)
    │   └── CalendarError           a holiday schedule (names the file and the field)
    └── PartnerError                an outside party failed; translated at the adapter boundary
        ├── FeedUnavailable         a terms feed did not answer usably
        ├── SmsUnavailable          the SMS gateway did not take the message    core.adapters.sms
        ├── OutcomeUnknown          a call may or may not have taken effect (timeout, dropped
        │                           connection, 5xx): settled by asking for status, never retried blind
        └── PartnerRefused          the partner definitely did not do it, and says why (`reason`)

Every error carries a message key and parameters so that each edge (page, command line)
renders it in the user's language; `str(error)` is the English fallback. A test checks that
this drawing names every subclass of PortalError in the code.
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
