"""`deny add|remove|list`: the risk rules' deny list, kept by operators. Removing an entry takes a
second operator: `deny remove` asks and prints the request, another operator agrees with
`review agree REQUEST --as NAME`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from core.cli._shared import Commands, operator, operator_actions, services
from core.i18n import Translator

if TYPE_CHECKING:
    from core.domain.access import Principal
    from core.services.console.deny_list import DenyListService


def register(commands: Commands) -> None:
    runs = {"add": run_add, "remove": run_remove, "list": run_list}
    added = operator_actions(
        commands,
        "deny",
        "the risk rules' deny list: add, remove (a second operator agrees), list",
        runs,
        "deny-list entries",
    )
    for change in (added["add"], added["remove"]):
        change.add_argument("--kind", required=True, choices=("user", "number", "device", "payee"))
        change.add_argument("--value", required=True, help="a user id, a mobile number, a device index, a payee")
        change.add_argument("--reason", required=True)
    added["list"].add_argument("--json", action="store_true", help="print one JSON array")


def run_add(args: argparse.Namespace, t: Translator) -> int:
    deny_list, caller = _as_operator(args)
    print(deny_list.add(caller, args.kind, args.value, args.reason).key)
    return 0


def run_remove(args: argparse.Namespace, t: Translator) -> int:
    """Ask for the entry's removal; prints the request a second operator agrees to."""
    deny_list, caller = _as_operator(args)
    request = deny_list.request_removal_of(caller, args.kind, args.value, args.reason)
    print(t("deny.cli.second_person", request=request.id))
    return 0


def run_list(args: argparse.Namespace, t: Translator) -> int:
    deny_list, caller = _as_operator(args)
    entries = deny_list.entries(caller)
    if args.json:  # values masked as on the page; the key is what `deny remove` and the audit chain name
        rows = [
            {
                "ref": entry.ref,
                "kind": entry.kind,
                "value": entry.display,
                "reason": entry.reason,
                "added_by": entry.added_by,
                "added_at": entry.added_at.isoformat(),
                "removal_request": entry.removal.id if entry.removal else None,
            }
            for entry in entries
        ]
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for entry in entries:
        pending = f"  [{t('deny.cli.removal_pending', request=entry.removal.id)}]" if entry.removal else ""
        print(
            f"{entry.ref[:8]}  {entry.kind}  {entry.display}  {entry.added_by}  "
            f"{entry.added_at.isoformat(timespec='seconds')}  {entry.reason}{pending}"
        )
    return 0


def _as_operator(args: argparse.Namespace) -> tuple[DenyListService, Principal]:
    """The deny-list service and the operator named by --as."""
    built = services(refresh=False)
    return built.deny_list, operator(built, args.operator)
