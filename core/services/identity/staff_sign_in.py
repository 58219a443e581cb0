"""Staff sign in with a user name and password (argon2id) and, once set up, a TOTP code that is
good once. Each attempt is counted before the password is checked and forgiven on success; an
address this account has signed in from before is never locked out by the account-wide limit
(`known_sign_in_addresses`); the last TOTP step used is kept per account (`totp_steps`)."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from core.domain.access import STAFF, NotAllowed, Principal, Role
from core.domain.codes import is_six_digits, typed_code
from core.domain.throttling import ACCOUNT, ACCOUNT_FROM_CLIENT, CLIENT
from core.errors import InputError, PortalError
from core.persistence.tables import KnownSignInAddress, Throttle, TotpStep, User, VerifiedNumber
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import BlindIndex, FieldCipher
from core.security.passwords import check_strength, hash_password, verify_password
from core.services.identity.throttles import Throttled, Throttles

#: The roles a staff account may have, by value (as the command line and the users table say them).
STAFF_ROLES = tuple(role.value for role in Role if role in STAFF)
_DUMMY_HASH: list[str] = []


def staff_username(username: str) -> str:
    """A staff user name as kept: 3 to 64 ASCII letters, digits, '.', '_' or '-'. Only ASCII: a
    name is what a second operator and the audit chain know a colleague by, and "op.one" in
    Cyrillic or full-width letters looks the same as the real one."""
    name = username.strip()
    if not (3 <= len(name) <= 64) or not all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name):
        raise InputError("a user name has 3-64 letters, digits, '.', '_' or '-'", key="error.username.invalid")
    return name


def username_taken(uow: UnitOfWork, name: str) -> bool:
    """Whether an account has this user name, whatever its letters' case ("Li.Ops" is "li.ops")."""
    return uow.session.exec(select(User.id).where(func.lower(User.username) == name.lower())).first() is not None


class SignInRefused(PortalError):
    """Wrong credentials; deliberately vague so it does not tell which part was wrong."""

    key = "error.signin.refused"


