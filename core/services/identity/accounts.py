"""An account's own data: its verified numbers, and deleting it (erasing the person, keeping
their recoveries as pseudonymous financial records)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from core.domain.access import OPERATORS, NotAllowed, Principal, Role
from core.domain.recovery import TERMINAL
from core.errors import InputError
from core.persistence.tables import (
    AuthorizationCode,
    ExternalIdentity,
    QuoteLock,
    Recovery,
    SignInSession,
    SmsCode,
    Throttle,
    User,
    VerifiedNumber,
)
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import BlindIndex, FieldCipher
from core.services.identity.throttles import Throttles

FINISHED = frozenset(state.value for state in TERMINAL)


class AccountBusy(InputError):
    key = "error.account.recovery_in_flight"


class Accounts(Throttles):
    _engine: Engine
    _cipher: FieldCipher
    _number_index: BlindIndex

    is_recent: Callable[[int], bool]  # Sessions'

    def number_of(self, caller: Principal, number_id: str) -> str:
        """The full number behind one of the caller's verified numbers, for a partner call."""
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(VerifiedNumber, number_id)
        if row is None or row.user_id != caller.user_id:
            raise NotAllowed("verify this number first", key="error.recovery.number_not_verified")
        return self._cipher.decrypt(row.number_cipher, table="verified_numbers", column="number", row_id=row.id)

    def verified_numbers(self, caller: Principal, user_id: str) -> list[tuple[str, str]]:
        """(id, masked number) of a user's numbers: the user themself, or an operator/admin."""
        self._require_owner_or(caller, user_id, OPERATORS)
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.user_id == user_id)).all()
            return [(row.id, row.masked) for row in rows]

    def consumer_by_number(self, phone: str) -> Principal:
        """The consumer account that verified `phone` (the command line acts as that user): an
        enabled consumer's only; a staff account with a number acts by its user name."""
        number = parse_mobile(phone)
        with UnitOfWork(self._engine) as uow:
            row = uow.session.exec(
                select(VerifiedNumber).where(VerifiedNumber.number_index == self._number_index(number.national))
            ).first()
            user = uow.session.get(User, row.user_id) if row is not None else None
        if user is None or user.role != Role.CONSUMER.value or user.disabled_at or user.deleted_at:
            raise NotAllowed("no consumer account has verified this number", key="error.recovery.number_not_verified")
        return Principal(user.id, Role.CONSUMER)

    def delete_account(self, caller: Principal, user_id: str, *, signed_in_at: int | None = None) -> None:
        """Erase a person from the portal: their numbers, the codes and counters keyed by them,
        their sessions, the built-in provider's codes, their link to an external provider, their
        quote locks. The owner must have signed in within the last 10 minutes (`signed_in_at`).

        Recoveries are financial records the portal must keep (anti-money-laundering rules: at
        least five years): they stay, with their ledger entries, audit records, agreement
        acceptances and encrypted number and payee, but detached from the person — the account
        row is reduced to its random id (a pseudonym nobody can sign in as again; signing in with
        the same number later makes a new, unrelated account). A recovery still under way blocks
        the deletion until it settles or is cancelled: money may still move for it."""
        self._require_owner_or(caller, user_id, frozenset({Role.ADMIN}))
        if caller.user_id == user_id and (signed_in_at is None or not self.is_recent(signed_in_at)):
            raise NotAllowed("sign in again first", key="error.reauth_needed")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"limits:user:{user_id}")  # what a submission holds while it creates a recovery
            user = uow.session.get(User, user_id)
            if user is None or user.deleted_at is not None:
                raise NotAllowed("no such account")
            if user.role != Role.CONSUMER.value:  # its name stands in four-eyes requests and the audit chain
                raise NotAllowed("a staff account is disabled by an admin, not deleted", key="error.account.staff")
            states = set(uow.session.exec(select(Recovery.state).where(Recovery.user_id == user_id)).all())
            if states - FINISHED:
                raise AccountBusy("a recovery is still under way; cancel it or wait until it settles")
            indexes = [
                n.number_index
                for n in uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.user_id == user_id)).all()
            ]
            for index in indexes:
                uow.session.exec(delete(SmsCode).where(col(SmsCode.number_index) == index))
                uow.session.exec(delete(Throttle).where(col(Throttle.key).contains(index)))
            for table in (VerifiedNumber, SignInSession, AuthorizationCode, ExternalIdentity, QuoteLock):
                uow.session.exec(delete(table).where(col(table.user_id) == user_id))
            if states:  # financial records to keep: the account becomes a pseudonym
                user.username = user.password_hash = user.totp_secret_cipher = None
                user.deleted_at = self._clock()
                uow.session.add(user)
            else:
                uow.session.delete(user)
            self._event(uow, "account_deleted", "success", user_id=user_id)
            uow.commit()

    def role_of(self, user_id: str) -> str | None:
        with UnitOfWork(self._engine) as uow:
            user = uow.session.get(User, user_id)
            return user.role if user else None

    def acting_role(self, user_id: str) -> str | None:
        """The role an account may act in now: None once it is disabled or erased."""
        with UnitOfWork(self._engine) as uow:
            user = uow.session.get(User, user_id)
            if user is None or user.deleted_at is not None or user.disabled_at is not None:
                return None
            return user.role

    @staticmethod
    def _require_owner_or(caller: Principal, user_id: str, roles: frozenset[Role]) -> None:
        if caller.user_id != user_id and caller.role not in roles:
            raise NotAllowed("not your account")
