"""Pieces of the Recover and My recoveries pages: how a number check, a locked quote, a
recovery's timeline and a receipt look. Rendering only; every decision is a service call."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pandas as pd
import streamlit as st

from core.domain.access import Principal
from core.domain.device import client_key, device_descriptor
from core.domain.quotes import Comparison
from core.domain.reasons import describe_outcome
from core.domain.recovery import Outcome, RecoveryState
from core.errors import PortalError
from core.i18n import Translator, local_time
from core.money import format_fen
from core.services.identity import IdentityService
from core.services.journey import Expected, JourneyService, LockedQuote, NumberCheck, QuoteChange, quote_for
from core.services.receipts import VerifiedReceipt, receipt_outcome
from core.services.recovery import RecoveryService
from core.services.recovery.views import RecoveryView, Step
from pages._ui import compare_view, quote_tables
from pages._ui.auth import still_signed_in
from pages._ui.plain_text import plain
from pages._ui.session import services

MONEY_FIELDS = ("amount_fen", "fee_fen", "net_fen")
STATES = frozenset(state.value for state in RecoveryState)


def forget(state: MutableMapping[str, Any], *keys: str) -> None:
    for key in keys:
        state.pop(key, None)


def device(context: Any) -> str:
    """The device as the risk rules see it (`core.domain.device.device_descriptor`)."""
    headers = getattr(context, "headers", None) or {}
    return device_descriptor(str(getattr(context, "ip_address", "") or ""), str(headers.get("User-Agent", "")))


URL_NUMBER, URL_QUOTE = "number_id", "quote_id"  # ids of the caller's own rows, never a number


def remember_in_url(*, number_id: str | None = None, lock_id: str | None = None) -> None:
    """Keep the Recover page's step in the address bar, so a reload or Back returns to it."""
    for key, value in ((URL_NUMBER, number_id), (URL_QUOTE, lock_id)):
        if value:
            st.query_params[key] = value
        elif key in st.query_params:
            del st.query_params[key]


def restore_from_url(journey: JourneyService, who: Principal, t: Translator) -> None:
    """On a tab's first run, pick up the step the address bar names: the number (checked with
    the carrier again) and the locked quote, both looked up as the caller's own (the quote locked
    for that number). Anything that does not check out is dropped from the address bar, silently,
    as share links are."""
    state = st.session_state
    if state.get("_rc_url_read"):
        return
    state["_rc_url_read"] = True
    number_id, lock_id = st.query_params.get(URL_NUMBER), st.query_params.get(URL_QUOTE)
    if not number_id or len(number_id) > 36:
        remember_in_url()
        return
    try:
        check = journey.check_number(who, number_id)
    except PortalError:
        remember_in_url()
        return
    try:  # a quote not the caller's, or locked for another of their numbers, is dropped alone
        lock = journey.locked(who, lock_id, number_id) if lock_id and len(lock_id) <= 36 else None
    except PortalError:
        lock = None
    state["rc_number"], state["rc_check"] = number_id, check
    if lock is not None:
        state["rc_lock"], state["rc_channel"] = lock, lock.channel_id
    remember_in_url(number_id=number_id, lock_id=lock.id if lock is not None else None)


def client_address() -> str:
    """The address the sign-in throttles count by (`core.domain.device.client_key`)."""
    return client_key(str(getattr(st.context, "ip_address", "") or "unknown"))


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
    if check.committed_fen:
        held = []
        if check.in_review_fen:
            held.append(t("recover.committed.review", amount=format_fen(check.in_review_fen)))
        if check.in_progress_fen:
            held.append(t("recover.committed.progress", amount=format_fen(check.in_progress_fen)))
        text += " " + t(
            "recover.committed",
            committed=format_fen(check.committed_fen),
            detail=t.list(held),
            available=format_fen(check.available_fen),
        )
    if not check.active:
        st.warning(text, icon=":material/signal_disconnected:")
    else:
        st.info(text, icon=":material/sim_card:")


def quote_table(comparison: Comparison, t: Translator) -> None:
    """The same ranked view as Compare: the deciding columns on a laptop, cards on a phone."""
    compare_view.ranked(comparison, services().quotes.terms(), t)


