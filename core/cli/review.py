"""`review list|approve|reject|agree`: recoveries the risk rules sent to review, decided by an
operator (never on their own; the name and reason go into the audit chain); `agree` is a second
operator agreeing to any four-eyes request (an approval above the four-eyes amount, a deny-list
removal)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from core.cli._shared import Commands, operator, operator_actions, recovery_row, services
from core.domain.review import FourEyesAction, reasons_for
from core.i18n import Translator
from core.money import format_fen

if TYPE_CHECKING:
    from core.domain.access import Principal
    from core.services.recovery import RecoveryService
    from core.services.recovery.views import RecoveryView


def register(commands: Commands) -> None:
    runs = {"list": run_list, "approve": run_decide, "reject": run_decide, "agree": run_agree}
    added = operator_actions(
        commands,
        "review",
        "recoveries the risk rules sent to review: list, approve, reject, agree (four eyes)",
        runs,
        "recoveries in review",
    )
    for decision in ("approve", "reject"):
        added[decision].add_argument("id", help="the recovery id (see `review list`)")
        added[decision].add_argument(
            "--reason",
            required=True,
            help="a reason from the list, as the console offers it (the owner reads it in their language): "
            + ", ".join(reasons_for(decision == "approve")),
        )
        added[decision].add_argument("--note", default="", help="a note for colleagues (not shown to the owner)")
    added["agree"].add_argument(
        "request", help="a request id `review approve` or `deny remove` printed (a second operator agrees)"
    )
    for command in added.values():
        command.add_argument("--json", action="store_true", help="print JSON")


def run_list(args: argparse.Namespace, t: Translator) -> int:
    recoveries, caller = _as_operator(args)
    return _show(args, t, recoveries.review_queue(caller))


def run_decide(args: argparse.Namespace, t: Translator) -> int:
    """`approve` or `reject`, as the subcommand says. Approving above the four-eyes amount asks
    a second operator instead (`review agree REQUEST --as OTHER`)."""
    from core.errors import InputError  # deferred: see core/cli/_shared.py
    from core.services.recovery.transitions import SecondPersonNeeded  # deferred: see core/cli/_shared.py

    approve = args.action == "approve"
    codes = reasons_for(approve)
    if args.reason not in codes:  # as on the console: the owner reads a code in their language, never free text
        raise InputError("choose a reason from the list", key="error.review.reason_code", choices=", ".join(codes))
    built = services(refresh=False)
    recoveries, caller = built.recoveries, operator(built, args.operator)
    try:
        view = recoveries.review(
            caller, args.id, approve=approve, reason=args.reason, operator=args.operator, note=args.note
        )
    except SecondPersonNeeded:  # above the four-eyes amount: nothing moved, a second operator must agree
        detail = {"reason": args.reason, "note": " ".join(args.note.split())}
        request = built.approvals.request(caller, FourEyesAction.APPROVE_RECOVERY, args.id, detail)
        print(t("review.cli.second_person", request=request.id))
        return 0
    return _show(args, t, [view])


def run_agree(args: argparse.Namespace, t: Translator) -> int:
    """A second operator agrees to any request waiting for them (four eyes): approving a recovery
    above the four-eyes amount, removing a deny-list entry, ..."""
    from core.services.recovery.views import RecoveryView  # deferred: see core/cli/_shared.py

    built = services(refresh=False)
    result = built.approvals.agree(operator(built, args.operator), args.request)
    if isinstance(result, RecoveryView):
        return _show(args, t, [result])
    print(
        json.dumps({"request": args.request, "agreed": True})
        if args.json
        else t("review.cli.agreed", request=args.request)
    )
    return 0


def _as_operator(args: argparse.Namespace) -> tuple[RecoveryService, Principal]:
    """The recovery service and the operator named by --as."""
    built = services(refresh=False)
    recoveries = built.recoveries
    return recoveries, operator(built, args.operator)


def _show(args: argparse.Namespace, t: Translator, views: list[RecoveryView]) -> int:
    rows = [recovery_row(v) for v in views]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print(t("review.none"))
    for view, row in zip(views, rows, strict=True):
        reasons = "; ".join(t(r.key, **r.params) for r in view.risk.reasons) if view.risk else ""
        print(
            f"{row['id']}  {row['masked_number']}  {row['channel']}  {format_fen(row['amount_fen'])}  "
            f"{row['state']}  {reasons}"
        )
    return 0
