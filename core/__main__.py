"""The command line: `python -m core quote|channels|sandbox`.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, NoReturn

from core.errors import InputError, PortalError
from core.i18n import LANGUAGES, Translator
from core.money import PPM, format_fen


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, status 2
        self.exit(2, f"{self.prog}: {message}\n")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Phone-balance recovery portal: command line")
    parser.add_argument("--lang", choices=LANGUAGES, default="zh-CN", help="language of names and messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    quote = sub.add_parser("quote", help="compare every channel for a balance")
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

    channels = sub.add_parser("channels", help="list the channel catalog")
    channels.add_argument("--snapshot", action="store_true", help="the bundled terms; do not ask the live feed")
    channels.add_argument("--json", action="store_true", help="print JSON")

    db = sub.add_parser("db", help="the database schema")
    db.add_argument("action", choices=["upgrade", "current"])

    users = sub.add_parser("users", help="staff accounts (the password is read from standard input)")
    users_sub = users.add_subparsers(dest="action", required=True, parser_class=_Parser)
    create = users_sub.add_parser("create", help="create a staff account")
    create.add_argument("--role", required=True, choices=["analyst", "operator", "admin"])
    create.add_argument("--username", required=True)
    create.add_argument("--phone", default=None, help="a mainland mobile number for the account (stored encrypted)")
    create.add_argument("--totp", action="store_true", help="also set up a TOTP second factor and print its secret")
    totp = users_sub.add_parser("totp", help="set up (or with --replace, reset) a staff account's second factor")
    totp.add_argument("--username", required=True)
    totp.add_argument("--replace", action="store_true", help="replace an existing second factor")

    audit = sub.add_parser("audit", help="the hash-chained audit trail")
    audit.add_argument("action", choices=["verify"])

    sandbox = sub.add_parser("sandbox", help="serve the sandbox partners on loopback")
    sandbox.add_argument("--port", type=_port, default=8700)

    recover = sub.add_parser("recover", help="drive a recovery as the consumer who verified --as-phone")
    recover_sub = recover.add_subparsers(dest="action", required=True, parser_class=_Parser)
    start = recover_sub.add_parser("start", help="submit a recovery (and, unless --no-wait, work it to the end)")
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
    for name in ("status", "list", "cancel"):
        command = recover_sub.add_parser(name, help=f"{name} of the consumer's recoveries")
        command.add_argument("--as-phone", required=True)
        if name != "list":
            command.add_argument("id", help="the recovery id printed by `start`")
    for command in recover_sub.choices.values():
        command.add_argument("--json", action="store_true", help="print JSON")

    review = sub.add_parser("review", help="recoveries the risk rules sent to review: list, approve, reject")
    review_sub = review.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for name in ("list", "approve", "reject"):
        command = review_sub.add_parser(name, help=f"{name} recoveries in review")
        command.add_argument("--as", dest="operator", required=True, help="the operator's user name")
        if name != "list":
            command.add_argument("id", help="the recovery id (see `review list`)")
            command.add_argument("--reason", required=True, help="why (recorded with your name)")
        command.add_argument("--json", action="store_true", help="print JSON")

    deny = sub.add_parser("deny", help="the risk rules' deny list: add, remove, list")
    deny_sub = deny.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for name in ("add", "remove", "list"):
        command = deny_sub.add_parser(name, help=f"{name} deny-list entries")
        command.add_argument("--as", dest="operator", required=True, help="the operator's user name")
        if name != "list":
            command.add_argument("--kind", required=True, choices=("user", "number", "device", "payee"))
            command.add_argument("--value", required=True, help="a user id, a mobile number, a device index, a payee")
        if name == "add":
            command.add_argument("--reason", required=True)

    receipt = sub.add_parser("receipt", help="signed recovery receipts: issue one, verify one")
    receipt_sub = receipt.add_subparsers(dest="action", required=True, parser_class=_Parser)
    issue = receipt_sub.add_parser("issue", help="write a recovery's signed receipt to a file")
    issue.add_argument("--as-phone", required=True, help="the consumer's verified number")
    issue.add_argument("id", help="the recovery id")
    issue.add_argument("--out", required=True, help="the file to write (e.g. receipt.jws)")
    verify = receipt_sub.add_parser("verify", help="check a receipt against the portal's published key")
    verify.add_argument("file", help="the receipt file (.jws)")
    verify.add_argument(
        "--jwks",
        default="",
        help="the published key set: a URL (https://portal.example/receipts/jwks) or a file; "
        "default: this portal's own key",
    )
    verify.add_argument("--json", action="store_true", help="print what the receipt says as JSON")

    worker = sub.add_parser("worker", help="make the partner calls recoveries are waiting for")
    worker.add_argument(
        "--until-idle", action="store_true", help="stop once nothing is due (default: run until stopped)"
    )

    simulate = sub.add_parser("simulate", help="the seeded fault simulation of the recovery engine")
    simulate.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    simulate.add_argument(
        "--seed-start", type=int, default=0, help="the first seed (replay one: --seed-start K --seeds 1)"
    )
    simulate.add_argument("--recoveries", type=int, default=10, help="recoveries per seed")
    simulate.add_argument("--fault-rate", type=float, default=0.1, help="chance of each fault, 0 to 1")
    simulate.add_argument("--json", action="store_true", help="last line: one JSON object with `violations`")
    return parser


def quote_rows(outcome: Any, t: Translator) -> list[dict[str, Any]]:
    """The JSON contract of `quote --json` (other tools and tests rely on it)."""
    rows = []
    terms = {ct.channel.id: ct for ct in outcome.terms.by_channel}
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


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _print_table(rows: list[dict[str, Any]], t: Translator, best: str) -> None:
    header = ["#", "channel", "recoverable", "fee", "hidden", "net", "rate", "arrives", ""]
    lines = [header]
    for r in rows:
        if r["eligible"]:
            eta = (
                r["eta_earliest"] if r["eta_earliest"] == r["eta_latest"] else f"{r['eta_earliest']}..{r['eta_latest']}"
            )
            lines.append(
                [
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
            )
        else:
            lines.append(["-", r["name"], "", "", "", "", "", "", r["reason"]])
    widths = [max(_width(row[i]) for row in lines) for i in range(len(header) - 1)]
    for row in lines:
        cells = [cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=False)]
        print("  ".join(cells) + "  " + row[-1])
    if best:
        print(best)


def _quote(args: argparse.Namespace, t: Translator) -> int:
    from core.bootstrap import build
    from core.services.quoting import QuoteInput

    services = build(refresh=not args.snapshot)
    outcome = services.quotes.compare(
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
        _print_table(rows, t, t.reason(outcome.comparison.best_reason))
    return 0


def _channels(args: argparse.Namespace, t: Translator) -> int:
    """The catalog as quotes use it now: live terms where the feed answers, else the snapshot."""
    from core.bootstrap import build

    terms = build(refresh=not args.snapshot).quotes.terms()
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


def _db(args: argparse.Namespace, t: Translator) -> int:
    from core.config import Settings
    from core.persistence import migrate
    from core.persistence.db import engine_for

    engine = engine_for(Settings.from_env().database_url)
    if args.action == "upgrade":
        migrate.upgrade(engine)
    print(f"schema at {migrate.current(engine)} (head {migrate.head()})")
    return 0


def _audit(args: argparse.Namespace, t: Translator) -> int:
    from core.config import Settings
    from core.persistence.db import engine_for
    from core.services.audit import verify_audit_chain

    checked, broken = verify_audit_chain(engine_for(Settings.from_env().database_url))
    if broken is None:
        print(f"audit chain verified: {checked} records")
        return 0
    print(f"audit chain broken at record {broken} (of {checked})", file=sys.stderr)
    return 1


MAX_PASSWORD_LINE = 4096  # far past any password's length limit; the rest of the line is not read


def _read_password() -> str:
    """From standard input, never from an argument (arguments show in process lists and history)."""
    if sys.stdin.isatty():
        import getpass

        try:
            first = getpass.getpass("password: ")
            again = getpass.getpass("again: ")
        except UnicodeDecodeError:
            raise _password_not_text() from None
        if again != first:
            raise InputError("the two passwords differ", key="error.password.mismatch")
        password = first
    else:
        # The bytes themselves, decoded strictly: the text layer of standard input may be set
        # to turn undecodable bytes into lone surrogates (a C/POSIX locale does) or to raise.
        line = sys.stdin.buffer.readline(MAX_PASSWORD_LINE + 1)
        if len(line) > MAX_PASSWORD_LINE:
            raise InputError("a password has 8 to 128 characters", key="error.password.length")
        try:
            password = line.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            raise _password_not_text() from None
    if _not_text([password]) is not None:
        raise _password_not_text()
    return password


def _password_not_text() -> InputError:
    return InputError("the password is not UTF-8 text", key="error.password.encoding")


def _users(args: argparse.Namespace, t: Translator) -> int:
    from core.bootstrap import build

    identity = build(refresh=False).identity
    assert identity is not None
    if args.action == "totp":
        user_id = identity.staff_id(args.username)
        secret = identity.enable_totp(user_id, replace=args.replace)
        print(f"TOTP secret for {args.username} (add it to an authenticator app now; it is not shown again): {secret}")
        return 0
    user_id = identity.create_staff(args.role, args.username, _read_password(), phone=args.phone)
    print(f"created {args.role} {args.username} ({user_id})")
    if args.totp:
        print(
            f"TOTP secret (add it to an authenticator app now; it is not shown again): {identity.enable_totp(user_id)}"
        )
    return 0


def _recover(args: argparse.Namespace, t: Translator) -> int:
    import secrets

    from core.bootstrap import build
    from core.money import parse_amount
    from core.services.recovery.views import RecoveryRequest

    services = build(refresh=args.action == "start")
    assert services.identity is not None and services.recoveries is not None
    caller = services.identity.consumer_by_number(args.as_phone)
    if args.action == "list":
        views = services.recoveries.list_for(caller)
    elif args.action == "status":
        views = [services.recoveries.get(caller, args.id)]
    elif args.action == "cancel":
        views = [services.recoveries.cancel(caller, args.id)]
    else:
        if args.accept_agreement and services.agreements is not None:
            services.agreements.accept(caller, services.agreements.current().version)
        key = args.key or f"cli-{secrets.token_hex(8)}"
        request = RecoveryRequest(args.channel, args.as_phone, parse_amount(args.amount), args.payee)
        # in-process sandbox partners answer for this process alone: refused while another runs its own here
        with _sandbox_lease(services):
            view = services.recoveries.submit(caller, key, request)
            if not args.no_wait:
                _work_until_settled(services, caller, view.id)
        views = [services.recoveries.get(caller, view.id)]
        if not args.json:
            print(f"idempotency key: {key}" + ("" if view.created else " (an earlier submission with this key)"))
    rows = [_recovery_row(v) for v in views]
    if args.json:
        print(json.dumps(rows if args.action == "list" else rows[0], ensure_ascii=False))
    else:
        for row in rows:
            parts = ", ".join(
                f"#{p['part']} {format_fen(p['debit_fen'])} {p['state']}" + (f" ({p['reason']})" if p["reason"] else "")
                for p in row["parts"]
            )
            print(
                f"{row['id']}  {row['masked_number']}  {row['channel']}  "
                f"{format_fen(row['amount_fen'])}  {row['state']}  [{parts}]"
            )
        from core.domain.reasons import describe_outcome

        for view in views:
            for line in describe_outcome(view.outcome):
                print(f"  {view.id[:8]}  " + t.reason(line))
    return 0


def _operator(services: Any, username: str) -> Any:
    """The staff account acting on the command line (whoever runs it holds the server's keys)."""
    from core.domain.access import OPERATORS, NotAllowed, Principal

    assert services.identity is not None
    user_id = services.identity.staff_id(username)
    role = services.identity.role_of(user_id)
    if role not in OPERATORS:
        raise NotAllowed(f"{username} is not an operator", key="error.review.not_operator")
    return Principal(user_id, role)


def _review(args: argparse.Namespace, t: Translator) -> int:
    from core.bootstrap import build

    services = build(refresh=False)
    assert services.recoveries is not None
    caller = _operator(services, args.operator)
    if args.action == "list":
        views = services.recoveries.review_queue(caller)
    else:
        approve = args.action == "approve"
        views = [
            services.recoveries.review(caller, args.id, approve=approve, reason=args.reason, operator=args.operator)
        ]
    rows = [_recovery_row(v) for v in views]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print(t("review.none"))
    for view, row in zip(views, rows, strict=True):
        reasons = "; ".join(t(r.key, **r.params) for r in view.risk.reasons) if view.risk else ""
        print(
            f"{row['id']}  {row['masked_number']}  {row['channel']}  {format_fen(row['amount_fen'])}  "
            f"{row['state']}  {reasons}"
        )
    return 0


def _deny(args: argparse.Namespace, t: Translator) -> int:
    from core.bootstrap import build

    services = build(refresh=False)
    assert services.risk is not None
    caller = _operator(services, args.operator)
    if args.action == "add":
        print(services.risk.deny(caller, args.kind, args.value, args.reason))
    elif args.action == "remove":
        if not services.risk.allow(caller, args.kind, args.value):
            print("not on the deny list", file=sys.stderr)
            return 1
    else:
        for entry in services.risk.deny_list(caller):
            print(f"{entry.key}  {entry.added_at.isoformat(timespec='seconds')}  {entry.reason}")
    return 0


def _receipt(args: argparse.Namespace, t: Translator) -> int:
    from pathlib import Path

    from core.bootstrap import build
    from core.services.receipts import verify_receipt

    if args.action == "issue":
        services = build(refresh=False)
        assert services.identity is not None and services.receipts is not None
        token = services.receipts.issue(services.identity.consumer_by_number(args.as_phone), args.id)
        Path(args.out).write_text(token + "\n", encoding="utf-8")
        print(args.out)
        return 0
    token = Path(args.file).read_text(encoding="utf-8", errors="replace")[:100_000]
    if args.jwks.startswith(("http://", "https://")):
        import httpx

        try:
            key_set = httpx.get(args.jwks, timeout=10).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            print(f"error: could not fetch the key set: {type(exc).__name__}", file=sys.stderr)
            return 2
    elif args.jwks:
        try:
            key_set = json.loads(Path(args.jwks).read_text(encoding="utf-8"))
        except ValueError:
            print("error: the key set file is not JSON", file=sys.stderr)
            return 2
    else:
        services = build(refresh=False)
        assert services.receipts is not None
        key_set = services.receipts.jwks()
    receipt = verify_receipt(token, key_set)
    recovery = receipt.recovery
    if args.json:
        print(
            json.dumps(
                {"valid": True, "kid": receipt.key_id, "iss": receipt.issuer, "recovery": recovery}, ensure_ascii=False
            )
        )
    else:
        from core.domain.reasons import describe_outcome
        from core.services.receipts import receipt_outcome

        outcome = receipt_outcome(receipt)  # what happened to the money, from the signed parts
        print(
            t(
                "receipt.valid",
                id=recovery.get("id", ""),
                state=recovery.get("state", ""),
                amount=format_fen(outcome.received_fen),
                issuer=receipt.issuer,
            )
        )
        for line in describe_outcome(outcome):
            print("  " + t.reason(line))
    return 0


def _recovery_row(view: Any) -> dict[str, Any]:
    return {
        "id": view.id,
        "channel": view.channel_id,
        "masked_number": view.masked_number,
        "amount_fen": view.amount_fen,
        "fee_fen": view.fee_fen,
        "state": view.state.value,
        "settled": view.settled,
        "created_at": view.created_at.isoformat(),
        "risk": view.risk.decision.value if view.risk is not None else None,
        "risk_reasons": [r.rule for r in view.risk.reasons] if view.risk is not None else [],
        "parts": [p.as_dict() for p in view.parts],
        "outcome": view.outcome.as_dict(),  # what happened to the money (received only when paid)
    }


def _work_until_settled(services: Any, caller: Any, recovery_id: str, timeout_s: float = 120.0) -> None:
    """Work this process's outbox until the recovery has ended (sandbox partners notify in-process)."""
    import time

    worker = services.worker()
    sandbox_payouts = services.partners.sandbox_payouts
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not services.recoveries.get(caller, recovery_id).settled:
        busy = worker.run_once()
        if sandbox_payouts is not None:
            sandbox_payouts.deliver_due()
        if not busy:
            time.sleep(0.1)


def _worker(args: argparse.Namespace, t: Translator) -> int:
    import signal
    import threading

    from core.bootstrap import build

    services = build(refresh=False)
    worker = services.worker()
    with _sandbox_lease(services):  # refused while another process runs its own in-process sandbox here
        if services.partners is not None and services.partners.sandbox_payouts is not None:
            print(
                "note: in-process sandbox partners belong to this process alone; point several processes at "
                "`python -m core sandbox` (CARRIER_API_URL, PAYOUT_API_URL)",
                file=sys.stderr,
            )
            services.partners.sandbox_payouts.start()
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


def _sandbox_lease(services: Any) -> Any:
    """The in-process sandbox partners' lease for this command, or nothing to hold."""
    import contextlib

    lease = services.sandbox_lease()
    return lease if lease is not None else contextlib.nullcontext()


def _simulate(args: argparse.Namespace, t: Translator) -> int:
    from core.config import Settings
    from core.reference_data import load_catalog
    from core.services.simulation import dumps, simulate, summary

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
        print(
            f"{report['seeds']} seeds, {report['recoveries']} recoveries ({report['transactions']} transactions), "
            f"{report['crashes']} crashes, {report['notices']} notices: "
            + ("every invariant held" if not report["violations"] else f"{len(report['violations'])} violations")
        )
    return 1 if report["violations"] else 0


def _sandbox(args: argparse.Namespace, t: Translator) -> int:
    import os

    import httpx

    from core.adapters.sandbox.carrier import SandboxCarrier
    from core.adapters.sandbox.payouts import SandboxPayouts
    from core.adapters.sandbox.server import make_server
    from core.adapters.sandbox.terms_feed import SandboxTermsFeed
    from core.bootstrap import notify_secret
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
    carrier = SandboxCarrier()
    server = make_server(
        {"/terms": feed, "/carrier": carrier, "/payouts": payouts},
        port=args.port,
        hang_s=settings.partner_timeout_s * 2,
    )
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


def _not_text(argv: Sequence[str]) -> int | None:
    """The position (1-based) of the first argument that is not UTF-8 text, or None.

    Python hands bytes it cannot decode to us as lone surrogates ("surrogateescape"); they
    cannot be stored, compared with a database value or printed, so they are refused once,
    here, before any command sees them."""
    for position, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return position
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    bad = _not_text(argv)
    if bad is not None:  # one line in argparse's style; the bytes themselves are not echoed
        print(f"python -m core: argument {bad} is not UTF-8 text", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    t = Translator(getattr(args, "sub_lang", None) or args.lang)
    commands = {
        "quote": _quote,
        "channels": _channels,
        "db": _db,
        "users": _users,
        "audit": _audit,
        "sandbox": _sandbox,
        "recover": _recover,
        "review": _review,
        "deny": _deny,
        "receipt": _receipt,
        "worker": _worker,
        "simulate": _simulate,
    }
    try:
        return commands[args.command](args, t)
    except PortalError as exc:
        print(f"error: {t.error(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {type(exc).__name__}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
