"""The portal's pages under Streamlit's AppTest, anonymous or signed in."""

from __future__ import annotations

import datetime as dt
import secrets
import time

from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from core.domain.recovery import RecoveryState
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.services.recovery.views import RecoveryRequest, RecoveryView
from core.simulation.rig import add_verified_consumer
from tests.support import ROOT
from tests.support.people import last_code

APP = str(ROOT / "streamlit_app.py")


def open_app(*, user: dict | None = None, **query: str) -> AppTest:
    """The portal's first run, as `user` (from `signed_in_as`; None: anonymous), with `query` in
    its address."""
    at = AppTest.from_file(APP, default_timeout=60)
    if user is not None:
        at.user = user
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def signed_in_as(role: str) -> dict:
    """`st.user` of a new account of `role` on the shared services (a consumer signs up by SMS)."""
    identity = shared().identity
    if role == "consumer":
        sms = shared().sandbox_sms
        phone = f"139{int(time.time() * 1000) % 10**8:08d}"
        identity.request_code(phone, f"10.1.{len(sms.sent)}.1")
        user_id = identity.verify_code(phone, last_code(sms), "10.1.0.1").user_id
    else:
        user_id = identity.create_staff(role, f"{role}{int(time.time() * 1e6) % 10**9}", "correct horse battery staple")
    issuer = shared().provider.issuer
    return {"is_logged_in": True, "sub": user_id, "auth_time": int(time.time()), "name": role, "iss": issuer}


def recovery_in_review(amount_fen: int = 120_000) -> RecoveryView:
    """A consumer's recovery on the shared services that the amount rule sends to review (1,200
    CNY by default: above the four-eyes amount too), from an account a month old."""
    svc = shared()
    phone = f"136{secrets.randbelow(10**8):08d}"
    keys = svc.keys
    who = add_verified_consumer(
        svc.engine,
        FieldCipher(keys.data_key),
        BlindIndex(keys.index_key, MOBILE_NUMBER),
        phone,
        dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
    )
    svc.partners.sandbox_carrier.balances[phone] = amount_fen
    svc.agreements.accept(who, svc.agreements.current().version)
    view = svc.recoveries.submit(
        who, f"key-{secrets.token_hex(6)}", RecoveryRequest("alipay", phone, amount_fen, "me@example.com")
    )
    assert view.state is RecoveryState.REVIEW
    return view
