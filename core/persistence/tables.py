"""Tables. Personal fields are stored encrypted (`*_cipher`) beside a blind index (`*_index`);
nothing here holds a phone number, a code or a password in the clear."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    role: str = Field(max_length=16, index=True)  # consumer | analyst | operator | admin
    username: str | None = Field(default=None, max_length=64, unique=True)  # staff only
    password_hash: str | None = Field(default=None, max_length=255)  # staff only
    totp_secret_cipher: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow)
    # Set when the person deleted their account but recoveries (financial records) must be kept:
    # the row is then only a pseudonym for those records, and nobody can sign in as it.
    deleted_at: dt.datetime | None = None
    disabled_at: dt.datetime | None = None  # a staff account an admin disabled: it cannot sign in


class VerifiedNumber(SQLModel, table=True):
    """A mobile number a user proved they hold (by SMS code). A number belongs to one user."""

    __tablename__ = "verified_numbers"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=36)
    number_cipher: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    number_index: str = Field(max_length=64, unique=True)
    masked: str = Field(max_length=16)  # 138****1234, safe to show
    verified_at: dt.datetime = Field(default_factory=utcnow)


class SmsCode(SQLModel, table=True):
    """A one-time code sent to a number: only its keyed hash is kept."""

    __tablename__ = "sms_codes"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number_index: str = Field(max_length=64, index=True)
    code_hash: str = Field(max_length=64)
    client: str = Field(default="", max_length=64)  # blind index of the address that asked
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    attempts: int = 0
    consumed_at: dt.datetime | None = None


class Throttle(SQLModel, table=True):
    """Failures counted per key (an account, a client address, a number) for back-off."""

    __tablename__ = "throttles"

    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    window_started_at: dt.datetime = Field(default_factory=utcnow)
    blocked_until: dt.datetime | None = None


class AuthEvent(SQLModel, table=True):
    """Every sign-in success and failure, without secrets: who (an id or a blind index), what,
    from where (a keyed hash of the client address), when."""

    __tablename__ = "auth_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=32)
    outcome: str = Field(max_length=16)  # success | failure | throttled
    user_id: str | None = Field(default=None, max_length=36, index=True)
    subject: str = Field(default="", max_length=64)  # blind index of the username / number
    client: str = Field(default="", max_length=64)  # blind index of the client address
    reason: str = Field(default="", max_length=64)


class AuthorizationCode(SQLModel, table=True):
    """An OpenID authorization code of the built-in provider (single use, short-lived, PKCE)."""

    __tablename__ = "oauth_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=500)
    scope: str = Field(max_length=200)
    nonce: str | None = Field(default=None, max_length=200)
    user_id: str = Field(max_length=36)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=10)
    auth_time: int
    expires_at: dt.datetime
    used_at: dt.datetime | None = None  # kept after use: a used code, and its nonce, never work again


class SignInSession(SQLModel, table=True):
    """A portal sign-in (one ID token's `sub` + `auth_time`), for the idle and absolute limits:
    Streamlit's login cookie lasts 30 days, the portal's sessions far less."""

    __tablename__ = "signin_sessions"

    key: str = Field(primary_key=True, max_length=64)  # blind index of sub + auth_time
    user_id: str = Field(max_length=36, index=True)
    started_at: dt.datetime
    last_seen_at: dt.datetime
    ended_at: dt.datetime | None = None


class ExternalIdentity(SQLModel, table=True):
    """An account signed in through an external OpenID provider: (issuer, subject) -> user."""

    __tablename__ = "external_identities"

    key: str = Field(primary_key=True, max_length=64)  # blind index of issuer + subject
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=36)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Recovery(SQLModel, table=True):
    """One partner transaction of a recovery: one debit, one payout (or one refund). An amount
    above the channel's per-transaction limit is several of these, linked by `group_id` (the
    first part's id) and submitted together under one idempotency key."""

    __tablename__ = "recoveries"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", "part"),
        # the operations metrics: a period's transactions in (created_at, group_id) order, with every
        # column they read (SQLite answers from the index alone)
        Index(
            "ix_recoveries_period",
            *("created_at", "group_id", "id", "state", "channel_id", "carrier", "debit_fen", "fee_fen"),
        ),
        Index("ix_recoveries_head_created", "part", "created_at", "group_id"),  # the console's newest-first pages
        Index("ix_recoveries_state_created", "state", "created_at", "group_id"),  # the review queue, oldest first
        # a recovery's channel from the index alone: reconciliation keeps a day's bookings to one partner's
        Index("ix_recoveries_id_channel", "id", "channel_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    group_id: str = Field(max_length=36, index=True)
    part: int = 1
    parts: int = 1
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    idempotency_key: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)  # what was asked, to tell a retry from a different request
    state: str = Field(max_length=16, index=True)
    channel_id: str = Field(max_length=32)
    carrier: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})  # the number's, when asked
    number_index: str = Field(max_length=64, index=True)
    number_cipher: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    masked_number: str = Field(max_length=16)
    payee_cipher: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    debit_fen: int
    fee_fen: int
    # of the fee, the payout partner's own per-transaction fee by the live cost schedule when
    # submitted (0: none known, and for recoveries submitted before the partners' fees were booked)
    partner_fee_fen: int = 0
    reason: str = Field(default="", max_length=64)  # why it failed, was refused or refunded
    device_index: str = Field(default="", max_length=64, index=True)  # blind index of the device that asked
    quote_lock_id: str | None = Field(default=None, max_length=36)  # the locked quote it honours
    risk_decision: str = Field(default="", max_length=8)  # approve | review | reject
    risk_reasons: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))  # JSON
    created_at: dt.datetime = Field(default_factory=utcnow, index=True)
    updated_at: dt.datetime = Field(default_factory=utcnow)

    @property
    def payout_fen(self) -> int:
        """What the channel pays the customer: the debited balance less our fee."""
        return self.debit_fen - self.fee_fen


