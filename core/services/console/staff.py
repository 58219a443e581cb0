"""Staff accounts as admins manage them: list them; create one (analyst, operator or admin) whose
holder sets their own password through a one-time link; issue a new link while the account still
waits for its password; reset a second factor (the holder enrols again); disable and enable.

The link carries a random token; only its hash is stored, with an expiry (24 hours by default),
and it works once. Nobody else ever knows the password: the admin sees the link once, the holder
opens it and chooses one. A disabled account cannot sign in (`sign_in_with_password`), and its
sign-ins end at their next use (`check_session`), and the four-eyes requests it made and nobody
agreed to yet are withdrawn (lapsed, audited). An admin cannot disable themselves, nor the
last enabled admin. Everything is written to the audit chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from core.domain.access import NotAllowed, Principal, Role
from core.errors import InputError, PortalError
from core.persistence.tables import SignInSession, StaffSetupToken, TotpStep, User
from core.persistence.uow import UnitOfWork
from core.security.passwords import check_strength, hash_password
from core.services.audit import AuditLog
from core.services.console.approvals import withdraw_requests_of
from core.services.identity.staff_sign_in import STAFF_ROLES, staff_username, username_taken

SETUP_LINK_S = 24 * 3600.0
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


class SetupLinkInvalid(PortalError):
    """The setup link is unknown, used already, or expired (one vague answer for all three)."""

    key = "error.staff.setup_link"


class LastAdmin(NotAllowed):
    """Disabling the last enabled admin would leave nobody to manage staff."""

    key = "error.staff.last_admin"


@dataclass(frozen=True)
class StaffView:
    user_id: str
    username: str
    role: Role
    totp: bool  # a second factor is set up
    disabled: bool
    awaiting_setup: bool  # no password yet: the holder has not used their link
    created_at: dt.datetime


@dataclass(frozen=True)
class SetupLink:
    """A one-time link's token: shown once, to hand to the account's holder."""

    user_id: str
    username: str
    token: str
    expires_at: dt.datetime


def require_admin(caller: Principal) -> None:
    if caller.role is not Role.ADMIN:
        raise NotAllowed("only an admin manages staff accounts")


class StaffService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        *,
        setup_s: float = SETUP_LINK_S,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._setup = dt.timedelta(seconds=setup_s)
        self._clock = clock

    # --- admins ---------------------------------------------------------------------------------

    def staff(self, caller: Principal) -> list[StaffView]:
        """Every staff account, oldest first."""
        require_admin(caller)
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(
                select(User)
                .where(col(User.role).in_(STAFF_ROLES), col(User.deleted_at).is_(None))
                .order_by(col(User.created_at), col(User.username))
            ).all()
        return [
            StaffView(
                user_id=r.id,
                username=r.username or r.id[:8],
                role=Role(r.role),
                totp=r.totp_secret_cipher is not None,
                disabled=r.disabled_at is not None,
                awaiting_setup=r.password_hash is None,
                created_at=r.created_at,
            )
            for r in rows
        ]

    def create(self, caller: Principal, role: str, username: str) -> SetupLink:
        """A new staff account without a password, and the one-time link its holder sets one with."""
        require_admin(caller)
        if role not in STAFF_ROLES:
            raise InputError(f"role must be one of {', '.join(STAFF_ROLES)}", key="error.role.invalid")
        name = staff_username(username)
        now = self._clock()
        try:
            with UnitOfWork(self._engine) as uow:
                self._admin_row(uow, caller)
                if username_taken(uow, name):
                    raise InputError("that user name is taken", key="error.username.taken")
                user = User(role=role, username=name, created_at=now)
                uow.session.add(user)
                uow.session.flush()
                link = self._new_link(uow, caller, user, now)
                self._audit.append(uow, caller.user_id, "staff.create", user.id, {"role": role, "username": name})
                uow.commit()
        except IntegrityError:  # the same name created at the same moment
            raise InputError("that user name is taken", key="error.username.taken") from None
        return link

    def new_setup_link(self, caller: Principal, user_id: str) -> SetupLink:
        """A new link for an account still waiting for its password (the first one expired or
        was lost); earlier links stop working."""
        require_admin(caller)
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            self._admin_row(uow, caller)
            user = self._staff_row(uow, user_id)
            if user.password_hash is not None:
                raise InputError("this account has set its password already", key="error.staff.set_up")
            link = self._new_link(uow, caller, user, now)
            self._audit.append(uow, caller.user_id, "staff.setup_link", user.id, {"until": link.expires_at.isoformat()})
            uow.commit()
        return link

    def reset_totp(self, caller: Principal, user_id: str) -> None:
        """Clear an account's second factor: its holder enrols again (`python -m core users totp`)."""
        require_admin(caller)
        with UnitOfWork(self._engine) as uow:
            self._admin_row(uow, caller)
            user = self._staff_row(uow, user_id)
            user.totp_secret_cipher = None
            uow.session.add(user)
            uow.session.exec(delete(TotpStep).where(col(TotpStep.user_id) == user.id))
            self._audit.append(uow, caller.user_id, "staff.reset_totp", user.id, {})
            uow.commit()

    def disable(self, caller: Principal, user_id: str) -> None:
        """The account can no longer sign in, and its sign-ins end. Not oneself; not the last
        enabled admin."""
        require_admin(caller)
        if user_id == caller.user_id:
            raise NotAllowed("an admin cannot disable their own account", key="error.staff.self")
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            uow.lock("staff-admins")  # two admins disabling each other at once: one of them wins
            user = self._staff_row(uow, user_id)
            if user.disabled_at is not None:
                return
            if user.role == Role.ADMIN.value and not self._enabled_admins(uow) - {user.id}:
                raise LastAdmin("the last enabled admin cannot be disabled")
            self._admin_row(uow, caller)
            user.disabled_at = now
            uow.session.add(user)
            uow.session.execute(
                update(SignInSession)
                .where(col(SignInSession.user_id) == user.id, col(SignInSession.ended_at).is_(None))
                .values(ended_at=now)
            )
            self._audit.append(uow, caller.user_id, "staff.disable", user.id, {"role": user.role})
            withdraw_requests_of(uow, self._audit, user.id, caller.user_id, now)  # nobody agrees to them now
            uow.commit()

    def enable(self, caller: Principal, user_id: str) -> None:
        """A disabled account may sign in again."""
        require_admin(caller)
        with UnitOfWork(self._engine) as uow:
            uow.lock("staff-admins")
            self._admin_row(uow, caller)
            user = self._staff_row(uow, user_id)
            if user.disabled_at is None:
                return
            user.disabled_at = None
            uow.session.add(user)
            self._audit.append(uow, caller.user_id, "staff.enable", user.id, {"role": user.role})
            uow.commit()

    # --- the holder, through the link (anonymous) -----------------------------------------------

    def setup_account(self, token: str) -> str:
        """The user name a setup link is for; SetupLinkInvalid when it no longer works."""
        with UnitOfWork(self._engine) as uow:
            _, user = self._link(uow, token, self._clock())
            return user.username or ""

    def set_password(self, token: str, password: str, again: str) -> str:
        """The holder chooses their password (typed twice); the link stops working. Returns the
        user name, to sign in with."""
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            _, user = self._link(uow, token, now)
            name = user.username or ""
        if password != again:
            raise InputError("the two passwords differ", key="error.password.mismatch")
        check_strength(password, username=name)
        hashed = hash_password(password)  # slow: outside any transaction
        with UnitOfWork(self._engine) as uow:
            row, user = self._link(uow, token, now)
            used = uow.session.execute(
                update(StaffSetupToken)
                .where(col(StaffSetupToken.token_hash) == row.token_hash, col(StaffSetupToken.used_at).is_(None))
                .values(used_at=now)
            )
            if used.rowcount != 1:  # type: ignore[attr-defined]
                raise SetupLinkInvalid("this link was used already")
            user.password_hash = hashed
            uow.session.add(user)
            self._audit.append(uow, user.id, "staff.password_set", user.id, {})
            uow.commit()
        return name

    # --- helpers --------------------------------------------------------------------------------

    def _new_link(self, uow: UnitOfWork, caller: Principal, user: User, now: dt.datetime) -> SetupLink:
        uow.session.execute(
            update(StaffSetupToken)
            .where(col(StaffSetupToken.user_id) == user.id, col(StaffSetupToken.used_at).is_(None))
            .values(used_at=now)
        )
        token = secrets.token_urlsafe(32)
        expires = now + self._setup
        uow.session.add(
            StaffSetupToken(
                token_hash=_hash(token), user_id=user.id, created_by=caller.user_id, created_at=now, expires_at=expires
            )
        )
        return SetupLink(user.id, user.username or "", token, expires)

    def _link(self, uow: UnitOfWork, token: str, now: dt.datetime) -> tuple[StaffSetupToken, User]:
        row = uow.session.get(StaffSetupToken, _hash(token)) if _TOKEN.fullmatch(str(token)) else None
        user = uow.session.get(User, row.user_id) if row is not None else None
        if (
            row is None
            or user is None
            or row.used_at is not None
            or row.expires_at <= now
            or user.deleted_at is not None
            or user.disabled_at is not None
        ):
            raise SetupLinkInvalid("this link is unknown, used or expired")
        return row, user

    @staticmethod
    def _staff_row(uow: UnitOfWork, user_id: str) -> User:
        user_id = str(user_id)
        user = uow.session.get(User, user_id) if user_id.isprintable() and len(user_id) <= 36 else None
        if user is None or user.role not in STAFF_ROLES or user.deleted_at is not None:
            raise NotAllowed("no such staff account", key="error.staff.unknown")
        return user

    def _admin_row(self, uow: UnitOfWork, caller: Principal) -> None:
        """The caller is an enabled admin now, not only when they signed in."""
        if caller.user_id not in self._enabled_admins(uow):
            raise NotAllowed("only an enabled admin manages staff accounts")

    @staticmethod
    def _enabled_admins(uow: UnitOfWork) -> set[str]:
        return set(
            uow.session.exec(
                select(User.id).where(
                    User.role == Role.ADMIN.value, col(User.disabled_at).is_(None), col(User.deleted_at).is_(None)
                )
            ).all()
        )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
