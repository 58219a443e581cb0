"""`receipt issue|verify`: a recovery's signed receipt (compact JWS), written to a file or checked
against the portal's published key set."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.cli._shared import Commands, print_outcome, read_at_most, services
from core.i18n import Translator
from core.money import format_fen

#: A receipt (a compact JWS) or a key set is a few kilobytes; a file beyond this is not one.
MAX_RECEIPT_BYTES = 100_000


def register(commands: Commands) -> None:
    receipt = commands.add_parser("receipt", help="signed recovery receipts: issue one, verify one")
    actions = receipt.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="write a recovery's signed receipt to a file")
    issue.add_argument("--as-phone", required=True, help="the consumer's verified number")
    issue.add_argument("id", help="the recovery id")
    issue.add_argument("--out", required=True, help="the file to write (e.g. receipt.jws)")
    issue.set_defaults(run=run_issue)
    verify = actions.add_parser("verify", help="check a receipt against the portal's published key")
    verify.add_argument("file", help="the receipt file (.jws)")
    verify.add_argument(
        "--jwks",
        default="",
        help="the published key set: a URL (https://portal.example/receipts/jwks) or a file; "
        "default: this portal's own key",
    )
    verify.add_argument("--json", action="store_true", help="print what the receipt says as JSON")
    verify.set_defaults(run=run_verify)


def run_issue(args: argparse.Namespace, t: Translator) -> int:
    built = services(refresh=False)
    identity, receipts = built.identity, built.receipts
    token = receipts.issue(identity.consumer_by_number(args.as_phone), args.id)
    Path(args.out).write_text(token + "\n", encoding="utf-8")
    print(args.out)
    return 0


def run_verify(args: argparse.Namespace, t: Translator) -> int:
    # deferred: Authlib's JOSE and SQLAlchemy (see core/cli/_shared.py)
    from core.services.receipts import receipt_outcome, verify_receipt

    content = read_at_most(Path(args.file), MAX_RECEIPT_BYTES)
    if content is None:
        print(f"error: a receipt is at most {MAX_RECEIPT_BYTES:,} bytes; this file holds more", file=sys.stderr)
        return 2
    token = content.decode("utf-8", errors="replace")
    key_set = _key_set(args.jwks)
    if key_set is None:
        return 2
    receipt = verify_receipt(token, key_set)
    recovery = receipt.recovery
    if args.json:
        print(
            json.dumps(
                {"valid": True, "kid": receipt.key_id, "iss": receipt.issuer, "recovery": recovery}, ensure_ascii=False
            )
        )
        return 0
    outcome = receipt_outcome(receipt)  # what happened to the money, from the signed parts
    print(
        t(
            "receipt.valid",
            id=recovery.get("id", ""),
            state=recovery.get("state", ""),
            amount=format_fen(outcome.received_fen),
            issuer=receipt.issuer,
        )
    )
    print_outcome(outcome, t, "  ")
    return 0


def _key_set(jwks: str) -> Mapping[str, Any] | None:
    """The key set to verify against: fetched, read from a file, or this portal's own; None
    (after saying why on stderr) when it cannot be had."""
    if jwks.startswith(("http://", "https://")):
        import httpx  # deferred: ~50 ms, only for a key set fetched over HTTP

        try:
            return httpx.get(jwks, timeout=10).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            print(f"error: could not fetch the key set: {type(exc).__name__}", file=sys.stderr)
            return None
    if jwks:
        try:
            content = read_at_most(Path(jwks), MAX_RECEIPT_BYTES)
            if content is None:
                print(f"error: a key set is at most {MAX_RECEIPT_BYTES:,} bytes; this file holds more", file=sys.stderr)
                return None
            return json.loads(content.decode("utf-8"))
        except ValueError:
            print("error: the key set file is not JSON", file=sys.stderr)
            return None
    return services(refresh=False).receipts.jwks()
