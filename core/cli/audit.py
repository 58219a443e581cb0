"""`audit verify`: the hash-chained audit trail, checked record by record."""

from __future__ import annotations

import argparse
import sys

from core.cli._shared import Commands, database
from core.i18n import Translator


def register(commands: Commands) -> None:
    audit = commands.add_parser("audit", help="the hash-chained audit trail")
    audit.add_argument("action", choices=["verify"])
    audit.set_defaults(run=run)


def run(args: argparse.Namespace, t: Translator) -> int:
    from core.services.audit import verify_audit_chain  # deferred: SQLAlchemy (see core/cli/_shared.py)

    checked, broken = verify_audit_chain(database())
    if broken is None:
        print(f"audit chain verified: {checked} records")
        return 0
    print(f"audit chain broken at record {broken} (of {checked})", file=sys.stderr)
    return 1
