"""Pieces of the Recover and My recoveries pages: how a number check, a locked quote, a
recovery's timeline and a receipt look. Rendering only; every decision is a service call."""

from __future__ import annotations

import ipaddress
from collections.abc import MutableMapping
from typing import Any

import pandas as pd
import streamlit as st

from core.domain.quotes import Comparison
from core.domain.recovery import RecoveryState
from core.errors import PortalError
from core.i18n import Translator
from core.money import format_fen
from core.services.identity import IdentityService, Principal
from core.services.journey import Expected, LockedQuote, NumberCheck, QuoteChange, quote_for
from core.services.receipts import VerifiedReceipt
from core.services.recovery import RecoveryService, RecoveryView, Step
from pages._ui import views
from pages._ui.frame import local_time
from pages._ui.state import services

MONEY_FIELDS = ("amount_fen", "fee_fen", "net_fen")


def forget(state: MutableMapping[str, Any], *keys: str) -> None:
    for key in keys:
        state.pop(key, None)


def device(context: Any) -> str:
    """The device as the risk rules see it: the address's network (/24, /64) and the browser's
    user agent. The service keeps only a keyed hash of this."""
    address = str(getattr(context, "ip_address", "") or "")
    try:
        ip = ipaddress.ip_address(address)
        network = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False)
        address = str(network)
    except ValueError:
        address = ""
    agent = str((getattr(context, "headers", None) or {}).get("User-Agent", ""))[:200]
    return f"{address}|{agent}" if address or agent else ""


def client_address() -> str:
    return str(getattr(st.context, "ip_address", "") or "")


def verify_new_number(identity: IdentityService, who: Principal, t: Translator) -> None:
    """Add a number to the account: a code to it, then the code back."""
    with st.expander(t("recover.add_number"), icon=":material/add_call:"):
        phone = st.text_input(t("recover.new_number"), key="rc_new_phone", max_chars=20)
        if st.button(t("recover.send_code"), key="rc_send_code"):
            try:
                masked = identity.request_code(phone, client_address())
                st.session_state["rc_code_sent"] = True
                st.success(t("recover.code_sent", number=masked), icon=":material/sms:")
            except PortalError as error:
                st.error(t.error(error), icon=":material/error:")
        code = st.text_input(t("recover.code"), key="rc_new_code", max_chars=10)
        if st.button(t("recover.verify_number"), key="rc_verify_number"):
            try:
                masked = identity.add_number(who, phone, code, client_address())
            except PortalError as error:
                st.error(t.error(error), icon=":material/error:")
            else:
                forget(st.session_state, "rc_new_phone", "rc_new_code", "rc_code_sent")
                st.toast(t("recover.number_added", number=masked), icon=":material/task_alt:")
                st.rerun()


def number_summary(check: NumberCheck, t: Translator) -> None:
    carrier = check.current_carrier.value  # the translator names carriers
    text = t("recover.number_checked", number=check.masked, carrier=carrier, balance=format_fen(check.balance_fen))
    if check.ported:
        text += " " + t("recover.ported", allocated=t(f"carrier.{check.allocated_carrier.value}"), carrier=carrier)
    if not check.active:
        st.warning(text, icon=":material/signal_disconnected:")
    else:
        st.info(text, icon=":material/sim_card:")


def quote_table(comparison: Comparison, t: Translator) -> None:
    frame = views.comparison_table(comparison, t, services().quotes.terms())
    st.dataframe(
        views.grey_out_ineligible(frame, comparison),
        hide_index=True,
        column_config=views.column_widths(t),
        width="stretch",
    )


def channel_choice(comparison: Comparison, channel_id: str, t: Translator) -> str:
    quote = quote_for(comparison, channel_id)
    assert quote is not None  # the choices are this comparison's channels
    return t(
        "recover.choice",
        channel=quote.channel.display_name(t.language),
        net=format_fen(quote.net_fen),
        eta=views.eta_text(quote, t),
    )


def locked_quote(lock: LockedQuote, changes: list[QuoteChange], now: Any, t: Translator) -> None:
    left = lock.seconds_left(now)
    lines = [
        t(
            "recover.locked",
            net=format_fen(lock.net_fen),
            amount=format_fen(lock.amount_fen),
            fee=format_fen(lock.fee_fen),
            count=lock.transactions,
        ),
        t("recover.lock_until", time=local_time(lock.expires_at), minutes=left // 60, seconds=left % 60),
    ]
    if lock.eta_latest is not None:
        lines.append(t("recover.lock_eta", date=lock.eta_latest.isoformat()))
    st.success("  \n".join(lines), icon=":material/lock:")
    if changes:
        described = [
            t(
                f"recover.changed.{c.field}",
                before=format_fen(int(c.before)) if c.field in MONEY_FIELDS else c.before,
                after=format_fen(int(c.after)) if c.field in MONEY_FIELDS else c.after,
            )
            for c in changes
        ]
        st.warning(t("recover.requoted_changes") + "  \n" + "  \n".join(described), icon=":material/update:")


def submitted(recoveries: RecoveryService | None, who: Principal, group_id: str, t: Translator) -> None:
    if recoveries is None:
        return
    view = recoveries.get(who, group_id)
    if view.state is RecoveryState.REVIEW:
        st.warning(t("recover.in_review"), icon=":material/policy:")
    elif view.state is RecoveryState.REJECTED:
        st.error(t("recover.rejected", reasons=risk_reasons(view, t)), icon=":material/block:")
    else:
        st.success(t("recover.submitted", count=len(view.parts)), icon=":material/task_alt:")
    st.page_link("pages/my_recoveries.py", label=t("recover.follow"), icon=":material/timeline:")


def risk_reasons(view: RecoveryView, t: Translator) -> str:
    if view.risk is None:
        return ""

    def shown(name: str, value: object) -> object:
        return t(f"carrier.{value}") if name in ("quoted", "current", "allocated") else value

    return "; ".join(t(r.key, **{k: shown(k, v) for k, v in r.params.items()}) for r in view.risk.reasons)


def status_line(view: RecoveryView, expected: Expected | None, t: Translator) -> str:
    parts = [
        t("mine.status", state=t(f"state.{view.state.value}")),
        t(
            "mine.amounts",
            amount=format_fen(view.amount_fen),
            fee=format_fen(view.fee_fen),
            net=format_fen(view.payout_fen),
        ),
    ]
    if expected is not None and view.state is not RecoveryState.PAID:
        first, last = t.date(expected.earliest), t.date(expected.latest)
        window = first if first == last else t("eta.range", first=first, last=last)
        parts.append(t("mine.expected", window=window + (" *" if expected.estimated else "")))
    return "  \n".join(parts)


def timeline(steps: list[Step], parts: int, t: Translator) -> pd.DataFrame:
    rows = [
        {
            t("mine.col.time"): local_time(step.at),
            **({t("mine.col.part"): f"{step.part}/{parts}"} if parts > 1 else {}),
            t("mine.col.step"): t(f"event.{step.event.value}"),
            t("mine.col.state"): t(f"state.{step.state.value}"),
            t("mine.col.by"): t(f"by.{step.by}"),
        }
        for step in steps
    ]
    return pd.DataFrame(rows)


def receipt_summary(receipt: VerifiedReceipt, t: Translator) -> str:
    recovery = receipt.recovery
    return t(
        "receipt.valid",
        id=str(recovery.get("id", "")),
        state=t(f"state.{recovery.get('state', 'created')}"),
        amount=format_fen(int(recovery.get("payout_fen", 0))),
        issuer=receipt.issuer,
    )