class RecoveryTransition(SQLModel, table=True):
    __tablename__ = "recovery_transitions"
    __table_args__ = (
        Index("ix_recovery_transitions_part_event", "recovery_id", "event", "at"),  # a transaction's moments
        Index("ix_recovery_transitions_event_at", "event", "at", "recovery_id"),  # one event over a period
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    recovery_id: str = Field(foreign_key="recoveries.id", index=True, max_length=36)
    before: str = Field(max_length=16)
    after: str = Field(max_length=16)
    event: str = Field(max_length=24)
    actor: str = Field(max_length=64)
    reason: str = Field(default="", max_length=200)
    at: dt.datetime = Field(default_factory=utcnow)


class LedgerPosting(SQLModel, table=True):
    """One line of a balanced entry; entries are only ever added, never changed."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        # a day's bookings of one kind (reconciliation, the books' periods), read from the index alone
        Index("ix_ledger_postings_event_at", "event", "at", "account", "recovery_id", "amount_fen"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    entry_id: str = Field(max_length=36, index=True)
    recovery_id: str = Field(foreign_key="recoveries.id", index=True, max_length=36)
    event: str = Field(max_length=24)
    account: str = Field(max_length=32)
    amount_fen: int
    at: dt.datetime = Field(default_factory=utcnow)


class OutboxMessage(SQLModel, table=True):
    """The next partner call to make, committed with the state change that calls for it.
    A worker claims a message by pushing `available_at` out by its lease and counting the
    attempt; the attempt number fences the result, so a worker whose lease ran out cannot
    record over the one that took the message after it."""

    __tablename__ = "outbox"
    __table_args__ = (
        # the workers' claim: open messages only, oldest due first (migration 0022)
        Index(
            "ix_outbox_due",
            "available_at",
            "seq",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
    )

    seq: int | None = Field(default=None, primary_key=True)
    recovery_id: str = Field(foreign_key="recoveries.id", index=True, max_length=36)
    kind: str = Field(max_length=24)
    available_at: dt.datetime = Field(default_factory=utcnow)
    attempts: int = 0
    claimed_by: str = Field(default="", max_length=64)
    last_error: str = Field(default="", max_length=200)
    done_at: dt.datetime | None = None  # open messages are found through ix_outbox_due


class AuditRecord(SQLModel, table=True):
    """The hash-chained audit trail of every state change and staff action. A record is written
    unchained (`hash` and `previous_hash` None) and chained afterwards by the chainer
    (`core.services.audit.chain_pending`), which gives it its place in the chain (`chain_seq`)."""

    __tablename__ = "audit_records"
    __table_args__ = (
        # the chainer's look-up: records waiting to be chained only (migration 0023)
        Index("ix_audit_unchained", "seq", postgresql_where=text("hash IS NULL"), sqlite_where=text("hash IS NULL")),
    )

    seq: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=32)
    subject: str = Field(max_length=64, index=True)
    detail: str = Field(default="", max_length=500)
    previous_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64, unique=True)
    chain_seq: int | None = Field(default=None, unique=True, index=True)


class QuoteLock(SQLModel, table=True):
    """A quote held for one user, number and channel for ten minutes: the transactions and
    fees it showed are the ones charged if the recovery is submitted in time, even if the
    channel's terms change meanwhile. Used once."""

    __tablename__ = "quote_locks"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=36)
    number_index: str = Field(max_length=64)
    channel_id: str = Field(max_length=32)
    carrier: str = Field(max_length=16)  # the number's carrier the quote was made for
    balance_fen: int
    amount_fen: int  # what the channel takes off the balance
    fee_fen: int
    net_fen: int  # what the user receives, in cash-equivalent value
    plan: str = Field(max_length=2000)  # JSON [[debit_fen, fee_fen], ...]: the linked transactions
    eta_earliest: dt.date | None = None
    eta_latest: dt.date | None = None
    terms_version: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    used_by: str | None = Field(default=None, max_length=36)  # the recovery (group) that used it


