"""Risk control around a submission: the facts the rules need, read in the submission's own
transaction (so two submissions at once see each other), and the deny list.

The rules themselves are pure (`core.domain.risk`); this module only gathers what they read.
Every attempt counts towards velocity and structuring except one its owner cancelled: a
refused attempt is still an attempt.

The deny list keeps numbers, devices and payees as blind indexes, with a display form safe to
show (a masked number, a shortened index). Adding an entry and removing one are written to the
audit chain (kind, display form, reason; never the value). Operators use it through the console's
`DenyListService` (core/services/console/deny_list.py): removing an entry takes a second
operator, and `allow` is only what that service's four-eyes handler calls once one agreed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, literal, literal_column, null, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel import select as orm_select

from core.domain.access import NotAllowed, Principal, require_operator
from core.domain.carriers import Carrier
from core.domain.notes import kept_words, masked_numbers
from core.domain.payee import canonical_payee
from core.domain.recovery import RecoveryState
from core.domain.risk import Assessment, Past, RiskFacts, RiskThresholds, assess
from core.errors import InputError, PortalError
from core.persistence.fast_reads import Read
from core.persistence.tables import DenyEntry, Recovery, User
from core.persistence.uow import UnitOfWork
from core.phones import parse_mobile
from core.security.fields import MOBILE_NUMBER, BlindIndex
from core.services.audit import AuditLog

DENY_KINDS = ("user", "number", "device", "payee")
NOT_COUNTED = (RecoveryState.CANCELLED.value,)
REASON_LENGTH = (3, 200)
_USER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class NotDenied(PortalError):
    """The entry is not (or no longer) on the deny list."""

    key = "error.deny.gone"


@dataclass(frozen=True)
class Subject:
    """Who and what a submission is about, as the rules see them (blind indexes only)."""

    user_id: str
    number_index: str
    device_index: str  # "" when the device is unknown (the command line)
    payee_index: str


@dataclass(frozen=True)
class DenyView:
    kind: str
    key: str
    reason: str
    added_by: str  # the user id of the operator who added it
    added_at: dt.datetime
    display: str = ""  # a masked number, a shortened index or user id: safe to show


def deny_ref(key: str) -> str:
    """An entry's reference: short enough for the audit chain's subject and a four-eyes request,
    the same for the same entry, and telling nothing about the value."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def deny_reason(text: str) -> str:
    """A reason as kept (`kept_words`: one line, no control characters, numbers masked): 3 to
    200 characters."""
    reason = kept_words(text)
    low, high = REASON_LENGTH
    if not low <= len(reason) <= high:
        raise InputError("give a reason (3 to 200 characters)", key="error.review.reason")
    return reason


