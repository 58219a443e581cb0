"""`worker [--until-idle] [--concurrency K] [--processes N]`: make the partner calls recoveries are
waiting for, beside the portal (EMBEDDED_WORKER=0 in the portal then).

One worker keeps up to K partner calls in flight (WORKER_CONCURRENCY, 64 by default): partners
take tens to hundreds of milliseconds to answer, and the database writes stay short. Several
workers share the work on PostgreSQL (`FOR UPDATE SKIP LOCKED`): `--processes N` starts N worker
processes and stops them together (SIGTERM or Ctrl-C), restarting one that dies; a process
manager (deploy/) can run single workers instead."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from core.cli._shared import Commands, sandbox_lease, services
from core.i18n import Translator


def _count(low: int, high: int) -> Callable[[str], int]:
    def read(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}")
        return int(text)

    return read


def register(commands: Commands) -> None:
    worker = commands.add_parser("worker", help="make the partner calls recoveries are waiting for")
    worker.add_argument(
        "--until-idle", action="store_true", help="stop once nothing is due (default: run until stopped)"
    )
    worker.add_argument(
        "--concurrency", type=_count(1, 256), default=None, metavar="K",
        help="partner calls kept in flight by each worker (default: WORKER_CONCURRENCY, else 64)",
    )  # fmt: skip
    worker.add_argument(
        "--processes", type=_count(1, 64), default=1, metavar="N",
        help="worker processes to start (PostgreSQL, or partners served by `python -m core sandbox`)",
    )  # fmt: skip
    worker.set_defaults(run=run)


def run(args: argparse.Namespace, t: Translator) -> int:
    if args.processes > 1:
        return _supervise(args)
    import signal  # deferred with threading: only a running worker needs them (see core/cli/_shared.py)
    import threading

    built = services(refresh=False)
    options = {"concurrency": args.concurrency} if args.concurrency else {}
    worker = built.worker(**options)
    with sandbox_lease(built):  # refused while another process runs its own in-process sandbox here
        if built.partners is not None and built.partners.sandbox_payouts is not None:
            print(
                "note: in-process sandbox partners belong to this process alone; point several processes at "
                "`python -m core sandbox` (CARRIER_API_URL, PAYOUT_API_URL)",
                file=sys.stderr,
            )
            built.partners.sandbox_payouts.start()
        if args.until_idle:
            print(f"worker {worker.name}: {worker.run_until_idle(concurrency=worker.concurrency)} steps")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        print(f"worker {worker.name} started ({worker.concurrency} calls in flight at most)", flush=True)
        upkeep = threading.Thread(target=built.housekeeping().run, args=(stop,), name="upkeep", daemon=True)
        upkeep.start()  # the metrics of recent days kept ahead of the pages, old quote-log lines gone
        worker.run(stop)
        upkeep.join(timeout=10)
        print(f"worker {worker.name} stopped after {worker.steps} steps", flush=True)
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """N worker processes of this same command, stopped together; one that dies unasked is
    started again after a second (at most once a second, so a broken setting does not spin)."""
    import signal
    import subprocess
    import threading
    import time

    from core.config import SANDBOX, Settings
    from core.errors import InputError

    settings = Settings.from_env()
    if SANDBOX in (settings.carrier_api_url, settings.payout_api_url):
        raise InputError(
            "several worker processes need partners they share: serve them with `python -m core sandbox` "
            "and set CARRIER_API_URL and PAYOUT_API_URL",
            key="error.worker.shared_partners",
        )
    argv = [sys.executable, "-m", "core", "worker"]
    argv += ["--concurrency", str(args.concurrency)] if args.concurrency else []
    argv += ["--until-idle"] if args.until_idle else []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    children = [subprocess.Popen(argv) for _ in range(args.processes)]  # noqa: S603 - this same program
    print(f"{len(children)} worker processes started", flush=True)
    failed = 0
    while not stop.is_set():
        for i, child in enumerate(children):
            code = child.poll()
            if code is None:
                continue
            if args.until_idle:
                failed |= code
                continue
            print(f"worker process {child.pid} ended ({code}); starting another", file=sys.stderr, flush=True)
            time.sleep(1)
            children[i] = subprocess.Popen(argv)  # noqa: S603 - this same program
        if args.until_idle and all(child.poll() is not None for child in children):
            return 1 if failed else 0
        stop.wait(0.5)
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    print("worker processes stopped", flush=True)
    return 0
