"""`deny add|remove|list`: the risk rules' deny list, kept by an operator."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from core.cli._shared import Commands, operator, operator_actions, services
from core.i18n import Translator

if TYPE_CHECKING:
    from core.domain.access import Principal
    from core.services.risk import RiskService


def register(commands: Commands) -> None:
    runs = {"add": run_add, "remove": run_remove, "list": run_list}
    added = operator_actions(
        commands, "deny", "the risk rules' deny list: add, remove, list", runs, "deny-list entries"
    )
    for change in (added["add"], added["remove"]):
        change.add_argument("--kind", required=True, choices=("user", "number", "device", "payee"))
        change.add_argument("--value", required=True, help="a user id, a mobile number, a device index, a payee")
    added["add"].add_argument("--reason", required=True)


def run_add(args: argparse.Namespace, t: Translator) -> int:
    risk, caller = _as_operator(args)
    print(risk.deny(caller, args.kind, args.value, args.reason))
    return 0


def run_remove(args: argparse.Namespace, t: Translator) -> int:
    risk, caller = _as_operator(args)
    if not risk.allow(caller, args.kind, args.value):
        print("not on the deny list", file=sys.stderr)
        return 1
    return 0


def run_list(args: argparse.Namespace, t: Translator) -> int:
    risk, caller = _as_operator(args)
    for entry in risk.deny_list(caller):
        print(f"{entry.key}  {entry.added_at.isoformat(timespec='seconds')}  {entry.reason}")
    return 0


def _as_operator(args: argparse.Namespace) -> tuple[RiskService, Principal]:
    """The risk service and the operator named by --as."""
    built = services(refresh=False)
    risk = built.risk
    return risk, operator(built, args.operator)
