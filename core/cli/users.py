"""`users create|totp`: staff accounts; the password is read from standard input, never from an argument."""

from __future__ import annotations

import argparse
import sys

from core.cli._shared import Commands, not_text, services
from core.errors import InputError
from core.i18n import Translator

MAX_PASSWORD_LINE = 4096  # far past any password's length limit; the rest of the line is not read
TOTP_NOTE = "add it to an authenticator app now; it is not shown again"


def register(commands: Commands) -> None:
    users = commands.add_parser("users", help="staff accounts (the password is read from standard input)")
    actions = users.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a staff account")
    create.add_argument("--role", required=True, choices=["analyst", "operator", "admin"])
    create.add_argument("--username", required=True)
    create.add_argument("--phone", default=None, help="a mainland mobile number for the account (stored encrypted)")
    create.add_argument("--totp", action="store_true", help="also set up a TOTP second factor and print its secret")
    create.set_defaults(run=run_create)
    totp = actions.add_parser("totp", help="set up (or with --replace, reset) a staff account's second factor")
    totp.add_argument("--username", required=True)
    totp.add_argument("--replace", action="store_true", help="replace an existing second factor")
    totp.set_defaults(run=run_totp)


def run_create(args: argparse.Namespace, t: Translator) -> int:
    identity = services(refresh=False).identity
    user_id = identity.create_staff(args.role, args.username, read_password(), phone=args.phone)
    print(f"created {args.role} {args.username} ({user_id})")
    if args.totp:
        print(f"TOTP secret ({TOTP_NOTE}): {identity.enable_totp(user_id)}")
    return 0


def run_totp(args: argparse.Namespace, t: Translator) -> int:
    identity = services(refresh=False).identity
    user_id = identity.staff_id(args.username)
    secret = identity.enable_totp(user_id, replace=args.replace)
    print(f"TOTP secret for {args.username} ({TOTP_NOTE}): {secret}")
    return 0


def read_password() -> str:
    """From standard input, never from an argument (arguments show in process lists and history)."""
    if sys.stdin.isatty():
        import getpass  # deferred: only a terminal needs it (see core/cli/_shared.py)

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
            password = line.decode("utf-8").rstrip("\r\n")  # the line's end, a Windows one too
        except UnicodeDecodeError:
            raise _password_not_text() from None
    if not_text([password]) is not None:
        raise _password_not_text()
    return password


def _password_not_text() -> InputError:
    return InputError("the password is not UTF-8 text", key="error.password.encoding")