class AgreementAcceptance(SQLModel, table=True):
    """A user's acceptance of one version of an agreement (the recovery authorisation)."""

    __tablename__ = "agreement_acceptances"
    __table_args__ = (UniqueConstraint("user_id", "document", "version"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=36)
    document: str = Field(max_length=32)
    version: str = Field(max_length=16)
    text_sha256: str = Field(max_length=64)  # exactly which text was shown
    accepted_at: dt.datetime = Field(default_factory=utcnow)


class DenyEntry(SQLModel, table=True):
    """A user, number, device or payee the risk rules refuse. Numbers, devices and payees are
    kept as blind indexes only."""

    __tablename__ = "deny_list"

    key: str = Field(primary_key=True, max_length=80)  # "<kind>:<user id or blind index>"
    kind: str = Field(max_length=8)  # user | number | device | payee
    masked: str = Field(default="", max_length=24, sa_column_kwargs={"server_default": ""})  # safe to show
    reason: str = Field(default="", max_length=200)
    added_by: str = Field(max_length=64)
    added_at: dt.datetime = Field(default_factory=utcnow)


class ProcessLease(SQLModel, table=True):
    """A role only one process may play on this database at a time, held while its holder keeps
    renewing it (`core.services.process_lease`): today, running the in-process sandbox partners,
    whose records live in that process's memory alone."""

    __tablename__ = "process_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)  # host:pid:token of the process holding it
    renewed_at: dt.datetime = Field(default_factory=utcnow)


class TotpStep(SQLModel, table=True):
    """The last TOTP time step a staff account signed in with: a code is good once."""

    __tablename__ = "totp_steps"

    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE", max_length=36)
    step: int
    used_at: dt.datetime = Field(default_factory=utcnow)


class KnownSignInAddress(SQLModel, table=True):
    """A client address (blind index) a staff account has signed in from: the account-wide
    guessing limit never locks the owner out of an address they use."""

    __tablename__ = "known_sign_in_addresses"

    key: str = Field(primary_key=True, max_length=160)  # "<account index>:<client index>"
    first_seen_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)


class ReviewClaim(SQLModel, table=True):
    """An operator working a case in the review queue: nobody else decides on it until the
    claim is released or runs out (`expires_at`)."""

    __tablename__ = "review_claims"

    group_id: str = Field(primary_key=True, max_length=36)
    holder_id: str = Field(foreign_key="users.id", max_length=36)
    holder_name: str = Field(max_length=64)
    claimed_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime


class ApprovalRequest(SQLModel, table=True):
    """An action one operator asked for that waits for a second one (four eyes). `pending_key`
    is `<action>:<subject>` while the request is pending and NULL after: a unique column, so a
    second pending request for the same action on the same thing cannot exist."""

    __tablename__ = "approval_requests"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    action: str = Field(max_length=24)
    subject: str = Field(max_length=80, index=True)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))  # JSON
    pending_key: str | None = Field(default=None, max_length=110, unique=True)
    status: str = Field(max_length=12, index=True)
    requested_by: str = Field(foreign_key="users.id", max_length=36)
    requested_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    decided_by: str | None = Field(default=None, max_length=36)
    decided_at: dt.datetime | None = None


class StaffSetupToken(SQLModel, table=True):
    """A one-time link a new staff member sets their own password with: only the token's hash is
    kept; it works once, until `expires_at`."""

    __tablename__ = "staff_setup_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=36)
    created_by: str = Field(max_length=36)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


