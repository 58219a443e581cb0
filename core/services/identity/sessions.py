"""The portal's own limits on a sign-in, whoever vouched for it: the account must still exist,
the sign-in be younger than 12 hours and used in the last 30 minutes; sensitive actions ask for
one from the last 10 minutes. And the local account of someone an external provider vouches for."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from core.domain.access import Principal, Role
from core.persistence.tables import ExternalIdentity, SignInSession, User
from core.persistence.uow import UnitOfWork
from core.security.fields import BlindIndex
from core.services.identity.throttles import Throttles

IDLE_LIMIT = dt.timedelta(minutes=30)
ABSOLUTE_LIMIT = dt.timedelta(hours=12)
RECENT_SIGN_IN = dt.timedelta(minutes=10)  # sensitive actions ask for a sign-in this fresh


class Sessions(Throttles):
    _engine: Engine
    _subject_index: BlindIndex

    def check_session(self, user_id: str, auth_time: int, *, touch: bool = True) -> Principal | None:
        """The caller behind a sign-in, if it is still good: the account exists, the sign-in is
        younger than 12 hours and was used in the last 30 minutes. Marks it used, unless not
        `touch` (a part of a page that refreshes itself on a timer is no use of the sign-in: it
        must not keep an idle one alive)."""
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
                or user.disabled_at is not None  # an admin disabled the account
                or row.ended_at is not None
                or now - started > ABSOLUTE_LIMIT
                or now - row.last_seen_at > IDLE_LIMIT
            )
            if expired:
                row.ended_at = row.ended_at or now
            elif touch:
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
