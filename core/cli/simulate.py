"""`simulate`: the seeded fault simulation of the recovery engine; its last line with --json is
one JSON object whose `violations` must be empty."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli._shared import Commands
from core.errors import InputError
from core.i18n import Translator


def register(commands: Commands) -> None:
    simulate = commands.add_parser("simulate", help="the seeded fault simulation of the recovery engine")
    simulate.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    simulate.add_argument(
        "--seed-start", type=int, default=0, help="the first seed (replay one: --seed-start K --seeds 1)"
    )
    simulate.add_argument("--recoveries", type=int, default=10, help="recoveries per seed")
    simulate.add_argument("--fault-rate", type=float, default=0.1, help="chance of each fault, 0 to 1")
    simulate.add_argument("--json", action="store_true", help="last line: one JSON object with `violations`")
    simulate.set_defaults(run=run)


def run(args: argparse.Namespace, t: Translator) -> int:
    # deferred: the simulation's rig builds every service on SQLAlchemy (see core/cli/_shared.py)
    from core.config import Settings
    from core.reference_data import load_catalog
    from core.simulation.simulator import dumps, simulate, summary

    if not 0 <= args.fault_rate <= 1 or args.seeds < 1 or args.recoveries < 1 or args.seed_start < 0:
        raise InputError("--fault-rate is 0 to 1; --seeds and --recoveries at least 1; --seed-start at least 0")
    catalog = load_catalog(Settings.from_env().data_dir / "channels.json")
    results = []
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        result = simulate(seed, catalog, recoveries=args.recoveries, fault_rate=args.fault_rate)
        results.append(result)
        for violation in result.violations:
            print(f"seed {seed}: {violation}", flush=True)
        if result.violations:
            print(
                f"replay: python -m core simulate --seed-start {seed} --seeds 1 "
                f"--recoveries {args.recoveries} --fault-rate {args.fault_rate}",
                flush=True,
            )
    report = summary(results, args.fault_rate)
    if args.json:
        print(dumps(report))
    else:
        print(_summary_line(report))
    return 1 if report["violations"] else 0


def _summary_line(report: dict[str, Any]) -> str:
    return (
        f"{report['seeds']} seeds, {report['recoveries']} recoveries ({report['transactions']} transactions), "
        f"{report['crashes']} crashes, {report['notices']} notices: "
        + ("every invariant held" if not report["violations"] else f"{len(report['violations'])} violations")
    )
