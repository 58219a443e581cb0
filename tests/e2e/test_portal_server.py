"""The portal's own server (`streamlit run app.py`): the recovery worker runs inside it,
started with it, and partners' notifications reach it only with a valid signature."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest

from core.adapters.partners import notify_secret
from core.adapters.payouts import SIGNATURE_HEADER, sign
from core.bootstrap import build
from core.domain.recovery import RecoveryState
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.services.recovery.views import RecoveryRequest
from core.simulation.rig import add_verified_consumer
from tests.support.processes import running_portal


@pytest.mark.slow  # the portal's server with its worker, as a process
def test_the_embedded_worker_settles_a_recovery_and_notices_need_a_valid_signature(tmp_path, monkeypatch):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}", "PORTAL_SECRETS_FILE": str(tmp_path / "s.json")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    services = build(refresh=False)  # creates the database and the keys the server will share
    keys = services.keys
    phone = "13800138000"
    consumer = add_verified_consumer(
        services.engine, FieldCipher(keys.data_key), BlindIndex(keys.index_key, MOBILE_NUMBER), phone,
        dt.datetime.now(dt.UTC),
    )  # fmt: skip
    services.agreements.accept(consumer, services.agreements.current().version)
    request = RecoveryRequest("alipay", phone, 10_000, "13800138000")
    view = services.recoveries.submit(consumer, "server-key-0001", request)
    assert view.state is RecoveryState.DEBITING  # nothing in this test process works it
    with running_portal("app.py", **env) as url:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not services.recoveries.get(consumer, view.id).settled:
            time.sleep(0.3)
        assert services.recoveries.get(consumer, view.id).state is RecoveryState.PAID

        body = b'{"event_id": "e1", "reference": "rcv-00000000000000000000000000000000-p", "status": "paid"}'
        notify = f"{url}/partners/payouts/alipay/notify"
        forged = httpx.post(notify, content=body, headers={SIGNATURE_HEADER: sign(b"guess", body, int(time.time()))})
        assert forged.status_code == 401
        secret = notify_secret(keys, {}, "alipay")
        genuine = httpx.post(notify, content=body, headers={SIGNATURE_HEADER: sign(secret, body, int(time.time()))})
        assert genuine.status_code == 400  # signed, but it names no payout of ours (and no amount)
        assert httpx.post(f"{url}/partners/payouts/nope/notify", content=body).status_code == 404