class RiskService:
    def __init__(
        self,
        engine: Engine,
        index_key: bytes,
        thresholds: RiskThresholds,
        limit_fen: int,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self.thresholds = thresholds
        self.limit_fen = limit_fen
        self._clock = clock
        self._audit = AuditLog(clock)
        self._number_index = BlindIndex(index_key, MOBILE_NUMBER)
        self._device_index = BlindIndex(index_key, "device")
        self._payee_index = BlindIndex(index_key, "payee")

    def device_index(self, descriptor: str) -> str:
        """A device as the rules know it: a keyed hash of what the browser sent (address
        prefix and user agent), never the raw values."""
        return self._device_index(descriptor) if descriptor else ""

    def payee_index(self, payee: str) -> str:
        """A payee as the deny list knows it: the keyed hash of its one canonical form."""
        return self._payee_index(canonical_payee(payee))

    # --- a decision ----------------------------------------------------------------------------

    def assess(
        self,
        uow: UnitOfWork,
        subject: Subject,
        amount_fen: int,
        now: dt.datetime,
        *,
        watched_limits: Sequence[int] = (),
        allocated: Carrier | None = None,
        current: Carrier | None = None,
        quoted: Carrier | None = None,
    ) -> Assessment:
        """The rules' decision on one submission, from the history in this transaction."""
        t = self.thresholds
        since = now - dt.timedelta(seconds=max(t.velocity_window_s, t.structuring_window_s))
        facts = read_facts(uow, subject, since)
        return assess(
            RiskFacts(
                now=now,
                amount_fen=amount_fen,
                account_created_at=facts.account_created_at or now,
                user_history=facts.history["user"],
                number_history=facts.history["number"],
                device_history=facts.history["device"],
                limit_fen=self.limit_fen,
                watched_limits=tuple(sorted({t.review_amount_fen, self.limit_fen, *watched_limits})),
                allocated_carrier=allocated,
                current_carrier=current,
                quoted_carrier=quoted,
                denied=facts.denied,
            ),
            t,
        )

    # --- the deny list (operators, through the console's DenyListService) -------------------------

    def deny(self, caller: Principal, kind: str, value: str, reason: str) -> str:
        """Put a user id, a number, a device index or a payee on the deny list (audited: who, the
        kind, the display form and the reason, never the value); returns its key. Adding what is
        already on it changes nothing."""
        return self.deny_entry(caller, kind, value, reason)[0]

    def deny_entry(self, caller: Principal, kind: str, value: str, reason: str) -> tuple[str, bool]:
        """`deny`, and whether this call put it on the list (False: it was on it already, or
        another operator added it at the same moment)."""
        require_operator(caller, "only an operator manages risk")
        key, display = self._entry(kind, value)
        reason = deny_reason(reason)
        try:
            with UnitOfWork(self._engine) as uow:
                if kind == "user" and uow.session.get(User, key.removeprefix("user:")) is None:
                    raise InputError("no account has that id", key="error.deny.user")
                if uow.session.get(DenyEntry, key) is None:
                    entry = DenyEntry(
                        key=key,
                        kind=kind,
                        masked=display,
                        reason=reason,
                        added_by=caller.user_id,
                        added_at=self._clock(),
                    )
                    uow.session.add(entry)
                    detail = {"kind": kind, "display": display, "reason": reason}
                    self._audit.append(uow, caller.user_id, "deny.add", deny_ref(key), detail)
                    uow.commit()
                    return key, True
        except IntegrityError:  # added by another operator at the same moment: it is on the list
            pass
        return key, False

    def allow(self, checker: Principal, maker: Principal, key: str, reason: str = "") -> DenyView:
        """Take an entry off the deny list once a second operator agreed: only the deny list's
        four-eyes handler calls this (`DenyListService`). Audited with the maker and the checker."""
        require_operator(checker, "only an operator manages risk")
        require_operator(maker, "only an operator manages risk")
        if checker.user_id == maker.user_id:
            raise NotAllowed("a second operator must agree", key="error.four_eyes.same_operator")
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(DenyEntry, key)
            if row is None:
                raise NotDenied("not on the deny list")
            view = _deny_view(row)
            uow.session.delete(row)
            detail = {"kind": row.kind, "display": view.display, "maker": maker.user_id, "checker": checker.user_id}
            if reason:
                detail["reason"] = reason
            self._audit.append(uow, checker.user_id, "deny.remove", deny_ref(key), detail)
            uow.commit()
        return view

    def deny_list(self, caller: Principal) -> list[DenyView]:
        require_operator(caller, "only an operator manages risk")
        with UnitOfWork(self._engine) as uow:
            rows = uow.session.exec(orm_select(DenyEntry).order_by(col(DenyEntry.added_at))).all()
        return [_deny_view(r) for r in rows]

    def denied(self, caller: Principal, key: str) -> DenyView | None:
        """One entry by its key, or None."""
        require_operator(caller, "only an operator manages risk")
        with UnitOfWork(self._engine) as uow:
            row = uow.session.get(DenyEntry, key)
            return _deny_view(row) if row is not None else None

    def deny_key(self, kind: str, value: str) -> str:
        """The key an entry for this value has (or would have) on the deny list."""
        return self._entry(kind, value)[0]

    def _entry(self, kind: str, value: str) -> tuple[str, str]:
        """(key, display form) of a value of `kind`: the value itself is never kept."""
        if kind not in DENY_KINDS:
            raise InputError(f"deny a user, number, device or payee, not {kind[:20]!r}", key="error.review.kind")
        value = value.strip()
        if not value:
            raise InputError("say what to deny", key="error.deny.value")
        if kind == "number":
            number = parse_mobile(value)
            return f"number:{self._number_index(number.national)}", number.masked
        if kind == "user":
            if not _USER_ID.fullmatch(value):
                raise InputError("name an account by its id", key="error.deny.user")
            return f"user:{value}", _short(value, 8)
        if kind == "device" and not (len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
            raise InputError("name a device by its 64-character index", key="error.deny.device")
        if kind == "payee":
            if len(value) > 200:
                raise InputError("too long for an account", key="error.payee.invalid")
            value = self.payee_index(value)
        return f"{kind}:{value}", _short(value, 12)


def _short(text: str, length: int) -> str:
    return text[:length] + "…"


def _deny_view(row: DenyEntry) -> DenyView:
    display = row.masked or _short(row.key.partition(":")[2], 12)
    return DenyView(row.kind, row.key, masked_numbers(row.reason), row.added_by, row.added_at, display)


# --- the facts, in one statement ----------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the database says of a subject: the account's age, each history, the deny list."""

    account_created_at: dt.datetime | None  # None: no such account
    history: dict[str, tuple[Past, ...]]  # by "user", "number", "device"
    denied: frozenset[str]  # the kinds of the subject on the deny list


def _facts_statement(*, device: bool) -> Any:
    """Every fact the rules read, as one statement built once: rows of (what, at, amount, key).
    A history row is one earlier recovery (one per group, its whole amount) created since
    :since and not cancelled by its owner; an "account" row the account's creation; a "deny"
    row an entry of the deny list that names the subject. The device's history and deny entry
    are asked for only in the statement for a known device."""
    r, users, deny = _RECOVERIES.c, _USERS.c, _DENY.c

    def history(what: str, who: Any) -> Any:
        return (
            select(
                literal_column(f"'{what}'").label("what"),
                func.min(r.created_at).label("at"),
                func.sum(r.debit_fen).label("amount"),
                null().label("key"),
            )
            .where(who, r.created_at >= bindparam("since"), r.state.not_in(NOT_COUNTED))
            .group_by(r.group_id)
        )

    kinds = ["user", "number", "payee", *(["device"] if device else [])]
    parts = [history("user", r.user_id == bindparam("user")), history("number", r.number_index == bindparam("number"))]
    if device:
        parts.append(history("device", r.device_index == bindparam("device")))
    parts.append(
        select(literal_column("'account'"), users.created_at, null(), null()).where(users.id == bindparam("user"))
    )
    keys: list[Any] = [bindparam(f"deny_{kind}") for kind in kinds]
    parts.append(select(literal_column("'deny'"), null(), null(), deny.key).where(deny.key.in_(keys)))
    # an account on the deny list that used this number: deleting it and signing up again with
    # the same number (a new account id) must not get past the list
    used_by_denied = (
        select(r.id)
        .select_from(_RECOVERIES.join(_DENY, deny.key == literal("user:") + r.user_id))
        .where(r.number_index == bindparam("number"))
    )
    parts.append(select(literal_column("'deny_owner'"), null(), null(), null()).where(exists(used_by_denied)))
    return union_all(*parts)


_RECOVERIES = Recovery.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
_DENY = DenyEntry.__table__  # type: ignore[attr-defined]
#: The facts of a subject with a known device and of one without (each compiled once).
_FACTS: dict[bool, Read[tuple[Any, ...]]] = {
    device: Read(functools.partial(_facts_statement, device=device)) for device in (False, True)
}


def read_facts(uow: UnitOfWork, subject: Subject, since: dt.datetime) -> Facts:
    """The subject's facts in the caller's transaction (so two submissions at once see each other)."""
    keys = {
        f"user:{subject.user_id}": "user",
        f"number:{subject.number_index}": "number",
        f"payee:{subject.payee_index}": "payee",
    }
    params: dict[str, Any] = {"since": since, "user": subject.user_id, "number": subject.number_index}
    if subject.device_index:
        keys[f"device:{subject.device_index}"] = "device"
        params["device"] = subject.device_index
    params |= {f"deny_{kind}": key for key, kind in keys.items()}
    rows = uow.rows(_FACTS[bool(subject.device_index)], **params)
    history: dict[str, list[Past]] = {"user": [], "number": [], "device": []}
    created, denied = None, set()
    for what, at, amount, key in rows:
        if what == "account":
            created = at
        elif what == "deny":
            denied.add(keys[key])
        elif what == "deny_owner":
            denied.add("user_number")
        else:
            history[what].append(Past(at, int(amount)))
    return Facts(created, {what: tuple(found) for what, found in history.items()}, frozenset(denied))
