"""Consumers sign in (and sign up) with a mobile number and a 6-digit code sent to it, and add
more numbers the same way. Codes are stored as keyed hashes; wrong tries are counted per number
and client address and per code, so one client cannot spoil another's code."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets

from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from core.adapters.sms import SmsGateway
from core.domain.access import STAFF, NotAllowed, Principal, Role, require_consumer
from core.domain.codes import is_six_digits, typed_code
from core.domain.throttling import ThrottleRule
from core.errors import InputError, PortalError
from core.persistence.tables import SmsCode, Throttle, User, VerifiedNumber, new_id
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import BlindIndex, FieldCipher
from core.services.identity.staff_sign_in import SignInRefused
from core.services.identity.throttles import Throttled, Throttles

CODE_LIFETIME = dt.timedelta(minutes=10)
CODE_TRIES = 5  # wrong tries per number from one client address before a wait
CODE_TRIES_IN_ALL = 20  # wrong tries one code survives from all clients together
RESEND_AFTER = dt.timedelta(seconds=60)
CODES_PER_NUMBER_PER_CLIENT_PER_HOUR = 5
CODES_PER_NUMBER_PER_HOUR = 10
CODES_PER_CLIENT_PER_HOUR = 20
SMS_TRIES = ThrottleRule(
    "sms tries per number and client", CODE_TRIES, CODE_LIFETIME, dt.timedelta(minutes=1), dt.timedelta(minutes=10)
)
_SMS_PER_CLIENT = ThrottleRule(
    "sms per client", CODES_PER_CLIENT_PER_HOUR, dt.timedelta(hours=1), dt.timedelta(hours=1), dt.timedelta(hours=1)
)


class CodeRefused(InputError):
    key = "error.sms.code"


class SmsSignIn(Throttles):
    _engine: Engine
    _sms: SmsGateway
    _cipher: FieldCipher
    _number_index: BlindIndex
    _client_index: BlindIndex
    _code_hash: BlindIndex

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
            if holder is not None and holder.role in STAFF:
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

    def _verified(self, user_id: str, national: str, index: str, masked: str, now: dt.datetime) -> VerifiedNumber:
        row_id = new_id()
        cipher = self._cipher.encrypt(national, table="verified_numbers", column="number", row_id=row_id)
        return VerifiedNumber(
            id=row_id, user_id=user_id, number_cipher=cipher, number_index=index, masked=masked, verified_at=now
        )
