"""The command-line contract other tools rely on: `python -m core quote|channels`."""

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.cli._shared import open_output

pytestmark = pytest.mark.slow  # every test starts `python -m core` (about a second each)

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {
    "channel",
    "name",
    "eligible",
    "reason",
    "recoverable_fen",
    "transactions",
    "fee_fen",
    "hidden_cost_fen",
    "net_fen",
    "effective_rate",
    "payout_form",
    "eta_earliest",
    "eta_latest",
    "eta_estimated",
    "as_of",
    "rank",
}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_quote_json_lists_every_channel_with_the_contract_fields():
    done = run(
        "quote",
        "--balance",
        "1200",
        "--phone",
        "13800138000",
        "--credit-limit",
        "10000",
        "--at",
        "2026-09-30T15:00:00+08:00",
        "--snapshot",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 7
    by_id = {r["channel"]: r for r in rows}
    for row in rows:
        assert set(row) >= FIELDS
        if row["eligible"]:
            assert row["fee_fen"] + row["hidden_cost_fen"] + row["net_fen"] == row["recoverable_fen"]
            assert isinstance(row["rank"], int) and row["reason"] is None
        else:
            assert row["rank"] is None and row["reason"]
    assert [r["rank"] for r in rows if r["eligible"]] == [1, 2, 3, 4, 5]
    alipay = by_id["alipay"]
    assert (alipay["transactions"], alipay["fee_fen"], alipay["net_fen"]) == (3, 3300, 116700)
    # 15:00 on 30 Sep is past the bank's cut-off and National Day follows: T = 8 Oct, T+1 = 9 Oct
    assert by_id["icbc_e_mall"]["eta_latest"] == "2026-10-09"
    assert by_id["china_mobile_app"]["eta_earliest"] == "2026-10-10"  # the make-up Saturday counts
    assert by_id["china_unicom_app"]["eligible"] is False
    assert "13800138000" not in done.stdout + done.stderr


def test_quote_flags_an_eta_in_an_unpublished_year_as_an_estimate():
    done = run(
        "quote",
        "--balance",
        "300",
        "--carrier",
        "china_telecom",
        "--at",
        "2026-12-29T10:00:00+08:00",
        "--snapshot",
        "--json",
    )
    app = next(r for r in json.loads(done.stdout) if r["channel"] == "china_telecom_app")
    assert app["eta_latest"].startswith("2027-") and app["eta_estimated"] is True


def test_quote_without_json_prints_a_readable_table():
    done = run("--lang", "en", "quote", "--balance", "200", "--carrier", "china_mobile", "--snapshot")
    assert done.returncode == 0
    assert "Alipay" in done.stdout and "¥" in done.stdout and "leaves you the most" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["quote", "--balance", "-5", "--carrier", "china_mobile"],
        ["quote", "--balance", "1e5", "--carrier", "china_mobile"],
        ["quote", "--balance", "NaN", "--carrier", "china_mobile"],
        ["quote", "--balance", "12.345", "--carrier", "china_mobile"],
        ["quote", "--balance", "100", "--carrier", "vodafone"],
        ["quote", "--balance", "100", "--phone", "12345"],
        ["quote", "--balance", "100"],
        ["quote", "--balance", "100", "--carrier", "china_mobile", "--voucher-value", "1.5"],
        ["quote", "--balance", "100", "--carrier", "china_mobile", "--at", "yesterday"],
        ["quote"],
        ["nonsense"],
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(args):
    done = run("--lang", "en", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


def test_channels_lists_the_catalog():
    done = run("channels", "--json")
    assert {r["channel"] for r in json.loads(done.stdout)} >= {"alipay", "icbc_e_mall"}


@pytest.mark.parametrize(
    "args",
    [
        ["quote", "--balance", "100", "--carrier", "china_mobile", "--at", "9999-12-31T23:00:00+08:00"],
        ["quote", "--balance", "100", "--carrier", "china_mobile", "--at", "0001-01-01T00:00:00+14:00"],
        ["quote", "--balance", "100", "--carrier", "china_mobile", "--voucher-value", "0.0000004"],
        ["sandbox", "--port", "70000"],
    ],
)
def test_edge_values_exit_2_without_a_traceback(args):
    done = run("--lang", "en", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_broken_catalog_is_reported_naming_the_file_and_the_field(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    catalog = json.loads((data / "channels.json").read_text(encoding="utf-8"))
    catalog["channels"][0]["fee"]["tiers"][0]["rate"] = "0.5%"
    (data / "channels.json").write_text(json.dumps(catalog), encoding="utf-8")
    env = {**__import__("os").environ, "PORTAL_DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "-m", "core", "channels", "--snapshot"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert str(data / "channels.json") in done.stderr and "channels[0].fee.tiers[0].rate" in done.stderr


def test_a_bad_setting_is_reported_naming_the_variable():
    env = {**__import__("os").environ, "TERMS_FEED_TIMEOUT_S": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "core", "channels"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "TERMS_FEED_TIMEOUT_S" in done.stderr


def test_staff_accounts_are_created_with_the_password_from_standard_input(tmp_path):
    import os

    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        "PORTAL_SECRETS_FILE": str(tmp_path / "secrets.json"),
    }
    upgrade = subprocess.run(
        [sys.executable, "-m", "core", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    from core.persistence.migrate import head

    assert upgrade.returncode == 0 and f"schema at {head()} (head {head()})" in upgrade.stdout
    create = [
        sys.executable,
        "-m",
        "core",
        "--lang",
        "en",
        "users",
        "create",
        "--role",
        "operator",
        "--username",
        "ops.li",
    ]
    done = subprocess.run(
        create, cwd=ROOT, env=env, input="correct horse battery staple\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "correct horse" not in done.stdout + done.stderr
    weak = subprocess.run(
        [*create[:-1], "ops.wang"], cwd=ROOT, env=env, input="password\n", capture_output=True, text=True, timeout=60
    )
    assert weak.returncode == 2 and "too common" in weak.stderr
    again = subprocess.run(
        create, cwd=ROOT, env=env, input="another good passphrase\n", capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and "taken" in again.stderr


def test_a_staff_second_factor_is_set_up_from_the_command_line(tmp_path):
    import os

    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        "PORTAL_SECRETS_FILE": str(tmp_path / "secrets.json"),
    }
    base = [sys.executable, "-m", "core", "--lang", "en", "users"]
    created = subprocess.run(
        [*base, "create", "--role", "admin", "--username", "root.admin"],
        cwd=ROOT,
        env=env,
        input="correct horse battery staple\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    first = subprocess.run(
        [*base, "totp", "--username", "root.admin"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0 and "TOTP secret" in first.stdout
    again = subprocess.run(
        [*base, "totp", "--username", "root.admin"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and "already" in again.stderr
    nobody = subprocess.run(
        [*base, "totp", "--username", "nobody"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert nobody.returncode == 2 and "Traceback" not in nobody.stderr


def test_a_file_the_command_line_writes_is_readable_by_its_owner_alone_even_one_that_was_there(tmp_path):
    fresh, earlier = tmp_path / "new.csv", tmp_path / "earlier.csv"
    earlier.write_text("old")
    os.chmod(earlier, 0o644)
    for path in (fresh, earlier):
        with open_output(str(path)) as out:
            out.write("x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "x"


def test_a_pipe_the_command_line_writes_to_keeps_its_mode(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    os.chmod(pipe, 0o644)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()))
    reader.start()
    with open_output(str(pipe)) as out:
        out.write("through")
    reader.join(timeout=10)
    assert got == [b"through"] and stat.S_IMODE(pipe.stat().st_mode) == 0o644
