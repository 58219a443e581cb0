"""`sandbox [--port N]`: the sandbox partners (terms feed, carrier API, payout APIs) served on
loopback, for several portal or worker processes to share (CARRIER_API_URL, PAYOUT_API_URL).

`sandbox statement --partner P --date D --out FILE`: a partner's settlement statement of one
Asia/Shanghai business day, from its own books, in its own dialect — with breaks injected on
request (--missing, --changed, --duplicated, --foreign, --next-day: how many rows; --summary-off:
fen the summary block is off by; --seed picks the rows)."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from core.cli._shared import Commands, day
from core.i18n import Translator

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from core.adapters.sandbox.payouts import SandboxPayouts


def register(commands: Commands) -> None:
    sandbox = commands.add_parser(
        "sandbox", help="serve the sandbox partners on loopback; `statement`: one's statement"
    )
    sandbox.add_argument("--port", type=_port, default=8700)
    sandbox.add_argument(
        "--latency-ms",
        type=_latency,
        default=None,
        metavar="MS",
        help="how long the carrier and payout partners take to answer: 100, or 50-300 drawn uniformly "
        "(default: SANDBOX_LATENCY_MS, else at once)",
    )
    sandbox.set_defaults(run=run)
    more = sandbox.add_subparsers(dest="sandbox_action", required=False)
    statement = more.add_parser("statement", help="write a sandbox partner's settlement statement of one day")
    statement.add_argument("--partner", required=True, help="carrier, or a payout channel (alipay, wechat_pay, ...)")
    statement.add_argument("--date", required=True, type=day, help="the business day, YYYY-MM-DD (Beijing time)")
    statement.add_argument("--out", required=True, help="the file to write")
    for knob in ("missing", "changed", "duplicated", "foreign", "next-day"):
        statement.add_argument(f"--{knob}", type=int, default=0, metavar="N", help=f"rows {knob.replace('-', ' ')}")
    statement.add_argument("--summary-off", type=int, default=0, metavar="FEN", help="the summary is off by FEN")
    statement.add_argument("--seed", type=int, default=0, help="which rows the breaks hit")
    statement.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    statement.set_defaults(run=run_statement)


def run_statement(args: argparse.Namespace, t: Translator) -> int:
    import time

    from core.adapters.sandbox.books import MEMORY, sandbox_book
    from core.adapters.sandbox.statements import Breaks, produce_statement
    from core.config import Settings
    from core.domain.pricing import OWN_OFFER_ID
    from core.errors import InputError
    from core.reference_data import load_catalog

    settings = Settings.from_env()
    market = load_catalog(settings.data_dir / "channels.json").channels
    partners = {"carrier", OWN_OFFER_ID, *(c.id for c in market)}  # the own offer's payouts too
    if args.partner not in partners:
        raise InputError(f"no partner {args.partner!r}", key="error.reconcile.partner", partner=args.partner[:32])
    book = sandbox_book(settings, settings.database_url)
    if book is None or book.path == MEMORY:
        raise InputError(
            "the sandbox partners' books are not kept in a file here (set SANDBOX_BOOKS)",
            key="error.statement.no_books",
        )
    breaks = Breaks(
        missing=args.missing,
        changed=args.changed,
        duplicated=args.duplicated,
        foreign=args.foreign,
        next_day=args.next_day,
        summary_off=args.summary_off,
        seed=args.seed,
    )
    produced = produce_statement(book, args.partner, args.date, until=time.time(), breaks=breaks)
    with open(args.out, "wb") as out:
        out.write(produced.data)
    if args.json:
        print(
            json.dumps(
                {
                    "partner": args.partner,
                    "date": args.date.isoformat(),
                    "rows": produced.rows,
                    "broken": produced.broken,
                }
            )
        )
    else:
        print(t("cli.statement.written", rows=str(produced.rows), path=args.out))
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def _latency(text: str) -> tuple[float, float]:
    from core.adapters.sandbox.faults import parse_latency

    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, t: Translator) -> int:
    server, payouts = _partners(args.port, args.latency_ms)
    host, port = str(server.server_address[0]), server.server_address[1]
    base = f"http://{host}:{port}"
    print(
        f"sandbox partners on {base}/ :\n"
        f"  terms feed   TERMS_FEED_URL={base}/terms\n"
        f"  carrier API  CARRIER_API_URL={base}/carrier\n"
        f"  payout APIs  PAYOUT_API_URL={base}/payouts\n"
        "  knobs: POST {url}/_sandbox/knobs (payouts: {url}/{channel}/_sandbox/knobs)",
        flush=True,
    )
    payouts.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        payouts.stop()
        server.server_close()
    return 0


def _partners(port: int, latency: tuple[float, float] | None) -> tuple[ThreadingHTTPServer, SandboxPayouts]:
    """The server (bound, not yet serving) and the payout sandbox whose notifications it sends."""
    # deferred: httpx, the sandboxes and the keys' hashing (see core/cli/_shared.py)
    import httpx

    from core.adapters.partners import notify_secret
    from core.adapters.sandbox.books import sandbox_book
    from core.adapters.sandbox.carrier import SandboxCarrier
    from core.adapters.sandbox.faults import Faults
    from core.adapters.sandbox.payouts import SandboxPayouts
    from core.adapters.sandbox.server import make_server
    from core.adapters.sandbox.terms_feed import SandboxTermsFeed
    from core.config import Settings
    from core.reference_data import load_catalog_raw
    from core.security.keys import load_keys

    settings = Settings.from_env()
    least, most = latency if latency is not None else settings.sandbox_latency
    faults = Faults(latency_s=least, latency_max_s=most)  # one seeded source for both partners

    raw = load_catalog_raw(settings.data_dir / "channels.json")
    feed = SandboxTermsFeed(raw, period_s=settings.sandbox_feed_period_s)
    # Notifications are signed with the portal's own derived secrets: share its secrets file.
    keys = load_keys(os.environ, settings.secrets_file, production=False)
    book = sandbox_book(settings, settings.database_url)  # the partners' own records, shared with other processes
    payouts = SandboxPayouts(
        secret_for=lambda channel_id: notify_secret(keys, os.environ, channel_id),
        notifier=httpx.Client(),
        book=book,
        faults=faults,
    )
    server = make_server(
        {"/terms": feed, "/carrier": SandboxCarrier(book=book, faults=faults), "/payouts": payouts},
        port=port,
        hang_s=settings.partner_timeout_s * 2,
    )
    return server, payouts
