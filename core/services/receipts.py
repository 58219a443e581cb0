"""Receipts anyone can verify: a recovery's outcome and timeline as a JWS (RS256, compact),
signed with the portal's receipt key through Authlib's JOSE library (joserfc). `asked` is what
the recovery asked for and was quoted; `outcome` is what happened to the money (received only
for paid transactions, refunded ones put back on the number, refused or cancelled ones moved
nothing), exactly as the My recoveries page shows it. The public
key is published at `/receipts/jwks`; `python -m core receipt verify FILE` and the verify box
on the My recoveries page check a receipt against it. Changing any byte of a receipt, or
signing it with another key, makes it fail.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.domain.access import Principal
from core.domain.recovery import Outcome, RecoveryState, outcome_of
from core.errors import InputError
from core.persistence.tables import AuditRecord
from core.persistence.uow import UnitOfWork
from core.services.audit import chain_pending
from core.services.recovery import RecoveryService

TYPE = "receipt+jws"
ALGORITHMS = ["RS256"]
MAX_RECEIPT = 64_000  # characters; a real receipt is a few kilobytes


class ReceiptInvalid(InputError):
    key = "error.receipt.invalid"


@dataclass(frozen=True)
class VerifiedReceipt:
    key_id: str
    issuer: str
    issued_at: dt.datetime
    recovery: Mapping[str, Any]  # what the receipt says, exactly as signed


class ReceiptService:
    def __init__(
        self,
        engine: Engine,
        recoveries: RecoveryService,
        key: RSAKey,
        issuer: str,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._recoveries = recoveries
        self._key = key
        self.issuer = issuer
        self._clock = clock

    def jwks(self) -> dict[str, Any]:
        """The published key set: public halves only."""
        return {"keys": [self._key.as_dict(private=False)]}

    def issue(self, caller: Principal, group_id: str) -> str:
        """A signed receipt of one recovery as it stands now (its owner's, or any for staff)."""
        view, steps = self._recoveries.follow(caller, group_id)
        ids = [p.id for p in view.parts]
        chain_pending(self._engine)  # the receipt cites the recovery's latest record, chained
        with UnitOfWork(self._engine) as uow:
            head = uow.session.exec(
                select(AuditRecord.hash)
                .where(col(AuditRecord.subject).in_([*ids, group_id]), col(AuditRecord.hash).is_not(None))
                .order_by(col(AuditRecord.chain_seq).desc())
                .limit(1)
            ).first()
        recovery = {
            "id": view.id,
            "channel": view.channel_id,
            "number": view.masked_number,
            "state": view.state.value,
            "settled": view.settled,
            # what was asked and quoted, and what actually happened (the page shows the same)
            "asked": {"amount_fen": view.amount_fen, "fee_fen": view.fee_fen, "payout_fen": view.payout_fen},
            "outcome": view.outcome.as_dict(),
            "created_at": _iso(view.created_at),
            "parts": [p.as_dict() for p in view.parts],
            "timeline": [
                {
                    "part": s.part,
                    "at": _iso(s.at),
                    "event": s.event.value,
                    "state": s.state.value,
                    "by": s.by,
                    "reason": s.reason if s.why is not None else "",
                }
                for s in steps
            ],
            "audit_hash": head or "",
        }
        claims = {"iss": self.issuer, "iat": int(self._clock().timestamp()), "recovery": recovery}
        payload = json.dumps(claims, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        header = {"alg": "RS256", "typ": TYPE, "kid": self._key.kid}
        return jws.serialize_compact(header, payload.encode(), self._key, algorithms=ALGORITHMS)


def verify_receipt(token: str, key_set: Mapping[str, Any], *, issuer: str | None = None) -> VerifiedReceipt:
    """What a receipt says, once its signature checks against one of `key_set`'s keys (a JWKS);
    ReceiptInvalid otherwise, with a reason a person can act on."""
    token = _visible(str(token))
    if not token:
        raise ReceiptInvalid("there is no receipt to check: paste one or upload its file", key="error.receipt.empty")
    if len(token) > MAX_RECEIPT or token.count(".") != 2:
        raise ReceiptInvalid(
            "this is not a receipt (a receipt is one line of three dot-separated parts)", key="error.receipt.shape"
        )
    try:
        keys = KeySet.import_key_set(dict(key_set))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ReceiptInvalid("the published key set could not be read", key="error.receipt.keys") from error
    try:
        signed = jws.deserialize_compact(token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ReceiptInvalid("the signature does not match: altered, or not signed by this portal") from error
    headers = signed.headers()
    try:
        claims = json.loads(signed.payload)
        recovery = claims["recovery"]
        issued = dt.datetime.fromtimestamp(int(claims["iat"]), dt.UTC)
        if headers.get("typ") != TYPE or not isinstance(recovery, dict) or "id" not in recovery:
            raise ValueError("not a receipt")
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise ReceiptInvalid("signed, but not a recovery receipt") from error
    if issuer is not None and claims.get("iss") != issuer:
        raise ReceiptInvalid("signed by this key, but for another portal")
    return VerifiedReceipt(str(headers.get("kid", "")), str(claims.get("iss", "")), issued, recovery)


def _visible(text: str) -> str:
    """The text without whitespace (a receipt broken over lines) or invisible formatting
    characters (a byte-order mark an editor saved in front of it, a zero-width space a chat
    app slipped in): none is ever part of a receipt, which is one line of base64url and dots."""
    return "".join(c for c in text if not c.isspace() and unicodedata.category(c) != "Cf")


def receipt_outcome(receipt: VerifiedReceipt) -> Outcome:
    """What happened to the money, from the signed transactions themselves (so a receipt from
    before `outcome` was added reads the same way); unreadable parts count as nothing."""
    parts = []
    for part in receipt.recovery.get("parts", ()) if isinstance(receipt.recovery.get("parts"), list) else ():
        try:
            debit, fee = part["debit_fen"], part["fee_fen"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (debit, fee)):
                continue
            parts.append((RecoveryState(part["state"]), debit, fee))
        except (KeyError, TypeError, ValueError):
            continue
    return outcome_of(parts)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
