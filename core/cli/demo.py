"""`demo`: fill a fresh sandbox install with demo data — consumers, and recoveries over the last
days through the real engine (core/simulation/demo.py). Refused outside sandbox mode. Prints a
short summary: counts only, never a number; the demo operators' passwords are never shown."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING

from core.cli._shared import Commands, sandbox_lease
from core.errors import InputError
from core.i18n import Translator

if TYPE_CHECKING:
    from core.simulation.demo import DemoResult

MAX_RECOVERIES = 5_000
MAX_DAYS = 365


def register(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo", help="fill a fresh sandbox install with demo recoveries (refused outside sandbox mode)"
    )
    demo.add_argument("--recoveries", type=int, required=True, help=f"how many recoveries (1 to {MAX_RECOVERIES})")
    demo.add_argument("--days", type=int, required=True, help=f"spread over the last this many days (1 to {MAX_DAYS})")
    demo.add_argument(
        "--seed", type=int, default=None, help="the same seed makes the same history (default: a new one)"
    )
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, t: Translator) -> int:
    # deferred: the services, the clock and the plan (see core/cli/_shared.py)
    import datetime as dt
    import os
    import secrets

    from core.bootstrap import build
    from core.config import Settings
    from core.reference_data import load_catalog
    from core.simulation.demo import plan_demo, refuse_outside_sandbox, run_demo, sandbox_only, window_start
    from core.simulation.rig import SimClock

    if not (1 <= args.recoveries <= MAX_RECOVERIES and 1 <= args.days <= MAX_DAYS and (args.seed or 0) >= 0):
        raise InputError(
            "--recoveries is 1 to 5000, --days 1 to 365, --seed 0 or more",
            key="error.demo.arguments",
            most=MAX_RECOVERIES,
            days=MAX_DAYS,
        )
    if os.environ.get("PORTAL_ENV") == "production":  # said before the settings refuse the sandbox themselves
        raise sandbox_only()
    settings = Settings.from_env()
    refuse_outside_sandbox(settings)
    seed = secrets.randbelow(1_000_000) if args.seed is None else args.seed
    catalog = load_catalog(settings.data_dir / "channels.json")
    plan = plan_demo(
        seed,
        args.recoveries,
        args.days,
        catalog,
        thresholds=settings.risk,
        four_eyes_above_fen=settings.four_eyes_above_fen,
    )
    start = window_start(plan, dt.datetime.now(dt.UTC))
    clock = SimClock(start)
    built = build(settings, clock=clock)
    with sandbox_lease(built):
        result = run_demo(built, clock, plan, start)
    _summary(result, t)
    return 0


def _summary(result: DemoResult, t: Translator) -> None:
    """Counts only: recoveries by state, consumers by carrier, the days; never a number."""
    import datetime as dt  # deferred: see core/cli/_shared.py

    from core.domain.calendar import SHANGHAI
    from core.domain.carriers import Carrier
    from core.domain.recovery import RecoveryState
    from core.simulation.demo import OPERATORS

    plan = result.plan
    first = result.start.astimezone(SHANGHAI).date()
    last = first + dt.timedelta(days=plan.days - 1)
    states, carriers = result.by_state(), Counter(c.carrier for c in plan.consumers)
    by_state = [f"{t(f'state.{s.value}')} {states[s]}" for s in RecoveryState if states[s]]
    by_carrier = [f"{t(f'carrier.{c.value}')} {carriers[c]}" for c in Carrier if carriers[c]]
    print(
        t(
            "demo.summary",
            recoveries=len(plan.recoveries),
            days=plan.days,
            first=first.isoformat(),
            last=last.isoformat(),
            consumers=len(plan.consumers),
            seed=plan.seed,
        )
    )
    print(t("demo.by_state", states=t.list(by_state)))
    print(t("demo.by_carrier", carriers=t.list(by_carrier)))
    print(t("demo.operators", operators=t.list(list(OPERATORS))))
