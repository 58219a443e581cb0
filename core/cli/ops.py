"""`ops ACTION --as NAME ...`: the operations view of the console from the command line.

    metrics   the figures of the recoveries created in a period (staff: analysts too)
    stuck     recoveries past their channel's promise or waiting on an unanswered partner call, and why

Each action is one entry of `ACTIONS` (name, help, who may run it, the function adding its own
arguments, the function running it); add one there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.cli._shared import Commands, Parser, Run, day, operator, services, staff, table_line
from core.domain.calendar import SHANGHAI
from core.i18n import Translator
from core.money import format_fen

if TYPE_CHECKING:
    from core.services.console.metrics import Metrics

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Action:
    name: str
    help: str
    who: str  # whose user name --as takes, for its help
    arguments: Callable[[Parser], None]
    run: Run


def register(commands: Commands) -> None:
    group = commands.add_parser("ops", help="operations: " + ", ".join(a.name for a in ACTIONS))
    actions = group.add_subparsers(dest="action", required=True)
    for action in ACTIONS:
        parser = actions.add_parser(action.name, help=action.help)
        parser.add_argument("--as", dest="staff", required=True, help=f"the {action.who}'s user name")
        action.arguments(parser)
        parser.set_defaults(run=action.run)


# --- metrics ---------------------------------------------------------------------------------


def metrics_arguments(parser: Parser) -> None:
    parser.add_argument(
        "--from", dest="start", type=day, help=f"first day, YYYY-MM-DD (default: {DEFAULT_DAYS} days up to --to)"
    )
    parser.add_argument("--to", dest="end", type=day, help="last day, included (default: today, Beijing time)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run_metrics(args: argparse.Namespace, t: Translator) -> int:
    end = args.end or dt.datetime.now(SHANGHAI).date()
    start = args.start or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    built = services(refresh=False)
    figures = built.metrics.metrics(staff(built, args.staff), start, end)
    if args.json:
        print(json.dumps(figures.as_dict(), ensure_ascii=False))
    else:
        print(metrics_table(figures, t))
    return 0


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def seconds(value: float | None) -> str:
    """A time as the table shows it: 45s, 12m 30s, 5h 02m, 3d 04h."""
    if value is None:
        return "—"
    whole = round(value)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d {whole % 86_400 // 3600:02d}h"


def metrics_table(m: Metrics, t: Translator) -> str:
    total = m.total
    lines = [
        t("metrics.cli.period", start=m.start.isoformat(), end=m.end.isoformat()),
        f"{t('metrics.volume')}: {total.count}   {t('metrics.amount')}: {format_fen(total.amount_fen)}   "
        f"{t('metrics.fees')}: {format_fen(total.fees_fen)}",
        f"{t('metrics.success_rate')}: {rate(total.success_rate)}   {t('metrics.refund_rate')}: "
        f"{rate(total.refund_rate)}   {t('metrics.review_rate')}: {rate(total.review_rate)}   "
        f"{t('metrics.reject_rate')}: {rate(total.reject_rate)}",
        f"{t('metrics.queue_size')}: {m.queue_size}   {t('metrics.oldest_case')}: {seconds(m.oldest_case_age_s)}   "
        f"{t('metrics.stuck')}: {m.stuck}",
    ]
    if m.payout_times:
        lines += ["", table_line([t("metrics.channel"), "p50", "p95", t("metrics.on_time")])]
        for p in m.payout_times:
            lines.append(table_line([p.channel, seconds(p.p50_s), seconds(p.p95_s), rate(p.on_time_rate)]))
    for heading, rows in ((t("metrics.channel"), m.by_channel), (t("metrics.carrier"), m.by_carrier)):
        if rows:
            names = ["metrics.volume", "metrics.amount", "metrics.success_rate", "metrics.review_rate"]
            lines += ["", table_line([heading, *(t(name) for name in names)])]
            for key, f in rows.items():
                figures = [str(f.count), format_fen(f.amount_fen), rate(f.success_rate), rate(f.review_rate)]
                lines.append(table_line([key or "—", *figures]))
    return "\n".join(lines)


# --- stuck -----------------------------------------------------------------------------------


def stuck_arguments(parser: Parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the stuck recoveries as a JSON list")


def run_stuck(args: argparse.Namespace, t: Translator) -> int:
    from core.services.console.stuck import stuck_text  # deferred: see core/cli/_shared.py

    built = services(refresh=False)
    cases = built.stuck.stuck(operator(built, args.staff))
    rows = [
        {
            "id": case.view.id,
            "masked_number": case.view.masked_number,
            "channel": case.view.channel_id,
            "amount_fen": case.view.amount_fen,
            "state": case.view.state.value,
            "reason": case.reason.value,
            "parts": [
                {
                    "id": part.id,
                    "part": part.part,
                    "state": part.state.value,
                    "reason": part.reason.value,
                    "promised_by": part.deadline.isoformat(),
                    "attempts": part.attempts,
                    "last_error": part.last_error,
                }
                for part in case.parts
            ],
        }
        for case in cases
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not cases:
        print(t("stuck.none"))
    for case in cases:
        reasons = "; ".join(stuck_text(part, t) for part in case.parts)
        view = case.view
        print(f"{view.id}  {view.masked_number}  {view.channel_id}  {format_fen(view.amount_fen)}  {reasons}")
    return 0


ACTIONS = (
    Action(
        "metrics",
        "the figures of the recoveries created in a period (volume, fees, rates, payout times, queue, stuck)",
        "staff member",
        metrics_arguments,
        run_metrics,
    ),
    Action(
        "stuck",
        "recoveries past their channel's promise or waiting on an unanswered partner call, and why",
        "operator",
        stuck_arguments,
        run_stuck,
    ),
)
