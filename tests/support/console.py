"""The console's deny list, audit trail and staff administration over the journey's portal (one
simulated clock), and the staff accounts their tests act as."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.access import Principal, Role
from core.persistence.tables import AuditRecord
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog, AuditService
from core.services.console.deny_list import DenyListService
from core.services.console.staff import StaffService
from tests.support.portal import PASSWORD, Portal, build_portal


@dataclass
class Console:
    portal: Portal
    deny_list: DenyListService
    audit: AuditService
    staff: StaffService

    @property
    def engine(self) -> Engine:
        return self.portal.engine

    def member(self, role: str, username: str) -> Principal:
        """A staff account of `role` with a password (as the command line makes one)."""
        return Principal(self.portal.identity.create_staff(role, username, PASSWORD), Role(role))

    def records(self, action: str | None = None) -> list[AuditRecord]:
        """The audit chain (one action's records), oldest first."""
        with UnitOfWork(self.engine) as uow:
            query = select(AuditRecord).order_by(col(AuditRecord.seq))
            if action is not None:
                query = query.where(AuditRecord.action == action)
            return list(uow.session.exec(query).all())


def build_console(engine: Engine) -> Console:
    """The three services as `core.bootstrap.build` wires them, over `build_portal`'s engine, clock,
    risk service and four-eyes service."""
    portal = build_portal(engine)
    clock = portal.clock
    return Console(
        portal,
        DenyListService(engine, portal.risk, portal.approvals),
        AuditService(engine, AuditLog(clock)),
        StaffService(engine, AuditLog(clock), clock=clock),
    )
