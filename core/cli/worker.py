"""`worker [--until-idle]`: make the partner calls recoveries are waiting for, beside the portal
(several on PostgreSQL; EMBEDDED_WORKER=0 in the portal)."""

from __future__ import annotations

import argparse
import sys

from core.cli._shared import Commands, sandbox_lease, services
from core.i18n import Translator


def register(commands: Commands) -> None:
    worker = commands.add_parser("worker", help="make the partner calls recoveries are waiting for")
    worker.add_argument(
        "--until-idle", action="store_true", help="stop once nothing is due (default: run until stopped)"
    )
    worker.set_defaults(run=run)


def run(args: argparse.Namespace, t: Translator) -> int:
    import signal  # deferred with threading: only a running worker needs them (see core/cli/_shared.py)
    import threading

    built = services(refresh=False)
    worker = built.worker()
    with sandbox_lease(built):  # refused while another process runs its own in-process sandbox here
        if built.partners is not None and built.partners.sandbox_payouts is not None:
            print(
                "note: in-process sandbox partners belong to this process alone; point several processes at "
                "`python -m core sandbox` (CARRIER_API_URL, PAYOUT_API_URL)",
                file=sys.stderr,
            )
            built.partners.sandbox_payouts.start()
        if args.until_idle:
            print(f"worker {worker.name}: {worker.run_until_idle()} steps")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        print(f"worker {worker.name} started", flush=True)
        worker.run(stop)
        print(f"worker {worker.name} stopped after {worker.steps} steps", flush=True)
    return 0
