"""The deny list as operators keep it: what is on it (the kind, a display form safe to show — a
masked number, a shortened index —, the reason, who added it and when) and the removals that
wait for a second operator.

Adding is one operator's call, written to the audit chain by the risk service (never the value
itself). Removing is four eyes: one operator asks, with a reason; a second one agrees through
`FourEyesService` (this page, the review queue, or `review agree REQUEST` on the command line);
only then does the entry go, audited with both of them. A removal request names the entry by its
reference (`deny_ref`), never by the value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.domain.access import Principal, require_operator
from core.domain.review import FourEyesAction
from core.persistence.uow import UnitOfWork
from core.services.audit import usernames
from core.services.console.approvals import ApprovalView, FourEyesService, RequestClosed
from core.services.risk import NotDenied, RiskService, deny_reason, deny_ref


@dataclass(frozen=True)
class DenyListEntry:
    ref: str  # the entry's reference (audit subject, four-eyes subject)
    key: str  # "<kind>:<blind index or user id>", to ask for its removal
    kind: str
    display: str  # a masked number, a shortened index or user id
    reason: str
    added_by: str  # the operator's user name
    added_at: dt.datetime
    removal: ApprovalView | None  # a removal waiting for a second operator
    was_listed: bool = False  # `add` of what was on the list already: nothing changed


class DenyListService:
    def __init__(self, engine: Engine, risk: RiskService, approvals: FourEyesService) -> None:
        self._engine = engine
        self._risk = risk
        self._approvals = approvals
        approvals.handle(FourEyesAction.REMOVE_DENY, self._remove_agreed)

    def entries(self, caller: Principal) -> list[DenyListEntry]:
        """Everything on the deny list, newest first, with any removal waiting for a second operator."""
        require_operator(caller, "only an operator keeps the deny list")
        views = self._risk.deny_list(caller)
        removals = {r.subject: r for r in self.pending(caller)}
        with UnitOfWork(self._engine) as uow:
            names = usernames(uow, {v.added_by for v in views})
        return [
            DenyListEntry(
                ref=deny_ref(v.key),
                key=v.key,
                kind=v.kind,
                display=v.display,
                reason=v.reason,
                added_by=names.get(v.added_by) or v.added_by[:8],
                added_at=v.added_at,
                removal=removals.get(deny_ref(v.key)),
            )
            for v in reversed(views)
        ]

    def add(self, caller: Principal, kind: str, value: str, reason: str) -> DenyListEntry:
        """Put a value on the deny list (audited, without the value); returns the entry (with
        `was_listed` when it was on the list already, and nothing changed)."""
        key, added = self._risk.deny_entry(caller, kind, value, reason)
        return dataclasses.replace(self._entry(caller, key), was_listed=not added)

    def request_removal(self, caller: Principal, key: str, reason: str) -> ApprovalView:
        """Ask for an entry to come off the list; a second operator must agree."""
        require_operator(caller, "only an operator keeps the deny list")
        reason = deny_reason(reason)
        entry = self._entry(caller, key)
        detail = {"key": entry.key, "kind": entry.kind, "display": entry.display, "note": reason}
        return self._approvals.request(caller, FourEyesAction.REMOVE_DENY, entry.ref, detail)

    def request_removal_of(self, caller: Principal, kind: str, value: str, reason: str) -> ApprovalView:
        """`request_removal` by the value itself (the command line)."""
        require_operator(caller, "only an operator keeps the deny list")
        return self.request_removal(caller, self._risk.deny_key(kind, value), reason)

    def pending(self, caller: Principal) -> list[ApprovalView]:
        """Removals waiting for a second operator, oldest first."""
        return [r for r in self._approvals.pending(caller) if r.action is FourEyesAction.REMOVE_DENY]

    def agree(self, caller: Principal, request_id: str) -> object:
        """A second operator agrees to a removal: the entry comes off the list."""
        self._removal(caller, request_id)
        return self._approvals.agree(caller, request_id)

    def refuse(self, caller: Principal, request_id: str) -> None:
        """A second operator says no (or the one who asked withdraws)."""
        self._removal(caller, request_id)
        self._approvals.refuse(caller, request_id)

    def _removal(self, caller: Principal, request_id: str) -> ApprovalView:
        request = self._approvals.get(caller, str(request_id)[:36])
        if request.action is not FourEyesAction.REMOVE_DENY:
            raise RequestClosed("not a deny-list removal")
        return request

    def _entry(self, caller: Principal, key: str) -> DenyListEntry:
        key = str(key)
        view = self._risk.denied(caller, key) if key.isprintable() and len(key) <= 80 else None
        if view is None:
            raise NotDenied("not on the deny list")
        with UnitOfWork(self._engine) as uow:
            name = usernames(uow, {view.added_by}).get(view.added_by)
        return DenyListEntry(
            ref=deny_ref(view.key),
            key=view.key,
            kind=view.kind,
            display=view.display,
            reason=view.reason,
            added_by=name or view.added_by[:8],
            added_at=view.added_at,
            removal=None,
        )

    def _remove_agreed(self, checker: Principal, maker: Principal, subject: str, detail: Mapping[str, str]) -> object:
        """The four-eyes handler: a second operator agreed, the entry comes off the list."""
        key = str(detail.get("key", ""))
        if deny_ref(key) != subject:
            raise NotDenied("the request does not name this entry")
        return self._risk.allow(checker, maker, key, str(detail.get("note", "")))
