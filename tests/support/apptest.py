"""The portal's pages under Streamlit's AppTest, anonymous or signed in, through the menu, by
address or run alone; what a run shows; recoveries on the shared services for them to show."""

from __future__ import annotations

import secrets
import time
from unittest import mock

from streamlit.testing.v1 import AppTest, local_script_runner

from core.bootstrap import shared
from core.domain.access import Principal
from core.domain.recovery import RecoveryState
from core.services.recovery.views import RecoveryRequest, RecoveryView
from tests.support import ROOT
from tests.support.cli import verified_consumer
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
    return user_of(user_id, role)


def user_of(user_id: str, name: str = "consumer") -> dict:
    """`st.user` of a sign-in, just now, to the account `user_id` through the built-in provider."""
    issuer = shared().provider.issuer
    return {"is_logged_in": True, "sub": user_id, "auth_time": int(time.time()), "name": name, "iss": issuer}


def open_page(page: str, user: dict | None = None, **query: str) -> AppTest:
    """`page` (its file, from the repository's root) opened through the menu as `user` (None:
    anonymous) with `query` in its address, and run without an exception. The query is set after
    the first run, which lands on Compare and keeps only its own parameters in the address."""
    at = open_app(user=user)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun_fragments(at: AppTest) -> AppTest:
    """Run again only the fragments the last run drew, as a fragment's timer (`run_every`) or a
    widget inside it does in a browser: the frame (`streamlit_app.py`) does not run. (AppTest
    itself always runs the whole app; Streamlit keeps the fragments between runs.)"""
    fragments = list(at._fragment_storage._fragments)
    assert fragments, "the last run drew no fragment"
    whole_run = local_script_runner.RerunData

    def fragments_only(**data: object) -> object:
        return whole_run(fragment_id_queue=fragments, **data)

    with mock.patch.object(local_script_runner, "RerunData", fragments_only):
        return at.run()


def open_by_address(at: AppTest, url_path: str) -> AppTest:
    """Open the page registered under `url_path`, as a browser opening that address would: a page
    a role may not open is registered there as a notice, with no file for `switch_page`."""
    (page_hash,) = [h for h, info in at._registered_pages.items() if info.get("url_pathname") == url_path]
    at._page_hash = page_hash
    return at.run()


def run_alone(page_file: str) -> AppTest:
    """`page_file` (from the repository's root) run on its own, outside the menu and with nobody
    signed in: what its own guard lets through."""
    return AppTest.from_file(str(ROOT / page_file), default_timeout=60).run()


def shown(at: AppTest) -> str:
    """Every text the run put on the page, tables and choices included (not what the test typed)."""
    texts = [*at.markdown, *at.caption, *at.success, *at.error, *at.warning, *at.info, *at.code]
    parts = [str(e.value) for e in texts]
    parts += [d.value.to_string() for d in at.dataframe]
    parts += [" ".join(map(str, s.options)) for s in at.selectbox]
    return "\n".join(parts)


def submitted_recovery(amount_fen: int, *, prefix: str = "136") -> tuple[Principal, RecoveryView]:
    """A recovery of `amount_fen` to Alipay submitted on the shared services by a consumer whose
    account is a month old, for a new number starting `prefix` with that much balance."""
    svc = shared()
    phone = f"{prefix}{secrets.randbelow(10**8):08d}"
    who = verified_consumer(svc, phone)
    svc.partners.sandbox_carrier.balances[phone] = amount_fen
    svc.agreements.accept(who, svc.agreements.current().version)
    view = svc.recoveries.submit(
        who, f"key-{secrets.token_hex(6)}", RecoveryRequest("alipay", phone, amount_fen, "me@example.com")
    )
    return who, view


def recovery_in_review(amount_fen: int = 120_000) -> RecoveryView:
    """A consumer's recovery on the shared services that the amount rule sends to review (1,200
    CNY by default: above the four-eyes amount too)."""
    _, view = submitted_recovery(amount_fen)
    assert view.state is RecoveryState.REVIEW
    return view


def booked_recovery() -> None:
    """A 100 CNY recovery on the shared services, debited and paid out: entries in the ledger."""
    who, view = submitted_recovery(10_000, prefix="137")
    svc = shared()
    svc.worker().run_until_idle()
    assert svc.recoveries.get(who, view.id).state in (RecoveryState.PAYING, RecoveryState.PAID)
