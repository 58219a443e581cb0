"""The SQLite database holds encrypted numbers, password hashes and the ledger: like the key
files beside it, it (and its WAL companions) is readable by its owner alone, whatever the umask."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat

import pytest
from sqlalchemy import text

from core.config import ConfigError
from core.i18n import Translator
from core.persistence import migrate
from core.persistence.db import engine_for


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """A permissive umask (new files 0664), as a shell or a container may hand the portal."""
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def test_a_new_database_file_and_its_wal_files_are_readable_by_the_owner_alone(tmp_path, open_umask):
    path = tmp_path / "var" / "portal.sqlite3"
    engine = engine_for(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine)
        with engine.begin() as connection:  # a write keeps the -wal and -shm files while connected
            connection.execute(text("CREATE TABLE probe (x INTEGER)"))
            companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)  # WAL is in use
            for companion in companions:
                assert mode(companion) == 0o600, companion.name
        assert mode(path) == 0o600
    finally:
        engine.dispose()


def existing_database(path, file_mode: int) -> sqlite3.Connection:
    """A database made by an earlier version (or by hand), still open in WAL mode so that its
    -wal and -shm files exist; all three get `file_mode`."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE earlier (x INTEGER)")
    connection.commit()
    for suffix in ("", "-wal", "-shm"):
        os.chmod(f"{path}{suffix}", file_mode)
    return connection


def test_an_existing_database_with_a_looser_mode_is_tightened_with_a_warning(tmp_path, caplog):
    path = tmp_path / "portal.sqlite3"
    earlier = existing_database(path, 0o644)
    try:
        with caplog.at_level(logging.WARNING, logger="core.persistence.db"):
            engine = engine_for(f"sqlite:///{path}")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM earlier")).scalar() == 0  # the same data
        engine.dispose()
        assert [mode(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")] == [0o600] * 3
    finally:
        earlier.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("0644" in w and "0600" in w for w in warnings)
    assert all(any(w.endswith(f"portal.sqlite3{suffix}") for w in warnings) for suffix in ("", "-wal", "-shm"))


def test_a_database_already_readable_by_the_owner_alone_is_opened_without_a_warning(tmp_path, caplog):
    path = tmp_path / "portal.sqlite3"
    existing_database(path, 0o600).close()
    with caplog.at_level(logging.WARNING, logger="core.persistence.db"):
        engine_for(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o600 and not caplog.records


def test_an_in_memory_database_creates_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = engine_for("sqlite:///:memory:")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_a_device_or_pipe_named_as_the_database_is_refused_before_anything_touches_it(tmp_path, caplog):
    """A mistyped DATABASE_URL (sqlite:////dev/zero) made the portal, run as root, take
    everyone's access to the device away, and SQLite then wrote its journal beside it. What is
    not a regular file is refused with a message, its mode and its folder as they were."""
    pipe = tmp_path / "portal.sqlite3"
    os.mkfifo(pipe, 0o644)
    os.chmod(pipe, 0o644)  # whatever the umask
    with caplog.at_level(logging.WARNING, logger="core.persistence.db"), pytest.raises(ConfigError) as refused:
        engine_for(f"sqlite:///{pipe}")
    assert refused.value.key == "error.config.database_not_a_file" and refused.value.params == {"path": str(pipe)}
    assert mode(pipe) == 0o644 and not caplog.records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["portal.sqlite3"]  # no journal beside it
    for t in (Translator("zh-CN"), Translator("en")):
        assert str(pipe) in t.error(refused.value)
