"""`reconcile --as NAME ...`: a partner's settlement statement against our books (as an operator).

reconcile --as NAME --partner P --statement FILE [--date D] [--json]
                                  import the statement (once: the same file again changes
                                  nothing) and print what matched and the breaks
reconcile --as NAME --breaks [--partner P] [--json]
                                  the breaks still open
reconcile --as NAME --resolve BREAK --reason R [--note TEXT]
                                  resolve a break that moves no money, with a reason
reconcile --as NAME --correct BREAK --note TEXT
                                  ask for the correcting entry an amount mismatch needs
                                  (a second operator agrees: `review agree REQUEST`)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli._shared import Commands, day, operator, read_at_most, services
from core.i18n import Translator
from core.money import format_fen


def register(commands: Commands) -> None:
    parser = commands.add_parser("reconcile", help="reconcile a partner's statement with our books")
    parser.add_argument("--as", dest="operator", required=True, help="the operator's user name")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--statement", metavar="FILE", help="the statement file to import")
    what.add_argument("--breaks", action="store_true", help="list the breaks still open")
    what.add_argument("--resolve", metavar="BREAK", help="resolve a break (with --reason)")
    what.add_argument("--correct", metavar="BREAK", help="ask for a correcting entry (with --note)")
    parser.add_argument("--partner", help="carrier, or a payout channel (alipay, wechat_pay, ...)")
    parser.add_argument("--date", type=day, help="the statement's business day (default: its rows' day)")
    parser.add_argument("--reason", help="why (--resolve): " + ", ".join(_resolutions()))
    parser.add_argument("--note", default="", help="a few words for the record")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _resolutions() -> tuple[str, ...]:
    from core.domain.reconciliation import RESOLUTIONS  # deferred: see core/cli/_shared.py

    return RESOLUTIONS


def run(args: argparse.Namespace, t: Translator) -> int:
    from core.domain.statements import MAX_STATEMENT_BYTES  # deferred: see core/cli/_shared.py
    from core.errors import InputError

    built = services(refresh=False)
    caller = operator(built, args.operator)
    service = built.reconciliation
    if args.statement is not None:
        if not args.partner:
            raise InputError("--partner is needed with --statement", key="error.reconcile.partner_needed")
        path = Path(args.statement)
        content = read_at_most(path, MAX_STATEMENT_BYTES)
        if content is None:
            most = str(MAX_STATEMENT_BYTES)
            raise InputError("the file is too large", key="error.reconcile.file_too_large", most=most)
        report = service.reconcile(caller, args.partner, content, day=args.date, filename=path.name)
        if args.json:
            print(json.dumps(report.as_dict(), ensure_ascii=False))
            return 0
        print(
            t(
                "cli.reconcile.summary",
                partner=report.partner,
                day=report.day,
                rows=str(report.rows),
                matched=str(report.matched),
                breaks=str(len(report.breaks)),
            )
        )
        if not report.stored:
            print(t("cli.reconcile.imported_before"))
        for b in report.breaks:
            print(_break_line(b.kind, b.reference, b.ours_fen, b.theirs_fen, b.status, b.id, t))
        return 0
    if args.breaks:
        rows = service.open_breaks(caller, args.partner)
        if args.json:
            print(json.dumps({"breaks": [r.as_dict() for r in rows]}, ensure_ascii=False))
            return 0
        for r in rows:
            print(_break_line(r.kind, r.reference, r.ours_fen, r.theirs_fen, r.status, r.id, t))
        return 0
    if args.resolve is not None:
        if not args.reason:
            raise InputError("--reason is needed with --resolve", key="error.reconcile.resolution", resolution="")
        row = service.resolve(caller, args.resolve, args.reason, args.note)
        print(json.dumps(row.as_dict()) if args.json else t("cli.reconcile.resolved", id=row.id))
        return 0
    request = service.request_correction(caller, args.correct, args.note)
    print(json.dumps({"request": request.id}) if args.json else t("cli.reconcile.correction_asked", request=request.id))
    return 0


def _fen(value: int | None) -> str:
    return format_fen(value) if value is not None else "—"


def _break_line(kind: str, ref: str, ours: int | None, theirs: int | None, status: str, id_: str, t: Translator) -> str:
    return f"  {t('break.' + kind):16} {ref:40} {_fen(ours):>12} {_fen(theirs):>12}  {status:8} {id_}"