def channel_choice(comparison: Comparison, channel_id: str, t: Translator) -> str:
    quote = quote_for(comparison, channel_id)
    assert quote is not None  # the choices are this comparison's channels
    return t(
        "recover.choice",
        channel=plain(quote.channel.display_name(t.language)),  # a radio's label is Markdown
        net=format_fen(quote.net_fen),
        eta=quote_tables.eta_text(quote, t),
    )


def locked_quote(lock: LockedQuote, changes: list[QuoteChange] | None, now: Any, t: Translator) -> None:
    """The locked quote; with `changes`, what renewing it changed (an empty list: nothing)."""
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
    elif changes is not None:
        st.info(t("recover.renewed_same"), icon=":material/update:")


def submitted(recoveries: RecoveryService, who: Principal, group_id: str, t: Translator) -> None:
    """The recovery a locked quote made, as it stands now (it may have ended since: paid,
    cancelled, failed or refunded), with what happened to the money once it has."""
    view = recoveries.get(who, group_id)
    state = t(f"state.{view.state.value}")
    if view.state is RecoveryState.REVIEW:
        st.warning(t("recover.in_review"), icon=":material/policy:")
    elif view.state is RecoveryState.REJECTED:
        st.error(t("recover.rejected", reasons=consumer_risk_reasons(view, t)), icon=":material/block:")
    elif view.settled:
        ended = "  \n".join([t("recover.ended", state=state), *outcome_lines(view.outcome, t)])
        if view.state is RecoveryState.PAID:
            st.success(ended, icon=":material/task_alt:")
        else:
            st.info(ended, icon=":material/info:")
    else:
        st.success(t("recover.submitted", count=len(view.parts), state=state), icon=":material/task_alt:")
    st.page_link("pages/my_recoveries.py", label=t("recover.follow"), icon=":material/timeline:")


def cancel_with_confirmation(recoveries: RecoveryService, who: Principal, view: RecoveryView, t: Translator) -> None:
    """Cancel in two clicks: the first asks, the second (or "keep it") answers."""
    asking = f"confirm_cancel_{view.id}"
    if not st.session_state.get(asking):
        if st.button(t("mine.cancel"), icon=":material/cancel:", key=f"cancel-{view.id}"):
            st.session_state[asking] = True
            st.rerun(scope="fragment")
        return
    st.warning(t("mine.cancel_confirm", amount=format_fen(view.amount_fen)), icon=":material/help:")
    yes, no = st.columns(2)
    if yes.button(t("mine.cancel_yes"), type="primary", icon=":material/cancel:", key=f"cancel-yes-{view.id}"):
        st.session_state.pop(asking, None)
        if not still_signed_in():  # a click inside a fragment reruns it alone, without the frame's check
            st.error(t("error.session.ended"), icon=":material/error:")
            return
        try:
            recoveries.cancel(who, view.id)
        except PortalError as error:
            st.error(t.error(error), icon=":material/error:")
            return
        st.rerun(scope="fragment")
    if no.button(t("mine.cancel_no"), icon=":material/undo:", key=f"cancel-no-{view.id}"):
        st.session_state.pop(asking, None)
        st.rerun(scope="fragment")


def risk_reasons(view: RecoveryView, t: Translator) -> str:
    """Every rule that fired, with its figures (for operators)."""
    if view.risk is None:
        return ""

    def shown(name: str, value: object) -> object:
        if name == "on":  # the kinds of entry that matched, in words
            return "、".join(t(f"deny.kind.{kind}") for kind in str(value).split(","))
        return t(f"carrier.{value}") if name in _CARRIER_PARAMS else value

    return "; ".join(t(r.key, **{k: shown(k, v) for k, v in r.params.items()}) for r in view.risk.reasons)


#: What a consumer is told of a rule: what they can act on (the number's carrier) in full; that
#: a deny list matched, or where the thresholds lie, never — that would tell a fraudster how
#: to get past them.
_CARRIER_PARAMS = ("quoted", "current", "allocated")
_TOLD_CONSUMER = {"risk.carrier_mismatch": None, "risk.ported": None, "risk.deny_list": "risk.consumer.refused"}