class StaffSignIn(Throttles):
    _engine: Engine
    _cipher: FieldCipher
    _number_index: BlindIndex
    _subject_index: BlindIndex
    _client_index: BlindIndex
    require_totp_for_staff: bool
    _verified: Callable[..., VerifiedNumber]

    def create_staff(self, role: str, username: str, password: str, *, phone: str | None = None) -> str:
        if role not in STAFF_ROLES:
            raise InputError(f"role must be one of {', '.join(STAFF_ROLES)}", key="error.role.invalid")
        name = staff_username(username)
        check_strength(password, username=name)
        number = parse_mobile(phone) if phone else None
        with UnitOfWork(self._engine) as uow:
            if username_taken(uow, name):
                raise InputError("that user name is taken", key="error.username.taken")
            user = User(role=role, username=name, password_hash=hash_password(password))
            uow.session.add(user)
            uow.session.flush()
            if number is not None:
                index = self._number_index(number.national)
                if uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.number_index == index)).first():
                    raise InputError("that number already belongs to an account", key="error.phone.taken")
                uow.session.add(self._verified(user.id, number.national, index, number.masked, self._clock()))
            self._event(uow, "staff_created", "success", user_id=user.id, subject=self._subject_index(name))
            uow.commit()
            return user.id

    def staff_id(self, username: str) -> str:
        """The id of a staff account by user name (for the command line)."""
        with UnitOfWork(self._engine) as uow:
            user = uow.session.exec(select(User).where(User.username == username.strip())).first()
            if user is None or user.role not in STAFF_ROLES:
                raise InputError("no staff account has that user name", key="error.username.unknown")
            return user.id

    def enable_totp(self, user_id: str, *, replace: bool = False) -> str:
        """A new TOTP secret for a staff account (returned once, to show as a QR code / text).
        Only the command line calls this; an existing secret is replaced only on purpose."""
        secret = pyotp.random_base32()
        with UnitOfWork(self._engine) as uow:
            user = uow.session.get(User, user_id)
            if user is None or user.role not in STAFF_ROLES:
                raise NotAllowed("only staff accounts use a second factor")
            if user.totp_secret_cipher is not None and not replace:
                raise NotAllowed("this account already has a second factor", key="error.totp.exists")
            user.totp_secret_cipher = self._cipher.encrypt(secret, table="users", column="totp", row_id=user.id)
            uow.commit()
        return secret

    def sign_in_with_password(self, username: str, password: str, client: str, totp: str = "") -> Principal:
        """Each attempt is counted *before* the password is checked (so parallel guesses cannot
        slip past the limits) and forgiven on success. The account-wide limit never refuses a
        client address this account has signed in from before: guessing from elsewhere slows
        strangers down without locking the owner out."""
        now = self._clock()
        attempt = _Attempt(self._subject_index(username.strip().lower()), self._client_index(client))
        user = self._reserve(attempt, username, now)
        # The slow part (argon2id) runs outside any transaction: SQLite writers queue on one lock.
        if user is not None and user.password_hash and user.disabled_at is None:
            ok = verify_password(user.password_hash, password)
        else:  # unknown, not set up yet, or disabled: as slow as a wrong password, and as vague
            ok = _burn_time(password)
        step = None
        if ok and user is not None and user.totp_secret_cipher is not None:
            secret = self._cipher.decrypt(user.totp_secret_cipher, table="users", column="totp", row_id=user.id)
            ok, step = _totp_step(secret, typed_code(totp), now)
        elif ok and self.require_totp_for_staff:
            ok = False  # the policy wants a second factor this account has not set up
        return self._settle(attempt, user if ok else None, step, now)

    def _reserve(self, attempt: _Attempt, username: str, now: dt.datetime) -> User | None:
        """Count the attempt against every limit it falls under (refusing a throttled one), and
        find the account."""
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"signin:{attempt.subject}")
            known = uow.session.get(KnownSignInAddress, attempt.known_key) is not None
            keys = [(attempt.pair_key, ACCOUNT_FROM_CLIENT), (f"client:{attempt.client}", CLIENT)]
            if not known:
                keys.append((f"acct:{attempt.subject}", ACCOUNT))
            if any(self._blocked(uow, key, now) for key, _ in keys):
                self._event(uow, "password_signin", "throttled", subject=attempt.subject, client=attempt.client)
                uow.commit()
                raise Throttled("too many attempts; wait a moment and try again")
            for key, rule in keys:
                self._count(uow, key, now, rule)  # reserved now, forgiven on success
            user = uow.session.exec(select(User).where(User.username == username.strip())).first()
            uow.commit()
            return user

    def _settle(self, attempt: _Attempt, user: User | None, step: int | None, now: dt.datetime) -> Principal:
        """Refuse (recorded) or sign in: a TOTP code is good once, the reservation is forgiven,
        and the address becomes one this account is known to sign in from."""
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"signin:{attempt.subject}")
            if user is not None and step is not None:
                used = uow.session.get(TotpStep, user.id)
                if used is not None and used.step >= step:
                    user = None  # a code is good once: a replayed one is refused
                else:
                    uow.session.merge(TotpStep(user_id=user.id, step=step, used_at=now))
            if user is None:
                self._event(uow, "password_signin", "failure", subject=attempt.subject, client=attempt.client)
                uow.commit()
                raise SignInRefused("wrong user name, password or code")
            uow.session.exec(delete(Throttle).where(col(Throttle.key) == attempt.pair_key))
            for key in (f"client:{attempt.client}", f"acct:{attempt.subject}"):
                row = uow.session.get(Throttle, key)
                if row is not None and row.failures > 0:
                    row.failures -= 1  # the reservation for this attempt
                    row.blocked_until = None if row.failures < CLIENT.threshold else row.blocked_until
            known = uow.session.get(KnownSignInAddress, attempt.known_key)
            if known is None:
                uow.session.add(KnownSignInAddress(key=attempt.known_key, first_seen_at=now, last_seen_at=now))
            else:
                known.last_seen_at = now
            self._event(
                uow, "password_signin", "success", user_id=user.id, subject=attempt.subject, client=attempt.client
            )
            uow.commit()
            return Principal(user.id, Role(user.role))


@dataclass(frozen=True)
class _Attempt:
    """One password sign-in, as the limits know it: blind indexes of the account and the address."""

    subject: str
    client: str

    @property
    def pair_key(self) -> str:
        return f"acct-client:{self.subject}:{self.client}"

    @property
    def known_key(self) -> str:
        return f"{self.subject}:{self.client}"


def _totp_step(secret: str, code: str, now: dt.datetime) -> tuple[bool, int | None]:
    """Whether `code` (already `typed_code`) is the secret's code for a step within one of
    now, and which step. Anything but six ASCII digits is simply wrong (compare_digest would
    raise on non-ASCII text)."""
    if not is_six_digits(code):
        return False, None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // totp.interval
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return True, step
    return False, None


def _burn_time(password: str) -> bool:
    """Verify against a dummy hash so an unknown user name takes as long as a wrong password."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    verify_password(_DUMMY_HASH[0], password)
    return False
