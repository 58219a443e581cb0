"""Accounts and sign-in: consumers by mobile number and SMS code, staff by password (+ TOTP).

The built-in OpenID provider calls this service to authenticate people; Streamlit's `st.login`
then receives signed ID tokens. Every success and failure is recorded in `auth_events`, without
secrets; phone numbers are stored encrypted with a blind index.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import unicodedata
from collections.abc import Callable

import pyotp
from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from core.adapters.sms import SmsGateway
from core.domain.access import OPERATORS, STAFF, NotAllowed, Principal, Role, require_consumer
from core.domain.recovery import TERMINAL
from core.domain.throttling import ACCOUNT, ACCOUNT_FROM_CLIENT, CLIENT, ThrottleRule
from core.errors import InputError, PortalError
from core.persistence.tables import (
    AuthEvent,
    AuthorizationCode,
    ExternalIdentity,
    QuoteLock,
    Recovery,
    SignInSession,
    SmsCode,
    Throttle,
    User,
    VerifiedNumber,
    new_id,
)
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.security.keys import PortalKeys
from core.security.passwords import check_strength, hash_password, verify_password

log = logging.getLogger(__name__)

STAFF_ROLES = tuple(role.value for role in Role if role in STAFF)  # as staff accounts are created
CODE_LIFETIME = dt.timedelta(minutes=10)
CODE_TRIES = 5  # wrong tries per number from one client address before a wait
CODE_TRIES_IN_ALL = 20  # wrong tries one code survives from all clients together
RESEND_AFTER = dt.timedelta(seconds=60)
IDLE_LIMIT = dt.timedelta(minutes=30)
ABSOLUTE_LIMIT = dt.timedelta(hours=12)
RECENT_SIGN_IN = dt.timedelta(minutes=10)  # sensitive actions ask for a sign-in this fresh
CODES_PER_NUMBER_PER_CLIENT_PER_HOUR = 5
CODES_PER_NUMBER_PER_HOUR = 10
CODES_PER_CLIENT_PER_HOUR = 20


class SignInRefused(PortalError):
    """Wrong credentials; deliberately vague so it does not tell which part was wrong."""

    key = "error.signin.refused"


class Throttled(PortalError):
    key = "error.signin.throttled"


class CodeRefused(InputError):
    key = "error.sms.code"


class AccountBusy(InputError):
    key = "error.account.recovery_in_flight"


FINISHED = frozenset(state.value for state in TERMINAL)


class IdentityService:
    def __init__(
        self,
        engine: Engine,
        keys: PortalKeys,
        sms: SmsGateway,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        require_totp_for_staff: bool = False,
    ) -> None:
        self._engine = engine
        self._sms = sms
        self._clock = clock
        self.require_totp_for_staff = require_totp_for_staff
        self._cipher = FieldCipher(keys.data_key)
        self._number_index = BlindIndex(keys.index_key, MOBILE_NUMBER)
        self._subject_index = BlindIndex(keys.index_key, "username")
        self._client_index = BlindIndex(keys.index_key, "client-address")
        self._code_hash = BlindIndex(keys.index_key, "sms-code")

    # --- consumers: number + SMS code ---------------------------------------------------------

    def request_code(self, phone: str, client: str) -> str:
        """Send a 6-digit code to the number; returns the number masked for display.

        One code a minute per number; five an hour per number from one client address, ten an
        hour per number in all (a bound on texts anyone can make a number receive); twenty an
        hour per client address. The text goes out after the code is committed."""
        number = parse_mobile(phone)
        index = self._number_index(number.national)
        now = self._clock()
        client_key = self._client_index(client)
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"sms:{index}")
            recent = uow.session.exec(
                select(SmsCode).where(SmsCode.number_index == index, SmsCode.created_at > now - dt.timedelta(hours=1))
            ).all()
            if recent and now - max(c.created_at for c in recent) < RESEND_AFTER:
                raise Throttled("wait a minute before asking for another code", key="error.sms.resend_wait")
            from_here = sum(1 for c in recent if c.client == client_key)
            if (
                from_here >= CODES_PER_NUMBER_PER_CLIENT_PER_HOUR
                or len(recent) >= CODES_PER_NUMBER_PER_HOUR
                or self._blocked(uow, f"sms-client:{client_key}", now)
            ):
                self._event(uow, "sms_request", "throttled", subject=index, client=client_key)
                uow.commit()
                raise Throttled("too many codes requested; try again later", key="error.sms.too_many")
            code = f"{secrets.randbelow(10**6):06d}"
            row = SmsCode(
                number_index=index,
                code_hash=self._code_hash(f"{index}:{code}"),
                client=client_key,
                created_at=now,
                expires_at=now + CODE_LIFETIME,
            )
            uow.session.add(row)
            self._count(uow, f"sms-client:{client_key}", now, _SMS_PER_CLIENT)
            self._event(uow, "sms_request", "success", subject=index, client=client_key)
            uow.commit()
        try:
            self._sms.send(
                number.national, f"【话费回收比价】验证码 {code},10分钟内有效。请勿告诉他人。", reference=row.id
            )
        except PortalError:
            with UnitOfWork(self._engine) as uow:  # a code nobody received must not count as live
                dead = uow.session.get(SmsCode, row.id)
                if dead is not None:
                    dead.consumed_at = now
                    uow.commit()
            raise
        return number.masked

    def verify_code(self, phone: str, code: str, client: str) -> Principal:
        """Check a code; on success sign the holder of the number in, signing them up if new.

        Any live code for the number is accepted (an attacker asking for new codes does not
        void the owner's). Wrong tries are counted per number and client address (five, then
        a wait), and per code (twenty in all), so one client cannot spoil another's code."""
        number = parse_mobile(phone)
        index = self._number_index(number.national)
        now = self._clock()
        client_key = self._client_index(client)
        with UnitOfWork(self._engine) as uow:
            self._consume_code(uow, index, code, client_key, now, "sms_signin")
            owner = uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.number_index == index)).first()
            holder = uow.session.get(User, owner.user_id) if owner is not None else None
            if holder is not None and holder.role in STAFF_ROLES:
                # Staff sign in with their password (and second factor), never by a text message.
                self._event(uow, "sms_signin", "failure", subject=index, client=client_key, reason="staff_number")
                uow.commit()
                raise SignInRefused("staff accounts sign in with a password")
            if holder is None:
                user = User(role="consumer")
                uow.session.add(user)
                uow.session.flush()
                uow.session.add(self._verified(user.id, number.national, index, number.masked, now))
                user_id, role, kind = user.id, user.role, "signup"
            else:
                user_id, role, kind = holder.id, holder.role, "sms_signin"
            self._event(uow, kind, "success", user_id=user_id, subject=index, client=client_key)
            uow.commit()
        return Principal(user_id, Role(role))

    def _consume_code(
        self, uow: UnitOfWork, index: str, code: str, client_key: str, now: dt.datetime, kind: str
    ) -> None:
        """Use up a live code for the number in this transaction, or raise (and commit the
        counted failure). The caller commits on success."""
        cleaned = typed_code(code)
        tries_key = f"sms-verify:{index}:{client_key}"
        uow.lock(f"sms:{index}")
        if self._blocked(uow, tries_key, now):
            self._event(uow, kind, "throttled", subject=index, client=client_key)
            uow.commit()
            raise Throttled("too many wrong codes; wait a moment and try again")
        live = uow.session.exec(
            select(SmsCode).where(
                SmsCode.number_index == index,
                col(SmsCode.consumed_at).is_(None),
                SmsCode.expires_at > now,
                SmsCode.attempts < CODE_TRIES_IN_ALL,
            )
        ).all()
        if not live:
            self._event(uow, kind, "failure", subject=index, client=client_key, reason="no_live_code")
            uow.commit()
            raise CodeRefused("the code has expired or was used; ask for a new one", key="error.sms.expired")
        candidate = self._code_hash(f"{index}:{cleaned}") if is_six_digits(cleaned) else ""
        match = next((c for c in live if candidate and hmac.compare_digest(c.code_hash, candidate)), None)
        if match is None:
            for row in live:
                row.attempts += 1
            failures = self._count(uow, tries_key, now, SMS_TRIES)
            left = max(0, CODE_TRIES - failures)
            self._event(uow, kind, "failure", subject=index, client=client_key, reason="wrong_code")
            uow.commit()
            raise CodeRefused(f"wrong code; {left} tries left", key="error.sms.wrong", left=left)
        match.consumed_at = now
        uow.session.exec(delete(Throttle).where(col(Throttle.key) == tries_key))

    def add_number(self, caller: Principal, phone: str, code: str, client: str) -> str:
        """A signed-in consumer proves they hold another number (the code `request_code` sent
        to it); returns it masked. A number belongs to one account: another's is refused."""
        require_consumer(caller, "staff numbers are set by an administrator")
        number = parse_mobile(phone)
        index = self._number_index(number.national)
        now = self._clock()
        client_key = self._client_index(client)
        with UnitOfWork(self._engine) as uow:
            self._consume_code(uow, index, code, client_key, now, "number_add")
            owner = uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.number_index == index)).first()
            if owner is not None and owner.user_id != caller.user_id:
                self._event(uow, "number_add", "failure", user_id=caller.user_id, subject=index, reason="taken")
                uow.commit()
                raise NotAllowed("this number belongs to another account", key="error.number.taken")
            if owner is None:
                uow.session.add(self._verified(caller.user_id, number.national, index, number.masked, now))
            self._event(uow, "number_add", "success", user_id=caller.user_id, subject=index, client=client_key)
            uow.commit()
        return number.masked

    def number_of(self, caller: Principal, number_id: str) -> str:
        """The full number behind one of the caller's verified numbers, for a partner call."""
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(VerifiedNumber, number_id)
        if row is None or row.user_id != caller.user_id:
            raise NotAllowed("verify this number first", key="error.recovery.number_not_verified")
        return self._cipher.decrypt(row.number_cipher, table="verified_numbers", column="number", row_id=row.id)

    def _verified(self, user_id: str, national: str, index: str, masked: str, now: dt.datetime) -> VerifiedNumber:
        row_id = new_id()
        cipher = self._cipher.encrypt(national, table="verified_numbers", column="number", row_id=row_id)
        return VerifiedNumber(
            id=row_id, user_id=user_id, number_cipher=cipher, number_index=index, masked=masked, verified_at=now
        )

    # --- staff: username + password (+ TOTP) ---------------------------------------------------

    def create_staff(self, role: str, username: str, password: str, *, phone: str | None = None) -> str:
        if role not in STAFF_ROLES:
            raise InputError(f"role must be one of {', '.join(STAFF_ROLES)}", key="error.role.invalid")
        name = username.strip()
        if not (3 <= len(name) <= 64) or not all(ch.isalnum() or ch in "._-" for ch in name):
            raise InputError("a user name has 3-64 letters, digits, '.', '_' or '-'", key="error.username.invalid")
        check_strength(password, username=name)
        number = parse_mobile(phone) if phone else None
        with UnitOfWork(self._engine) as uow:
            if uow.session.exec(select(User).where(User.username == name)).first():
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
        totp = typed_code(totp)
        subject = self._subject_index(username.strip().lower())
        client_key = self._client_index(client)
        pair_key = f"acct-client:{subject}:{client_key}"
        known_client = f"known:{subject}:{client_key}"
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"signin:{subject}")
            trusted = uow.session.get(Throttle, known_client) is not None
            keys = [(pair_key, ACCOUNT_FROM_CLIENT), (f"client:{client_key}", CLIENT)]
            if not trusted:
                keys.append((f"acct:{subject}", ACCOUNT))
            if any(self._blocked(uow, key, now) for key, _ in keys):
                self._event(uow, "password_signin", "throttled", subject=subject, client=client_key)
                uow.commit()
                raise Throttled("too many attempts; wait a moment and try again")
            for key, rule in keys:
                self._count(uow, key, now, rule)  # reserved now, forgiven below on success
            user = uow.session.exec(select(User).where(User.username == username.strip())).first()
            uow.commit()
        # The slow part (argon2id) runs outside any transaction: SQLite writers queue on one lock.
        ok = verify_password(user.password_hash, password) if user and user.password_hash else _burn_time(password)
        step = None
        if ok and user is not None and user.totp_secret_cipher is not None:
            secret = self._cipher.decrypt(user.totp_secret_cipher, table="users", column="totp", row_id=user.id)
            ok, step = _totp_step(secret, totp, now)
        elif ok and self.require_totp_for_staff:
            ok = False  # the policy wants a second factor this account has not set up
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"signin:{subject}")
            if ok and user is not None and step is not None:
                used = uow.session.get(Throttle, f"totp-step:{user.id}")
                if used is not None and used.failures >= step:
                    ok = False  # a code is good once: a replayed one is refused
                else:
                    uow.session.merge(Throttle(key=f"totp-step:{user.id}", failures=step, window_started_at=now))
            if not ok or user is None:
                self._event(uow, "password_signin", "failure", subject=subject, client=client_key)
                uow.commit()
                raise SignInRefused("wrong user name, password or code")
            uow.session.exec(delete(Throttle).where(col(Throttle.key) == pair_key))
            for key in (f"client:{client_key}", f"acct:{subject}"):
                row = uow.session.get(Throttle, key)
                if row is not None and row.failures > 0:
                    row.failures -= 1  # the reservation for this attempt
                    row.blocked_until = None if row.failures < CLIENT.threshold else row.blocked_until
            uow.session.merge(Throttle(key=known_client, failures=0, window_started_at=now))
            self._event(uow, "password_signin", "success", user_id=user.id, subject=subject, client=client_key)
            uow.commit()
            return Principal(user.id, Role(user.role))

    # --- people from an external OpenID provider ------------------------------------------------

    def account_for_external(self, issuer: str, subject: str) -> str:
        """The local account of someone an external provider vouches for; a consumer account
        is made on their first sign-in (staff roles are granted by an admin, not by the provider)."""
        key = self._subject_index(f"external:{issuer}:{subject}")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"external:{key}")
            link = uow.session.get(ExternalIdentity, key)
            if link is not None:
                return link.user_id
            user = User(role="consumer")
            uow.session.add(user)
            uow.session.flush()
            uow.session.add(ExternalIdentity(key=key, user_id=user.id))
            self._event(uow, "external_signup", "success", user_id=user.id, subject=key)
            uow.commit()
            return user.id

    # --- the portal's own session limits --------------------------------------------------------

    def check_session(self, user_id: str, auth_time: int) -> Principal | None:
        """The caller behind a sign-in, if it is still good: the account exists, the sign-in is
        younger than 12 hours and was used in the last 30 minutes. Marks it used."""
        now = self._clock()
        started = dt.datetime.fromtimestamp(auth_time, dt.UTC)
        key = self._subject_index(f"session:{user_id}:{auth_time}")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"session:{key}")
            user = uow.session.get(User, user_id)
            row = uow.session.get(SignInSession, key)
            if row is None:
                row = SignInSession(key=key, user_id=user_id, started_at=started, last_seen_at=now)
                uow.session.add(row)
            expired = (
                user is None
                or user.deleted_at is not None
                or row.ended_at is not None
                or now - started > ABSOLUTE_LIMIT
                or now - row.last_seen_at > IDLE_LIMIT
            )
            if expired:
                row.ended_at = row.ended_at or now
            else:
                row.last_seen_at = now
            uow.commit()
            return None if expired or user is None else Principal(user.id, Role(user.role))

    def end_session(self, user_id: str, auth_time: int) -> None:
        key = self._subject_index(f"session:{user_id}:{auth_time}")
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(SignInSession, key)
            if row is not None and row.ended_at is None:
                row.ended_at = self._clock()
                uow.commit()

    def is_recent(self, auth_time: int) -> bool:
        return self._clock() - dt.datetime.fromtimestamp(auth_time, dt.UTC) <= RECENT_SIGN_IN

    # --- the account's own data ----------------------------------------------------------------

    def verified_numbers(self, caller: Principal, user_id: str) -> list[tuple[str, str]]:
        """(id, masked number) of a user's numbers: the user themself, or an operator/admin."""
        self._require_owner_or(caller, user_id, OPERATORS)
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(select(VerifiedNumber).where(VerifiedNumber.user_id == user_id)).all()
            return [(row.id, row.masked) for row in rows]

    def consumer_by_number(self, phone: str) -> Principal:
        """The account that verified `phone` (the command line acts as that user)."""
        number = parse_mobile(phone)
        with UnitOfWork(self._engine) as uow:
            row = uow.session.exec(
                select(VerifiedNumber).where(VerifiedNumber.number_index == self._number_index(number.national))
            ).first()
            user = uow.session.get(User, row.user_id) if row is not None else None
        if user is None:
            raise NotAllowed("no account has verified this number", key="error.recovery.number_not_verified")
        return Principal(user.id, Role(user.role))

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
        if caller.role == "admin" and caller.user_id != user_id and self.role_of(user_id) == "admin":
            raise NotAllowed("an admin account is removed by another admin only through the command line")
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"limits:user:{user_id}")  # what a submission holds while it creates a recovery
            user = uow.session.get(User, user_id)
            if user is None or user.deleted_at is not None:
                raise NotAllowed("no such account")
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

    @staticmethod
    def _require_owner_or(caller: Principal, user_id: str, roles: frozenset[Role]) -> None:
        if caller.user_id != user_id and caller.role not in roles:
            raise NotAllowed("not your account")

    # --- throttles and the audit trail ----------------------------------------------------------

    def _blocked(self, uow: UnitOfWork, key: str, now: dt.datetime) -> bool:
        row = uow.session.get(Throttle, key)
        return row is not None and row.blocked_until is not None and row.blocked_until > now

    def _count(self, uow: UnitOfWork, key: str, now: dt.datetime, rule: ThrottleRule) -> int:
        """One more failure under `key`; returns the count in the current window."""
        uow.lock(f"throttle:{key}")
        row = uow.session.get(Throttle, key)
        if row is None:
            row = Throttle(key=key, failures=0, window_started_at=now)
            uow.session.add(row)
        elif now - row.window_started_at > rule.window:
            row.failures, row.window_started_at, row.blocked_until = 0, now, None
        row.failures += 1
        wait = rule.wait_after(row.failures)
        row.blocked_until = now + wait if wait else None
        return row.failures

    def _event(
        self,
        uow: UnitOfWork,
        kind: str,
        outcome: str,
        *,
        user_id: str | None = None,
        subject: str = "",
        client: str = "",
        reason: str = "",
    ) -> None:
        uow.session.add(
            AuthEvent(
                at=self._clock(),
                kind=kind,
                outcome=outcome,
                user_id=user_id,
                subject=subject,
                client=client,
                reason=reason,
            )
        )
        log.info("auth %s %s user=%s reason=%s", kind, outcome, user_id or "-", reason or "-")


SMS_TRIES = ThrottleRule(
    "sms tries per number and client", CODE_TRIES, CODE_LIFETIME, dt.timedelta(minutes=1), dt.timedelta(minutes=10)
)
_SMS_PER_CLIENT = ThrottleRule(
    "sms per client", CODES_PER_CLIENT_PER_HOUR, dt.timedelta(hours=1), dt.timedelta(hours=1), dt.timedelta(hours=1)
)
_DUMMY_HASH: list[str] = []


MAX_TYPED_CODE = 64  # a code, spaces and all, is never longer: more is junk, not normalised


def typed_code(code: object) -> str:
    """A code as the person meant it: digits typed with a Chinese input method are full-width
    (`１２３４５６`), and spaces (ideographic ones too) creep in. NFKC makes full-width digits
    ASCII; whitespace is dropped. Whatever is left may still be junk: see `is_six_digits`."""
    text = str(code)
    if len(text) > MAX_TYPED_CODE:
        return ""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if not ch.isspace())


def is_six_digits(code: str) -> bool:
    """Six ASCII digits (str.isdigit alone also accepts other scripts' digits, superscripts ...)."""
    return len(code) == 6 and code.isascii() and code.isdigit()


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