def consumer_risk_reasons(view: RecoveryView, t: Translator) -> str:
    """The rules that fired, as the recovery's owner reads them."""
    if view.risk is None:
        return ""
    told: list[str] = []
    for reason in view.risk.reasons:
        key = _TOLD_CONSUMER.get(reason.key, "risk.consumer.check")
        if key is None:
            named = {k: t(f"carrier.{v}") for k, v in reason.params.items() if k in _CARRIER_PARAMS}
            line = t(reason.key, **{**reason.params, **named})
        else:
            line = t(key)
        if line not in told:
            told.append(line)
    return "; ".join(told)


def outcome_lines(outcome: Outcome, t: Translator) -> list[str]:
    """What happened to the money, one line per kind of result (the receipt says the same)."""
    return [t.reason(reason) for reason in describe_outcome(outcome)]


def status_line(view: RecoveryView, steps: list[Step], expected: Expected | None, t: Translator) -> str:
    parts = [t("mine.status", state=t(f"state.{view.state.value}")), *outcome_lines(view.outcome, t)]
    reasons = [why(step, view, t, markdown=True) for step in steps if step.why is not None and step.by != "owner"]
    if view.settled and reasons and not (steps and steps[-1].by == "owner"):  # the owner's own cancel: no "why"
        parts.append(t("mine.why", reason=reasons[-1]))
    if expected is not None and view.state is not RecoveryState.PAID:
        first, last = t.date(expected.earliest), t.date(expected.latest)
        window = first if first == last else t("eta.range", first=first, last=last)
        parts.append(t("mine.expected", window=window + (" *" if expected.estimated else "")))
    return "  \n".join(parts)


def why(step: Step, view: RecoveryView, t: Translator, *, markdown: bool = False) -> str:
    """The reason beside a step: the partner's, translated; the operator's own words; the risk
    rules'. For a Markdown line (`markdown`), the words filled in are shown as written (`plain`)."""
    reason = step.why
    if reason is None:
        return ""
    if reason.key == "reason.risk":
        return consumer_risk_reasons(view, t) or t("reason.risk")
    if markdown:
        return t(reason.key, **{name: plain(str(value)) for name, value in reason.params.items()})
    return t.reason(reason)


#: The timeline's container, and its style: on a phone its six columns are wider than the
#: screen, and a table squeezed to fit wrapped its headers a character a line (分/笔, 操/作/方);
#: its headers and times stay on one line and the table scrolls sideways instead.
TIMELINE = "recovery_timeline"
TIMELINE_STYLE = f"""<style>
.st-key-{TIMELINE} [data-testid="stTable"], .st-key-{TIMELINE} [data-testid="stTable"] > div {{ overflow-x: auto; }}
.st-key-{TIMELINE} [data-testid="stTable"] th, .st-key-{TIMELINE} [data-testid="stTable"] th * {{
  white-space: nowrap; word-break: keep-all; overflow-wrap: normal; }}
</style>"""


def timeline(steps: list[Step], view: RecoveryView, t: Translator) -> pd.DataFrame:
    parts = len(view.parts)
    rows = [
        {
            t("mine.col.time"): local_time(step.at),
            **({t("mine.col.part"): f"{step.part}/{parts}"} if parts > 1 else {}),
            t("mine.col.step"): t(f"event.{step.event.value}"),
            t("mine.col.state"): t(f"state.{step.state.value}"),
            t("mine.col.by"): t(f"by.{step.by}"),
            t("mine.col.why"): why(step, view, t),
        }
        for step in steps
    ]
    return pd.DataFrame(rows)


def receipt_summary(receipt: VerifiedReceipt, t: Translator) -> str:
    """What a verified receipt says, in the same words as the page (its `outcome`), as of when it
    was issued (a receipt kept since may be older than the recovery's state now)."""
    recovery = receipt.recovery
    state = str(recovery.get("state", ""))
    lines = [
        t(
            "receipt.valid",
            id=str(recovery.get("id", "")),
            state=t(f"state.{state}") if state in STATES else "?",
            time=local_time(receipt.issued_at),
            amount=format_fen(receipt_outcome(receipt).received_fen),
            issuer=receipt.issuer,
        ),
        *outcome_lines(receipt_outcome(receipt), t),
    ]
    return "  \n".join(lines)
