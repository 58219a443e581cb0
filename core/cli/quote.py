"""`quote`: every channel compared for a balance; `channels`: the catalog as quotes use it now."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from core.cli._shared import Commands, quoting, width
from core.i18n import LANGUAGES, Translator
from core.money import PPM, format_fen

if TYPE_CHECKING:
    from core.services.quoting import QuoteOutcome


def register(commands: Commands) -> None:
    quote = commands.add_parser("quote", help="compare every channel for a balance")
    quote.add_argument("--balance", required=True, help="balance in CNY, e.g. 1200 or 1,200.50")
    quote.add_argument("--phone", default="", help="mainland mobile number (never printed in full)")
    quote.add_argument(
        "--carrier", help="china_mobile|china_unicom|china_telecom|china_broadnet (overrides the number's)"
    )
    quote.add_argument("--credit-limit", default="", help="credit-card limit in CNY (bank points malls)")
    quote.add_argument("--bound-carrier", help="carrier of the phone bound to the bank card (default: this number's)")
    quote.add_argument("--voucher-value", default="", help="what 1 CNY of e-vouchers is worth to you, e.g. 0.9")
    quote.add_argument("--points-value", default="", help="what 1 CNY of points is worth to you, e.g. 0.8")
    quote.add_argument("--priority", default="cost", help="cost|speed|cash: what matters most")
    quote.add_argument("--at", default="", help="moment of the quote, e.g. 2026-09-30T15:00:00+08:00 (default: now)")
    quote.add_argument("--snapshot", action="store_true", help="use the bundled terms; do not ask the live feed")
    quote.add_argument("--lang", dest="sub_lang", choices=LANGUAGES, help=argparse.SUPPRESS)
    quote.add_argument("--json", action="store_true", help="print JSON")
    quote.set_defaults(run=run_quote)

    channels = commands.add_parser("channels", help="list the channel catalog")
    channels.add_argument("--snapshot", action="store_true", help="the bundled terms; do not ask the live feed")
    channels.add_argument("--json", action="store_true", help="print JSON")
    channels.set_defaults(run=run_channels)


def run_quote(args: argparse.Namespace, t: Translator) -> int:
    from core.services.quoting import QuoteInput  # deferred: loads the terms feed's httpx (see core/cli/_shared.py)

    outcome = quoting(refresh=not args.snapshot).quotes.compare(
        QuoteInput(
            balance=args.balance,
            phone=args.phone,
            carrier=args.carrier,
            credit_limit=args.credit_limit,
            bound_carrier=args.bound_carrier,
            voucher_value=args.voucher_value,
            points_value=args.points_value,
            at=args.at or None,
            priority=args.priority,
        )
    )
    t.channel_names = {c.id: c.name for c in outcome.terms.catalog.channels}
    rows = quote_rows(outcome, t)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        _print_table(rows, t.reason(outcome.comparison.best_reason))
    return 0


def quote_rows(outcome: QuoteOutcome, t: Translator) -> list[dict[str, Any]]:
    """The JSON contract of `quote --json` (other tools and tests rely on it)."""
    terms = {ct.channel.id: ct for ct in outcome.terms.by_channel}
    rows = []
    for q in outcome.comparison.quotes:
        rate = q.effective_rate_ppm
        rows.append(
            {
                "channel": q.channel.id,
                "name": q.channel.display_name(t.language),
                "eligible": q.eligible,
                "reason": t.reason(q.reason) if q.reason else None,
                "reason_code": q.reason.key if q.reason else None,
                "recoverable_fen": q.recoverable_fen,
                "transactions": q.transactions,
                "fee_fen": q.fee_fen,
                "hidden_cost_fen": q.hidden_cost_fen,
                "net_fen": q.net_fen,
                "effective_rate": None if rate is None or not q.eligible else round(rate / PPM, 6),
                "payout_form": q.channel.payout_form.value,
                "eta_earliest": q.eta_earliest.isoformat() if q.eta_earliest else None,
                "eta_latest": q.eta_latest.isoformat() if q.eta_latest else None,
                "eta_estimated": q.eta_estimated,
                "as_of": q.channel.as_of.isoformat(),
                "terms_confirmed_at": terms[q.channel.id].confirmed_at.isoformat(),
                "rank": q.rank,
            }
        )
    return rows


def _table_line(r: dict[str, Any]) -> list[str]:
    if not r["eligible"]:
        return ["-", r["name"], "", "", "", "", "", "", r["reason"]]
    eta = r["eta_earliest"] if r["eta_earliest"] == r["eta_latest"] else f"{r['eta_earliest']}..{r['eta_latest']}"
    return [
        str(r["rank"]),
        r["name"],
        format_fen(r["recoverable_fen"]),
        format_fen(r["fee_fen"]),
        format_fen(r["hidden_cost_fen"]),
        format_fen(r["net_fen"]),
        f"{r['effective_rate'] * 100:.2f}%",
        eta + ("*" if r["eta_estimated"] else ""),
        f"x{r['transactions']}",
    ]


def _print_table(rows: list[dict[str, Any]], best: str) -> None:
    header = ["#", "channel", "recoverable", "fee", "hidden", "net", "rate", "arrives", ""]
    lines = [header, *(_table_line(r) for r in rows)]
    widths = [max(width(row[i]) for row in lines) for i in range(len(header) - 1)]
    for row in lines:
        cells = [cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=False)]
        print("  ".join(cells) + "  " + row[-1])
    if best:
        print(best)


def run_channels(args: argparse.Namespace, t: Translator) -> int:
    """The catalog as quotes use it now: live terms where the feed answers, else the snapshot."""
    terms = quoting(refresh=not args.snapshot).quotes.terms()
    rows = [
        {
            "channel": ct.channel.id,
            "name": ct.channel.display_name(t.language),
            "kind": ct.channel.kind.value,
            "payout_form": ct.channel.payout_form.value,
            "as_of": ct.channel.as_of.isoformat(),
            "source": ct.source,
            "terms_confirmed_at": ct.confirmed_at.isoformat(),
        }
        for ct in terms.by_channel
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for r in rows:
            print(
                f"{r['channel']:<18} {r['kind']:<20} {r['payout_form']:<12} {r['as_of']} {r['source']:<8} {r['name']}"
            )
    return 0
