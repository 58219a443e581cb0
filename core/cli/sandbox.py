"""`sandbox [--port N]`: the sandbox partners (terms feed, carrier API, payout APIs) served on
loopback, for several portal or worker processes to share (CARRIER_API_URL, PAYOUT_API_URL)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from core.cli._shared import Commands
from core.i18n import Translator

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from core.adapters.sandbox.payouts import SandboxPayouts


def register(commands: Commands) -> None:
    sandbox = commands.add_parser("sandbox", help="serve the sandbox partners on loopback")
    sandbox.add_argument("--port", type=_port, default=8700)
    sandbox.set_defaults(run=run)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def run(args: argparse.Namespace, t: Translator) -> int:
    server, payouts = _partners(args.port)
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


def _partners(port: int) -> tuple[ThreadingHTTPServer, SandboxPayouts]:
    """The server (bound, not yet serving) and the payout sandbox whose notifications it sends."""
    # deferred: httpx, the sandboxes and the keys' hashing (see core/cli/_shared.py)
    import httpx

    from core.adapters.partners import notify_secret
    from core.adapters.sandbox.carrier import SandboxCarrier
    from core.adapters.sandbox.payouts import SandboxPayouts
    from core.adapters.sandbox.server import make_server
    from core.adapters.sandbox.terms_feed import SandboxTermsFeed
    from core.config import Settings
    from core.reference_data import load_catalog_raw
    from core.security.keys import load_keys

    settings = Settings.from_env()

    raw = load_catalog_raw(settings.data_dir / "channels.json")
    feed = SandboxTermsFeed(raw, period_s=settings.sandbox_feed_period_s)
    # Notifications are signed with the portal's own derived secrets: share its secrets file.
    keys = load_keys(os.environ, settings.secrets_file, production=False)
    payouts = SandboxPayouts(
        secret_for=lambda channel_id: notify_secret(keys, os.environ, channel_id), notifier=httpx.Client()
    )
    server = make_server(
        {"/terms": feed, "/carrier": SandboxCarrier(), "/payouts": payouts},
        port=port,
        hang_s=settings.partner_timeout_s * 2,
    )
    return server, payouts
