"""Bytes that are not UTF-8, in a command-line argument or in a password on standard input, are
bad input like any other: exit 2, one line on stderr, no traceback (and the bytes are not echoed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test starts `python -m core` (about a second each)

ROOT = Path(__file__).resolve().parents[2]
BAD = b"\xff\xfe"
GOOD_PASSWORD = b"correct horse battery staple"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        "PORTAL_SECRETS_FILE": str(tmp_path / "secrets.json"),
    }


def core(env: dict[str, str], *args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "--lang", "en", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def assert_one_line_refusal(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.decode("utf-8", errors="replace")
    assert done.returncode == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert BAD not in done.stderr and b"\\udcff" not in done.stderr and b"\\xff" not in done.stderr
    assert done.stdout == b""
    return err


@pytest.fixture
def with_operator(env) -> dict[str, str]:
    done = core(env, "users", "create", "--role", "operator", "--username", "ops.li", stdin=GOOD_PASSWORD + b"\n")
    assert done.returncode == 0, done.stderr
    return env


@pytest.mark.parametrize(
    "args",
    [
        ["deny", "add", "--as", BAD, "--kind", "number", "--value", "13900139000", "--reason", "stolen"],
        ["deny", "add", "--as", "ops.li", "--kind", "number", "--value", b"139" + BAD, "--reason", "stolen"],
        ["deny", "add", "--as", "ops.li", "--kind", "payee", "--value", "x", "--reason", b"r" + BAD],
        ["review", "list", "--as", b"ops" + BAD],
        ["review", "approve", b"id" + BAD, "--as", "ops.li", "--reason", "ok"],
        ["users", "totp", "--username", BAD],
        ["recover", "status", BAD, "--as-phone", "13800138000"],
        ["quote", "--balance", "100", "--phone", BAD],
        [b"--lang" + BAD, "channels"],
    ],
    ids=["deny_as", "deny_value", "deny_reason", "review_as", "review_id", "totp_user", "recover_id", "phone", "flag"],
)
def test_an_argument_that_is_not_utf8_exits_2_with_one_line(with_operator, args):
    err = assert_one_line_refusal(core(with_operator, *args))
    assert "UTF-8" in err


def test_a_password_on_standard_input_that_is_not_utf8_exits_2_with_one_line(env):
    done = core(env, "users", "create", "--role", "operator", "--username", "ops.li", stdin=b"correct " + BAD + b"\n")
    err = assert_one_line_refusal(done)
    assert "UTF-8" in err
    # nothing was created: the same name is still free for a good password
    again = core(env, "users", "create", "--role", "operator", "--username", "ops.li", stdin=GOOD_PASSWORD + b"\n")
    assert again.returncode == 0, again.stderr


def test_a_password_that_is_valid_utf8_chinese_is_still_accepted(env):
    done = core(
        env, "users", "create", "--role", "operator", "--username", "ops.wang", stdin="话费余额回收门户的口令".encode()
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["reconcile", "--as", "ops.li", "--partner", "alipay", "--statement", "/dev/zero"],
        ["pricing", "draft", "--as", "ops.li", "--file", "/dev/zero"],
        ["receipt", "verify", "/dev/zero"],
        ["receipt", "verify", "{receipt}", "--jwks", "/dev/zero"],
    ],
    ids=["statement", "pricing_document", "receipt", "key_set"],
)
def test_a_file_without_end_is_refused_after_its_limit_not_read_forever(with_operator, tmp_path, args):
    """A device or a pipe says it holds nothing and never ends: the command reads one byte past
    its limit and refuses (it read /dev/zero until memory ran out)."""
    receipt = tmp_path / "r.jws"
    receipt.write_text("a.b.c")
    args = [str(receipt) if a == "{receipt}" else a for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "core", "--lang", "en", *args],
        cwd=ROOT, env=with_operator, capture_output=True, timeout=60,
    )  # fmt: skip
    err = done.stderr.decode("utf-8", errors="replace")
    assert done.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("database", "args"),
    [
        ("postgresql://postgres@127.0.0.1:1/nowhere", ["review", "list", "--as", "ops.li"]),
        ("sqlite:////dev/zero", ["review", "list", "--as", "ops.li"]),
        (None, ["pricing", "show", "9223372036854775808"]),
    ],
    ids=["unreachable", "not_a_database", "number_beyond_the_column"],
)
def test_a_database_that_cannot_answer_or_a_number_it_cannot_hold_is_one_line_not_a_traceback(env, database, args):
    done = core({**env, "DATABASE_URL": database} if database else env, *args)
    err = done.stderr.decode("utf-8", errors="replace")
    assert done.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "SELECT" not in err and "postgres@" not in err  # no SQL, no address with its user
