"""`pricing simulate|list|show|draft|submit|approve|decline|rollback`: the portal's pricing for
scripts, as the Pricing lab runs them (core.services.pricing): an analyst saves a draft from a
JSON file and submits it, an admin who is not the author approves (it is live at once) or
declines it; a rollback submits a copy of an earlier live version."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli._shared import Commands, read_at_most, services, staff
from core.i18n import Translator

if TYPE_CHECKING:
    from core.domain.access import Principal
    from core.services.pricing import PricingService, VersionView


def register(commands: Commands) -> None:
    group = commands.add_parser("pricing", help="pricing versions: list, show, draft, submit, approve, decline")
    actions = group.add_subparsers(dest="action", required=True)

    def action(name: str, help: str, *, number: bool = False, note: bool = False) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        parser.add_argument("--as", dest="staff", required=True, help="the analyst's or admin's user name")
        if number:
            parser.add_argument("number", type=version_number, help="the version's number")
        if note:
            parser.add_argument("--note", required=True, help="one line: why")
        return parser

    action("list", "every version, newest first").add_argument("--json", action="store_true")
    action("show", "a version's document (JSON)", number=True)
    draft = action("draft", "save a new draft from a JSON file (checked whole first)")
    draft.add_argument("--file", required=True, type=Path)
    draft.add_argument("--note", default="")
    action("submit", "submit your draft for an admin's approval", number=True, note=True)
    approve = action("approve", "make a submitted version live (an admin, not its author)", number=True)
    approve.add_argument("--note", default="")
    action("decline", "decline a submitted version (an admin, not its author)", number=True, note=True)
    action("rollback", "submit a copy of an earlier live version", number=True, note=True)
    simulate = actions.add_parser(
        "simulate", help="what the live version (or --schedule FILE, beside it) does on a synthetic population"
    )
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--schedule", type=Path, help="a pricing document (JSON) to try beside the live version")
    source.add_argument("--live", action="store_true", help="the live version alone (the default)")
    simulate.add_argument("--population", type=int, default=100_000, help="simulated users (1 to 1,000,000)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--median-yuan", type=float, default=150.0, help="the balances' median (log-normal)")
    simulate.add_argument("--sigma", type=float, default=1.0, help="the log-normal's spread")
    simulate.add_argument("--logit", type=float, default=None, help="choose by a logit of the money, this sensitive")
    simulate.add_argument(
        "--replay-days", type=int, default=0, help="resample the quotes served over these last days instead"
    )
    simulate.add_argument("--json", action="store_true")
    runs = {
        "simulate": run_simulate,
        "list": run_list,
        "show": run_show,
        "draft": run_draft,
        **{step: _workflow(step) for step in ("submit", "approve", "decline", "rollback")},
    }
    for name, parser in actions.choices.items():
        parser.set_defaults(run=runs[name])


def _acting(args: argparse.Namespace) -> tuple[PricingService, Principal]:
    built = services(refresh=False)
    return built.pricing, staff(built, args.staff)


def _line(v: VersionView) -> str:
    decided = f"  {v.decided_by}" if v.decided_by else ""
    based = f"  (rollback to {v.based_on})" if v.based_on else ""
    return f"{v.number:>4}  {v.status.value:<9}  {v.author or '-'}{decided}{based}  {v.note}"


def run_list(args: argparse.Namespace, t: Translator) -> int:
    pricing, caller = _acting(args)
    versions = pricing.versions(caller)
    if args.json:
        rows = [
            {
                "number": v.number,
                "status": v.status.value,
                "author": v.author,
                "note": v.note,
                "based_on": v.based_on,
                "decided_by": v.decided_by,
                "decision_note": v.decision_note,
                "created_at": v.created_at.isoformat(),
            }
            for v in versions
        ]
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for v in versions:
            print(_line(v))
    return 0


def version_number(text: str) -> int:
    """A version's number argument: a whole number from 1 to 2,147,483,647 (the column's range)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number") from None
    if not 1 <= number <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number (1 to 2147483647)")
    return number


def _read_document(path: Path) -> str:
    from core.domain.pricing import MAX_DOCUMENT_BYTES, PricingError  # deferred: see core/cli/_shared.py
    from core.domain.problems import Problem

    content = read_at_most(path, MAX_DOCUMENT_BYTES)
    if content is None:
        problem = Problem("", "too_large", most=MAX_DOCUMENT_BYTES)
        raise PricingError(f"{path.name}: {problem}", source=path.name, problems=[problem])
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        problem = Problem("", "not_utf8")
        raise PricingError(f"{path.name}: {problem}", source=path.name, problems=[problem]) from None


def run_simulate(args: argparse.Namespace, t: Translator) -> int:
    """One JSON object: the draft's figures when --schedule is given, else the live version's."""
    from core.services.pricing import PopulationSpec  # deferred: see core/cli/_shared.py

    draft = _read_document(args.schedule) if args.schedule else None
    spec = PopulationSpec(args.population, args.seed, args.median_yuan, args.sigma, replay_days=args.replay_days)
    run = services(refresh=False).pricing.simulate(None, spec, draft=draft, logit_sensitivity=args.logit, curve=())
    result = run.draft or run.live
    figures = {**result.summary(), "seconds": round(run.seconds, 3)}
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        for name, value in figures.items():
            print(f"{name:18} {value:,}" if isinstance(value, int) else f"{name:18} {value:.4f}")
    return 0


def run_show(args: argparse.Namespace, t: Translator) -> int:
    pricing, caller = _acting(args)
    print(pricing.version(caller, args.number).document)
    return 0


def run_draft(args: argparse.Namespace, t: Translator) -> int:
    pricing, caller = _acting(args)
    print(_line(pricing.save_draft(caller, _read_document(args.file), args.note)))
    return 0


def _workflow(step: str) -> Callable[[argparse.Namespace, Translator], int]:
    """`submit`, `approve`, `decline` or `rollback`: the service call of that name on the version
    numbered, with the note; the version as it stands after, on one line."""

    def run(args: argparse.Namespace, t: Translator) -> int:
        pricing, caller = _acting(args)
        print(_line(getattr(pricing, step)(caller, args.number, args.note)))
        return 0

    return run
