"""`db upgrade|current`: the database schema (PostgreSQL is migrated on purpose; SQLite on start)."""

from __future__ import annotations

import argparse

from core.cli._shared import Commands, database
from core.i18n import Translator


def register(commands: Commands) -> None:
    db = commands.add_parser("db", help="the database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(run=run)


def run(args: argparse.Namespace, t: Translator) -> int:
    from core.persistence import migrate  # deferred: Alembic and SQLAlchemy (see core/cli/_shared.py)

    engine = database()
    if args.action == "upgrade":
        migrate.upgrade(engine)
    print(f"schema at {migrate.current(engine)} (head {migrate.head()})")
    return 0
