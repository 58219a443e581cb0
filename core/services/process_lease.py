"""Roles only one process may play on a database at a time, held by renewing a lease row.

The in-process sandbox partners keep their records (debits, payouts, balances) in the memory of
the process that runs them. Two processes on one database with a sandbox each would split one
recovery's partner calls between two sandboxes: the second never saw the first's debit, and the
recovery sticks (`no_such_debit`). So a process that makes partner calls through in-process
sandboxes (the portal's server with its embedded worker, `recover start`, `worker`) must hold
the `sandbox-partners` lease; another one is refused with a message saying how to share one
sandbox instead (`python -m core sandbox`, CARRIER_API_URL, PAYOUT_API_URL).

A holder renews its lease every `ttl_s / 3` seconds from a background thread; a lease not
renewed for `ttl_s` (a crashed process) is taken over.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import col, delete

from core.config import ConfigError
from core.persistence.tables import ProcessLease
from core.persistence.uow import UnitOfWork

log = logging.getLogger(__name__)

SANDBOX_PARTNERS = "sandbox-partners"
#: This process, as a lease holder: the same in every lease it takes.
THIS_PROCESS = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(6)}"


class LeaseHeld(ConfigError):
    key = "error.config.sandbox_in_use"


class Lease:
    """One held lease: renewed in the background until `release`."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        ttl_s: float = 30.0,
        holder: str = THIS_PROCESS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine, self.name, self.ttl_s, self.holder, self._clock = engine, name, ttl_s, holder, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> Lease:
        """Take the lease, or LeaseHeld naming the live holder. Taking it again is harmless."""
        now = self._clock()
        with UnitOfWork(self._engine) as uow:
            uow.lock(f"lease:{self.name}")
            row = uow.session.get(ProcessLease, self.name, with_for_update=True)
            live = row is not None and (now - row.renewed_at).total_seconds() < self.ttl_s
            if row is not None and live and row.holder != self.holder:
                host, pid, _ = [*row.holder.split(":"), "", ""][:3]
                raise LeaseHeld(
                    f"another process ({host}, pid {pid}) runs the in-process sandbox partners on this database",
                    host=host,
                    pid=pid,
                )
            if row is None:
                row = ProcessLease(name=self.name, holder=self.holder, renewed_at=now)
            row.holder, row.renewed_at = self.holder, now
            uow.session.add(row)
            uow.commit()
        return self

    def keep(self) -> Lease:
        """Acquire and keep renewing from a daemon thread until `release`."""
        self.acquire()
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
            self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.acquire()
            except LeaseHeld:  # taken over after we stalled past the ttl: say so, loudly
                log.error("lost the %s lease to another process; stop one of them", self.name)
                return
            except Exception:  # a database hiccup: try again at the next beat
                log.warning("could not renew the %s lease; retrying", self.name)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with UnitOfWork(self._engine) as uow:
            uow.session.exec(
                delete(ProcessLease).where(col(ProcessLease.name) == self.name, col(ProcessLease.holder) == self.holder)
            )
            uow.commit()

    def __enter__(self) -> Lease:
        return self.keep()

    def __exit__(self, *_: object) -> None:
        self.release()
