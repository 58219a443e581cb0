"""The command line's own portal in a test: a fresh SQLite file and secrets under the test's
directory, consumers who have verified their number, and `python -m core` run in-process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.bootstrap import Services, build
from core.cli import main
from core.domain.access import Principal
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.simulation.rig import add_verified_consumer


def cli_services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Services:
    """The services every command the test runs will build: DATABASE_URL is a fresh SQLite file
    and PORTAL_SECRETS_FILE a secrets file, both under `tmp_path` (the sandbox partners keep their
    books beside them)."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("PORTAL_SECRETS_FILE", str(tmp_path / "secrets.json"))
    return build(refresh=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`python -m core *argv` in-process: its exit code, what it printed and what it complained."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def verified_consumer(services: Services, phone: str, age: dt.timedelta = dt.timedelta(days=30)) -> Principal:
    """A consumer on `services` who has verified `phone`, with an account `age` old (a month by
    default: old enough that the risk rules do not hold it for being new)."""
    keys = services.keys
    return add_verified_consumer(
        services.engine,
        FieldCipher(keys.data_key),
        BlindIndex(keys.index_key, MOBILE_NUMBER),
        phone,
        dt.datetime.now(dt.UTC) - age,
    )
