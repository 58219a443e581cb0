"""The portal's pages under Streamlit's AppTest, anonymous or signed in."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
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
