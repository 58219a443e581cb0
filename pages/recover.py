"""Recover: pick a verified number, see its live comparison, lock a quote, say where the money
goes, accept the agreement, submit. Each step is one service call; going back, reloading or a
double click never makes a second recovery (the submission's key is the locked quote's).

The address bar carries the chosen number's id and the locked quote's id (never the number
itself), so a reload or Back returns to the same step; the services check both are the
caller's own."""

from __future__ import annotations

import streamlit as st

from core.domain.payee import needs_payee
from core.errors import InputError, PortalError
from core.money import format_fen
from core.services.recovery.submission import IdempotencyConflict
from pages._ui import journey_view
from pages._ui.auth import signed_in
from pages._ui.session import services, translator

svc = services()
t = translator()
who = signed_in()
journey, identity, agreements = svc.journey, svc.identity, svc.agreements
st.title(t("recover.title"))
if who is None:
    st.info(t("recover.sign_in_first"), icon=":material/login:")
    st.stop()
if who.role != "consumer":
    st.info(t("recover.consumers_only"), icon=":material/badge:")
    st.stop()
state = st.session_state
journey_view.restore_from_url(journey, who, t)

# --- 1. the number ----------------------------------------------------------------------------
st.subheader(t("recover.step_number"))
numbers = identity.verified_numbers(who, who.user_id)
masked_by_id = dict(numbers)
choice = st.selectbox(
    t("recover.number"),
    options=list(masked_by_id),
    format_func=lambda number_id: masked_by_id[number_id],
    index=None,
    key="rc_number",
    placeholder=t("recover.number_placeholder"),
)
journey_view.verify_new_number(identity, who, t)
if choice is None:
    st.stop()
if state.get("rc_check") is not None and state["rc_check"].number_id != choice:
    journey_view.forget(state, "rc_check", "rc_lock", "rc_changes", "rc_result")
if st.button(t("recover.check"), icon=":material/sim_card:", key="rc_check_button"):
    try:
        state["rc_check"] = journey.check_number(who, choice)
        journey_view.forget(state, "rc_lock", "rc_changes", "rc_result")
        journey_view.remember_in_url(number_id=choice)
    except PortalError as error:
        st.error(t.error(error), icon=":material/error:")
check = state.get("rc_check")
if check is None:
    st.stop()
journey_view.number_summary(check, t)

# --- 2. compare and lock ------------------------------------------------------------------------
st.subheader(t("recover.step_quote"))
done = state.get("rc_lock")
if done is not None and done.used:  # this quote made its recovery: show it, and offer a fresh start
    st.markdown(
        t(
            "recover.summary",
            amount=format_fen(done.amount_fen),
            fee=format_fen(done.fee_fen),
            net=format_fen(done.net_fen),
            count=done.transactions,
        )
    )
    journey_view.submitted(svc.recoveries, who, done.used_by or "", t)
    if st.button(t("recover.another"), icon=":material/restart_alt:", key="rc_another"):
        journey_view.forget(state, "rc_check", "rc_lock", "rc_changes", "rc_result", "rc_payee", "rc_agree")
        journey_view.remember_in_url(number_id=check.number_id)
        st.rerun()
    st.stop()
try:
    comparison = journey.compare(check)
except InputError as error:
    st.warning(t.error(error), icon=":material/warning:")
    st.stop()
eligible = [q for q in comparison.quotes if q.eligible]
journey_view.quote_table(comparison, t)
if not eligible:
    st.warning(t("recover.no_channel"), icon=":material/block:")
    st.stop()
channel_id = st.radio(
    t("recover.channel"),
    options=[q.channel.id for q in eligible],
    format_func=lambda cid: journey_view.channel_choice(comparison, cid, t),
    key="rc_channel",
)
lock = state.get("rc_lock")
if lock is not None and lock.channel_id != channel_id and not lock.used:
    journey_view.forget(state, "rc_lock", "rc_changes")
    lock = None
if lock is None:
    if st.button(t("recover.lock"), type="primary", icon=":material/lock:", key="rc_lock_button"):
        try:
            state["rc_lock"] = lock = journey.lock(who, check, channel_id)
            journey_view.remember_in_url(number_id=check.number_id, lock_id=lock.id)
        except PortalError as error:
            st.error(t.error(error), icon=":material/error:")
    if lock is None:
        st.stop()
try:  # past its ten minutes a lock is quoted again, and what changed is shown before any submit
    lock, changes = journey.renewed(who, lock, check)
except PortalError as error:
    st.error(t.error(error), icon=":material/error:")
    st.stop()
requoted = changes is not None
if requoted:
    state["rc_lock"], state["rc_changes"] = lock, changes
    journey_view.remember_in_url(number_id=check.number_id, lock_id=lock.id)
journey_view.locked_quote(lock, state.get("rc_changes"), journey.now(), t)

# --- 3. where the money goes ----------------------------------------------------------------------
st.subheader(t("recover.step_payee"))
payee = ""
form = lock.payout_form  # what the locked channel pays into: its payout form asks for an account
if form is None:
    st.error(t("error.quote.ineligible"), icon=":material/error:")
    st.stop()
if needs_payee(form):
    payee = st.text_input(
        t(f"payee.label.{form.value}"),
        key="rc_payee",
        max_chars=80,
        placeholder=t(f"payee.placeholder.{form.value}"),
    )
else:
    st.info(t("payee.carrier_account", number=check.masked), icon=":material/redeem:")

# --- 4. the agreement ---------------------------------------------------------------------------
st.subheader(t("recover.step_agreement"))
agreement = agreements.current()
accepted = agreements.accepted(who)
with st.expander(t("recover.agreement_title", version=agreement.version), expanded=not accepted):
    st.markdown(agreement.text(t.language))
if accepted:
    st.success(t("recover.agreement_accepted", version=agreement.version), icon=":material/task_alt:")
else:
    agree = st.checkbox(t("recover.agreement_check", version=agreement.version), key="rc_agree")
    if st.button(t("recover.agreement_accept"), disabled=not agree, key="rc_accept_button"):
        try:
            agreements.accept(who, agreement.version)
            st.rerun()
        except PortalError as error:
            st.error(t.error(error), icon=":material/error:")
    st.stop()

# --- 5. submit ------------------------------------------------------------------------------------
st.subheader(t("recover.step_submit"))
st.markdown(
    t(
        "recover.summary",
        amount=format_fen(lock.amount_fen),
        fee=format_fen(lock.fee_fen),
        net=format_fen(lock.net_fen),
        count=lock.transactions,
    )
)
clicked = st.button(t("recover.submit"), type="primary", icon=":material/send:", key="rc_submit_button")
if clicked and requoted:  # the lock was renewed on this very click: its figures are shown first
    st.warning(t("recover.requoted" if changes else "recover.requoted_same"), icon=":material/update:")
elif clicked:
    try:
        journey.submit(who, lock, payee, journey_view.device(st.context))
    except IdempotencyConflict as error:  # submitted from another tab, to another account
        st.error(t.error(error), icon=":material/error:")
        st.page_link("pages/my_recoveries.py", label=t("recover.follow"), icon=":material/timeline:")
    except PortalError as error:
        st.error(t.error(error), icon=":material/error:")
    else:
        state["rc_lock"] = journey.locked(who, lock.id, lock.number_id)
        st.rerun()
