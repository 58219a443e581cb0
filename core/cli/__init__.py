"""The command line: `python -m core [--lang zh-CN|en] COMMAND ...`.

    quote      compare every channel for a balance: a readable table, or the JSON contract (--json)
    channels   list the channel catalog as quotes use it now (live terms, else the snapshot)
    db         the database schema: `upgrade` it (PostgreSQL), or say where it stands (`current`)
    users      staff accounts: `create` one (password from standard input), set up `totp`
    audit      `verify` the hash-chained audit trail; names the first broken record
    sandbox    serve the sandbox partners (terms feed, carrier, payouts) on loopback
    recover    `start`, `status`, `list`, `cancel` recoveries as the consumer who verified --as-phone
    review     recoveries the risk rules sent to review: `list`, `approve`, `reject` (as an operator);
               `agree` to any request waiting for a second operator
    deny       the risk rules' deny list: `add`, `remove` (a second operator agrees), `list` (as an operator)
    ops        the console's operations view: `metrics` of a period (as staff: analysts too)
    ledger     the books: `trial-balance` (as staff), `export` (beancount, CSV), `filing` (as an operator)
    reconcile  a partner's settlement statement against our books; its breaks, resolved or corrected
    pricing    the portal's pricing versions: `draft`, `submit` (an analyst), `approve`/`decline` (an
               admin who is not the author), `rollback`, `list`, `show`
    receipt    signed recovery receipts: `issue` one to a file, `verify` one against a key set
    worker     make the partner calls recoveries are waiting for (until stopped, or --until-idle)
    simulate   the seeded fault simulation of the recovery engine
    demo       fill a fresh sandbox install with demo recoveries over the last days (sandbox mode only)

One module per command group (quote.py holds quote and channels; the others are named after their
command); each adds its parsers in `register(commands)` and names the function that runs them with
`set_defaults(run=...)`. What several groups share is in `_shared.py`.

Bad input exits with status 2 and one line on stderr, never a traceback: argparse's own errors, an
argument that is not UTF-8 text, and every PortalError or OSError a command raises, turned into
that line here and nowhere else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from core.cli import (
    audit,
    db,
    demo,
    deny,
    ledger,
    ops,
    pricing,
    quote,
    receipt,
    reconcile,
    recover,
    review,
    sandbox,
    simulate,
    users,
    worker,
)
from core.cli._shared import Run, not_text
from core.errors import PortalError
from core.i18n import LANGUAGES, Translator

#: In the order `--help` lists them (quote.py adds quote, then channels).
GROUPS = (
    quote,
    db,
    users,
    audit,
    sandbox,
    recover,
    review,
    deny,
    ops,
    ledger,
    reconcile,
    pricing,
    receipt,
    worker,
    simulate,
    demo,
)


class _Parser(argparse.ArgumentParser):
    """Every parser of the command line (argparse gives subparsers their parent's class)."""

    def error(self, message: str) -> NoReturn:  # one line, status 2
        self.exit(2, f"{self.prog}: {message}\n")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m core", description="Phone-balance recovery portal: command line")
    top.add_argument("--lang", choices=LANGUAGES, default="zh-CN", help="language of names and messages")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for group in GROUPS:
        group.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    bad = not_text(argv)
    if bad is not None:  # one line in argparse's style; the bytes themselves are not echoed
        print(f"python -m core: argument {bad} is not UTF-8 text", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    t = Translator(getattr(args, "sub_lang", None) or args.lang)
    run: Run = args.run
    try:
        return run(args, t)
    except PortalError as exc:
        print(f"error: {t.error(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {type(exc).__name__}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database unreachable, full, or refusing a value: one line, no SQL
        if not type(exc).__module__.startswith(_DATABASE_ERRORS):
            raise
        print(f"error: {t('error.database.failed', kind=type(exc).__name__)}", file=sys.stderr)
        return 2


#: Where the errors of a database that cannot do what was asked come from (SQLAlchemy's, drivers').
_DATABASE_ERRORS = ("sqlalchemy.", "psycopg", "sqlite3")
