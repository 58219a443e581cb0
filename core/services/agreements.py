"""The authorisation agreement a consumer accepts before a recovery: versioned texts in
`data/agreements/<document>/v<N>.<language>.md`; the highest N is current. An acceptance is
recorded with its version, the SHA-256 of the text shown and the time; a new version asks again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, literal_column
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from core.domain.access import Principal, require_consumer
from core.errors import CatalogError, InputError
from core.persistence.fast_reads import Read
from core.persistence.tables import AgreementAcceptance
from core.persistence.uow import UnitOfWork

RECOVERY = "recovery"
DEFAULT_LANGUAGE = "zh-CN"
_FILE = re.compile(r"^v(\d{1,4})\.([A-Za-z-]{2,8})\.md$")


class AgreementRequired(InputError):
    key = "error.agreement.required"


@dataclass(frozen=True)
class Agreement:
    document: str
    version: str  # "v3"
    texts: Mapping[str, str]  # language -> markdown

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts[DEFAULT_LANGUAGE]

    @property
    def sha256(self) -> str:
        """One digest over every language's text of this version."""
        joined = "\n\0".join(f"{lang}\n{self.texts[lang]}" for lang in sorted(self.texts))
        return hashlib.sha256(joined.encode()).hexdigest()


def load_agreement(folder: Path) -> Agreement:
    """The current (highest) version of the agreement in `folder`."""
    versions: dict[int, dict[str, str]] = {}
    for path in folder.glob("*.md"):
        match = _FILE.match(path.name)
        if match:
            versions.setdefault(int(match.group(1)), {})[match.group(2)] = path.read_text(encoding="utf-8").strip()
    if not versions:
        raise CatalogError(f"{folder}: no agreement texts (v<N>.<language>.md)")
    number = max(versions)
    if DEFAULT_LANGUAGE not in versions[number]:
        raise CatalogError(f"{folder}: v{number} has no {DEFAULT_LANGUAGE} text")
    return Agreement(folder.name, f"v{number}", versions[number])


class AgreementService:
    def __init__(
        self,
        engine: Engine,
        current: Callable[[], Agreement],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self.current = current
        self._clock = clock

    def accept(self, caller: Principal, version: str) -> None:
        """Record that the caller accepted `version`; it must be the current one (a page open
        since before a new version was published is asked again)."""
        agreement = self.current()
        require_consumer(caller, "only a consumer accepts the recovery agreement")
        if version != agreement.version:
            raise AgreementRequired("the agreement has changed; read the new version", version=agreement.version)
        with UnitOfWork(self._engine) as uow:
            if self._accepted(uow, caller.user_id, agreement):
                return
            uow.session.add(
                AgreementAcceptance(
                    user_id=caller.user_id,
                    document=agreement.document,
                    version=agreement.version,
                    text_sha256=agreement.sha256,
                    accepted_at=self._clock(),
                )
            )
            with contextlib.suppress(IntegrityError):  # accepted at the same moment from another tab
                uow.commit()

    def accepted(self, caller: Principal) -> bool:
        with UnitOfWork(self._engine) as uow:
            return self._accepted(uow, caller.user_id, self.current())

    def require(self, uow: UnitOfWork, user_id: str) -> str:
        """Inside a submission: the accepted current version, or AgreementRequired."""
        agreement = self.current()
        if not self._accepted(uow, user_id, agreement):
            raise AgreementRequired("accept the recovery agreement first", version=agreement.version)
        return agreement.version

    @staticmethod
    def _accepted(uow: UnitOfWork, user_id: str, agreement: Agreement) -> bool:
        """Read by a compile-once statement: a submission's unit of work has no ORM session."""
        found = uow.rows(_ACCEPTED, user=user_id, document=agreement.document, version=agreement.version)
        return bool(found)


_ACCEPTANCES = AgreementAcceptance.__table__  # type: ignore[attr-defined]
#: the user accepted this version of this document
_ACCEPTED: Read[tuple[int]] = Read(
    lambda: (
        core_select(literal_column("1"))
        .select_from(_ACCEPTANCES)
        .where(
            _ACCEPTANCES.c.user_id == bindparam("user"),
            _ACCEPTANCES.c.document == bindparam("document"),
            _ACCEPTANCES.c.version == bindparam("version"),
        )
        .limit(1)
    )
)
