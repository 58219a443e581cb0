"""What several command groups share: the services, narrowing them, the acting account, output.

Deferred imports. `python -m core --help` imports every command group, so a group imports at its
top only what its parser and output need. What a command needs only once it runs is imported
there, each time with a comment pointing here: core.bootstrap above all (it loads every service,
SQLAlchemy, Authlib and httpx: most of a second), the services' modules behind it, and a few
light ones (core.config, core.domain.access and .reasons, getpass, signal, threading: about 14 ms
together, a quarter of what `--help` takes). The service types are imported for mypy only
(TYPE_CHECKING).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import stat
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from core.i18n import Translator

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.bootstrap import Quoting, Services
    from core.domain.access import Principal
    from core.domain.recovery import Outcome
    from core.services.recovery.views import RecoveryView

Parser: TypeAlias = argparse.ArgumentParser


def day(text: str) -> dt.date:
    """A date argument (--from, --to, --date, --at): an ISO date (YYYY-MM-DD), an Asia/Shanghai
    business day."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def read_at_most(path: Path, most: int) -> bytes | None:
    """The file's bytes, or None when it holds more than `most` (read no further than one byte
    past: a device or a pipe says it holds nothing and never ends, /dev/zero among them)."""
    with path.open("rb") as file:
        data = file.read(most + 1)
    return None if len(data) > most else data


def open_output(path: str) -> TextIO:
    """The file a command writes (books, a filing), opened before the work is done and recorded:
    a folder, a missing directory or a file it may not write is refused first, and nothing is
    audited as exported. Readable by its owner only, as the portal's own files are: a file that
    was there before is made so too (a device or a pipe, e.g. /dev/stdout, is left as it is)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    found = os.fstat(descriptor)
    if stat.S_ISREG(found.st_mode) and found.st_mode & 0o077:
        os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "w", encoding="utf-8")


def width(text: str) -> int:
    """Columns a terminal gives the text (Chinese characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table_line(cells: list[str], first: int = 20, other: int = 16) -> str:
    """The first cell left-aligned, the others right-aligned, in columns of terminal width."""
    head, *rest = cells
    return head + " " * max(first - width(head), 1) + "".join(" " * max(other - width(c), 1) + c for c in rest)


#: What `register(commands)` adds its parsers to.
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"
#: What `set_defaults(run=...)` names: the command, given the parsed arguments and the language.
Run: TypeAlias = Callable[[argparse.Namespace, Translator], int]


def services(*, refresh: bool) -> Services:
    """The portal's services as the server builds them (`refresh`: ask the live terms feed)."""
    from core.bootstrap import build  # deferred: see the module's docstring

    return build(refresh=refresh)


def quoting(*, refresh: bool) -> Quoting:
    """The quote service alone (no database, no keys): what `quote` and `channels` need."""
    from core.bootstrap import build_quoting  # deferred: see the module's docstring

    return build_quoting(refresh=refresh)


def database() -> Engine:
    """The configured database as it is, without building the services or migrating it."""
    from core.config import Settings  # deferred: see the module's docstring
    from core.persistence.db import engine_for

    return engine_for(Settings.from_env().database_url)


def operator(built: Services, username: str) -> Principal:
    """The operator or admin acting on the command line (whoever runs it holds the server's keys)."""
    return _acting(built, username, staff_only=False)


def staff(built: Services, username: str) -> Principal:
    """Like `operator`, for what every staff role may do (analysts read metrics too)."""
    return _acting(built, username, staff_only=True)


def _acting(built: Services, username: str, *, staff_only: bool) -> Principal:
    from core.domain.access import OPERATORS, STAFF, NotAllowed, Principal, Role  # deferred: see the docstring

    identity = built.identity
    user_id = identity.staff_id(username)
    role = identity.acting_role(user_id)  # a disabled or erased account acts no more
    if role is None or role not in (STAFF if staff_only else OPERATORS):
        key, what = ("error.ops.not_staff", "staff") if staff_only else ("error.review.not_operator", "an operator")
        raise NotAllowed(f"{username} is not {what}", key=key)
    return Principal(user_id, Role(role))


def operator_actions(
    commands: Commands, group: str, help: str, runs: Mapping[str, Run], about: str
) -> dict[str, Parser]:
    """`GROUP ACTION --as NAME ...`: subcommands an operator runs, each named in `runs` with the
    function that runs it and helped as "ACTION " + `about`; their parsers are returned for the
    rest of their arguments."""
    actions = commands.add_parser(group, help=help).add_subparsers(dest="action", required=True)
    added = {}
    for name, run in runs.items():
        added[name] = actions.add_parser(name, help=f"{name} {about}")
        added[name].add_argument("--as", dest="operator", required=True, help="the operator's user name")
        added[name].set_defaults(run=run)
    return added


def sandbox_lease(built: Services) -> contextlib.AbstractContextManager[object]:
    """The in-process sandbox partners' lease for this command, or nothing to hold: refused
    (LeaseHeld) while another process runs its own in-process sandbox on this database."""
    lease = built.sandbox_lease()
    return lease if lease is not None else contextlib.nullcontext()


def not_text(values: Sequence[str]) -> int | None:
    """The position (1-based) of the first value that is not UTF-8 text, or None.

    Python hands bytes it cannot decode to us as lone surrogates ("surrogateescape"); they
    cannot be stored, compared with a database value or printed, so they are refused once,
    at the edge, before any command sees them."""
    for position, value in enumerate(values, start=1):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return position
    return None


def recovery_row(view: RecoveryView) -> dict[str, Any]:
    """A recovery as `--json` prints it (other tools rely on these fields)."""
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


def print_outcome(outcome: Outcome, t: Translator, prefix: str) -> None:
    """What happened to the money, one line per kind of result, in the reader's language."""
    from core.domain.reasons import describe_outcome  # deferred: see the module's docstring

    for line in describe_outcome(outcome):
        print(prefix + t.reason(line))
