"""`ledger ACTION --as NAME ...`: the books from the command line.

    trial-balance   every account's debits, credits and balance, up to the end of a Beijing day
                    (--at) or everything; a table, or one JSON object (--json). Staff: analysts too
    export          a period's books as beancount or CSV, to a file (operators and admins; audited)
    filing          a period's money flow and information flow filed together, as JSON lines, to
                    a file (operators and admins; audited)

Dates are Beijing days (YYYY-MM-DD), both ends of a period included.
"""

from __future__ import annotations

import argparse
import json

from core.cli._shared import Commands, Parser, day, open_output, operator, services, staff, table_line
from core.i18n import Translator
from core.money import format_fen

EXPORT_FORMATS = ("beancount", "csv")


def register(commands: Commands) -> None:
    group = commands.add_parser("ledger", help="the books: trial-balance, export, filing")
    actions = group.add_subparsers(dest="action", required=True)
    trial = _action(actions, "trial-balance", "every account's debits, credits and balance", "staff member")
    trial.add_argument("--at", type=day, help="up to the end of this day, YYYY-MM-DD (default: everything)")
    trial.add_argument("--json", action="store_true", help="print the trial balance as one JSON object")
    trial.set_defaults(run=run_trial_balance)
    export = _action(actions, "export", "a period's books as beancount or CSV (audited)", "operator")
    export.add_argument("--format", dest="fmt", choices=EXPORT_FORMATS, required=True, help="the file's format")
    _period(export)
    export.set_defaults(run=run_export)
    filing = _action(actions, "filing", "a period's money and information flows as JSON lines (audited)", "operator")
    _period(filing)
    filing.set_defaults(run=run_filing)


def _action(actions: Commands, name: str, help: str, who: str) -> Parser:
    parser = actions.add_parser(name, help=help)
    parser.add_argument("--as", dest="staff", required=True, help=f"the {who}'s user name")
    return parser


def _period(parser: Parser) -> None:
    parser.add_argument("--from", dest="start", type=day, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=day, required=True, help="last day, included")
    parser.add_argument("--out", required=True, help="the file to write")


def run_trial_balance(args: argparse.Namespace, t: Translator) -> int:
    built = services(refresh=False)
    trial = built.books.trial_balance(staff(built, args.staff), args.at)
    if args.json:
        print(json.dumps(trial.as_dict(), ensure_ascii=False))
        return 0
    print(t("books.cli.heading", at=args.at.isoformat() if args.at else t("books.cli.everything")))
    heading = [t("books.col.account"), t("books.col.debits"), t("books.col.credits"), t("books.col.balance")]
    rows = [
        [a.account, *(format_fen(fen, symbol="") for fen in (a.debits_fen, a.credits_fen, a.balance_fen))]
        for a in trial.accounts
    ]
    total = [t("books.total"), "", "", format_fen(trial.total_fen, symbol="")]
    for cells in [heading, *rows, total]:
        print(table_line(cells, first=30, other=18))
    return 0


def run_export(args: argparse.Namespace, t: Translator) -> int:
    built = services(refresh=False)
    caller = operator(built, args.staff)
    with open_output(args.out) as out:
        out.write(built.books.export(caller, args.fmt, args.start, args.end))
    print(t("books.cli.written", path=args.out))
    return 0


def run_filing(args: argparse.Namespace, t: Translator) -> int:
    built = services(refresh=False)
    caller = operator(built, args.staff)
    with open_output(args.out) as out:
        out.writelines(built.books.filing(caller, args.start, args.end))
    print(t("books.cli.written", path=args.out))
    return 0
