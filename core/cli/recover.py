"""`recover start|status|list|cancel`: a recovery driven as the consumer who verified --as-phone
(numbers are only ever printed masked)."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import TYPE_CHECKING

from core.cli._shared import Commands, print_outcome, recovery_row, sandbox_lease, services
from core.i18n import Translator
from core.money import format_fen, parse_amount

if TYPE_CHECKING:
    from core.bootstrap import Services
    from core.domain.access import Principal
    from core.services.recovery import RecoveryService
    from core.services.recovery.views import RecoveryView


def register(commands: Commands) -> None:
    recover = commands.add_parser("recover", help="drive a recovery as the consumer who verified --as-phone")
    actions = recover.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="submit a recovery (and, unless --no-wait, work it to the end)")
    start.add_argument("--as-phone", required=True, help="the consumer's verified number: whose balance, who acts")
    start.add_argument("--channel", required=True, help="channel id (see `channels`)")
    start.add_argument("--amount", required=True, help="how much balance to recover, in CNY")
    start.add_argument("--payee", required=True, help="where the channel pays (wallet account, bank card ...)")
    start.add_argument(
        "--key", default="", help="idempotency key (default: a new one); the same key never recovers twice"
    )
    start.add_argument("--no-wait", action="store_true", help="leave the work to the portal's or a `worker` process")
    start.add_argument(
        "--accept-agreement", action="store_true", help="accept the current recovery agreement (data/agreements)"
    )
    start.set_defaults(run=run_start)
    for name, run in (("status", run_status), ("list", run_list), ("cancel", run_cancel)):
        command = actions.add_parser(name, help=f"{name} of the consumer's recoveries")
        command.add_argument("--as-phone", required=True)
        if name != "list":
            command.add_argument("id", help="the recovery id printed by `start`")
        command.set_defaults(run=run)
    for command in actions.choices.values():
        command.add_argument("--json", action="store_true", help="print JSON")


def run_start(args: argparse.Namespace, t: Translator) -> int:
    # deferred: SQLAlchemy behind the request type, hashlib behind secrets (see core/cli/_shared.py)
    import secrets

    from core.services.recovery.views import RecoveryRequest

    built, recoveries, caller = _as_consumer(args, refresh=True)
    if args.accept_agreement and built.agreements is not None:
        built.agreements.accept(caller, built.agreements.current().version)
    key = args.key or f"cli-{secrets.token_hex(8)}"
    request = RecoveryRequest(args.channel, args.as_phone, parse_amount(args.amount), args.payee)
    # in-process sandbox partners answer for this process alone: refused while another runs its own here
    with sandbox_lease(built):
        view = recoveries.submit(caller, key, request)
        if not args.no_wait:
            _work_until_settled(built, recoveries, caller, view.id)
    views = [recoveries.get(caller, view.id)]
    if not args.json:
        print(f"idempotency key: {key}" + ("" if view.created else " (an earlier submission with this key)"))
    return _show(args, t, views)


def run_status(args: argparse.Namespace, t: Translator) -> int:
    _, recoveries, caller = _as_consumer(args, refresh=False)
    return _show(args, t, [recoveries.get(caller, args.id)])


def run_list(args: argparse.Namespace, t: Translator) -> int:
    _, recoveries, caller = _as_consumer(args, refresh=False)
    return _show(args, t, recoveries.list_for(caller), many=True)


def run_cancel(args: argparse.Namespace, t: Translator) -> int:
    _, recoveries, caller = _as_consumer(args, refresh=False)
    return _show(args, t, [recoveries.cancel(caller, args.id)])


def _as_consumer(args: argparse.Namespace, *, refresh: bool) -> tuple[Services, RecoveryService, Principal]:
    """The services, the recovery service and the consumer who verified --as-phone."""
    built = services(refresh=refresh)
    recoveries = built.recoveries
    caller = built.identity.consumer_by_number(args.as_phone)
    return built, recoveries, caller


def _show(args: argparse.Namespace, t: Translator, views: list[RecoveryView], *, many: bool = False) -> int:
    rows = [recovery_row(v) for v in views]
    if args.json:
        print(json.dumps(rows if many else rows[0], ensure_ascii=False))
        return 0
    for row in rows:
        parts = ", ".join(
            f"#{p['part']} {format_fen(p['debit_fen'])} {p['state']}" + (f" ({p['reason']})" if p["reason"] else "")
            for p in row["parts"]
        )
        print(
            f"{row['id']}  {row['masked_number']}  {row['channel']}  "
            f"{format_fen(row['amount_fen'])}  {row['state']}  [{parts}]"
        )
    for view in views:
        print_outcome(view.outcome, t, f"  {view.id[:8]}  ")
    return 0


def _work_until_settled(
    built: Services, recoveries: RecoveryService, caller: Principal, recovery_id: str, timeout_s: float = 120.0
) -> None:
    """Work this process's outbox until the recovery has ended (sandbox partners notify
    in-process), for at most about `timeout_s`; the status printed next says where it stands."""
    sandbox_payouts = built.partners.sandbox_payouts
    pause_s = 0.1
    # still under way after the timeout: the status printed next says so (`recover status` follows it)
    with contextlib.suppress(TimeoutError):
        built.worker().run_until_settled(
            lambda: recoveries.get(caller, recovery_id).settled,
            deliver=sandbox_payouts.deliver_due if sandbox_payouts is not None else None,
            advance=lambda: time.sleep(pause_s),
            rounds=int(timeout_s / pause_s),
        )