class MetricsDay(SQLModel, table=True):
    """The operations metrics of one Shanghai day's ended recoveries, added up once
    (`core.services.console.metrics`): `figures` is JSON, `ended_parts` how many transactions
    of the day had ended when it was worked out (it holds while the count is the same), `basis`
    a digest of the catalog's promises the payout times were keyed by."""

    __tablename__ = "metrics_days"

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, Asia/Shanghai
    basis: str = Field(max_length=64)
    ended_parts: int
    figures: str = Field(sa_column=Column(Text, nullable=False))
    computed_at: dt.datetime = Field(default_factory=utcnow)


class StatementImport(SQLModel, table=True):
    """A partner's settlement statement, imported once (by the SHA-256 of its bytes), with what
    its own summary block said and how many of its rows matched ours."""

    __tablename__ = "statement_imports"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    sha256: str = Field(max_length=64, unique=True)
    partner: str = Field(max_length=32, index=True)
    business_day: str = Field(max_length=10, index=True)  # YYYY-MM-DD, Asia/Shanghai
    dialect: str = Field(max_length=32)
    filename: str = Field(default="", max_length=200)
    rows: int
    matched: int
    ours_fen: int
    theirs_fen: int
    summary_count: int
    summary_amount_fen: int
    summary_fee_fen: int
    imported_by: str = Field(foreign_key="users.id", max_length=36)
    imported_at: dt.datetime = Field(default_factory=utcnow)


class StatementLine(SQLModel, table=True):
    """One row of an imported statement, as the partner wrote it (amounts in fen)."""

    __tablename__ = "statement_lines"
    __table_args__ = (Index("ix_statement_lines_partner_reference", "partner", "reference"),)

    seq: int | None = Field(default=None, primary_key=True)
    import_id: str = Field(foreign_key="statement_imports.id", index=True, max_length=36)
    line: int
    partner: str = Field(max_length=32)
    business_day: str = Field(max_length=10)  # the row's own Shanghai date
    at: dt.datetime
    partner_ref: str = Field(max_length=64)
    reference: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    amount_fen: int
    fee_fen: int


class ReconciliationBreak(SQLModel, table=True):
    """A difference between a partner's statement and our books, until an operator resolves it
    (or it clears by itself: a timing difference when the other day's statement arrives)."""

    __tablename__ = "reconciliation_breaks"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    import_id: str = Field(foreign_key="statement_imports.id", index=True, max_length=36)
    partner: str = Field(max_length=32, index=True)
    business_day: str = Field(max_length=10)
    kind: str = Field(max_length=24)
    reference: str = Field(default="", max_length=100, index=True)
    recovery_id: str | None = Field(default=None, max_length=36)
    ours_fen: int | None = None
    theirs_fen: int | None = None
    our_day: str | None = Field(default=None, max_length=10)
    their_day: str | None = Field(default=None, max_length=10)
    status: str = Field(max_length=12, index=True)  # open | resolved | cleared
    resolution: str = Field(default="", max_length=24)
    note: str = Field(default="", max_length=200)
    resolved_by: str | None = Field(default=None, max_length=36)
    resolved_at: dt.datetime | None = None


class PricingVersion(SQLModel, table=True):
    """One version of the portal's pricing: its own offer and every route's cost schedule, as a
    JSON document (core.domain.pricing). draft -> submitted -> live -> retired, or declined. The
    two slots make the rules hold in the database, whoever writes at once: one version is
    live (`live_slot` = "live", NULL otherwise) and one waits for approval (`pending_slot`)."""

    __tablename__ = "pricing_versions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: int = Field(unique=True)
    status: str = Field(max_length=16, index=True)
    document: str = Field(sa_column=Column(Text, nullable=False))
    note: str = Field(default="", max_length=500)
    based_on: int | None = None  # the version a rollback copies
    author_id: str | None = Field(default=None, foreign_key="users.id", max_length=36)  # None: shipped
    created_at: dt.datetime = Field(default_factory=utcnow)
    submitted_at: dt.datetime | None = None
    decided_by: str | None = Field(default=None, foreign_key="users.id", max_length=36)
    decided_at: dt.datetime | None = None
    decision_note: str = Field(default="", max_length=500)
    live_slot: str | None = Field(default=None, unique=True, max_length=8)
    pending_slot: str | None = Field(default=None, unique=True, max_length=12)


class QuoteRequestLog(SQLModel, table=True):
    """One quote the portal served, kept anonymously for the pricing lab's replays: the balance in
    whole yuan, the carrier, the first priority and the hour (coarse on purpose) — never a number,
    an account or a device."""

    __tablename__ = "quote_requests"

    seq: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)  # to the hour
    balance_fen: int
    carrier: str = Field(max_length=16)
    priority: str = Field(max_length=8)
