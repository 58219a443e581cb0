"""Reconciliation (operators): upload a partner's settlement statement, see what matched and the
breaks; resolve a break with a reason, or ask for the correcting entry an amount mismatch needs,
which a second operator agrees to here (or on the command line)."""

from __future__ import annotations

import streamlit as st

from core.domain.reconciliation import RESOLUTIONS, BreakKind
from core.domain.statements import MAX_STATEMENT_BYTES
from core.errors import PortalError
from pages._ui import actions
from pages._ui.auth import console_page
from pages._ui.console_view import request_line
from pages._ui.reconciliation_view import break_rows, report_summary
from pages._ui.session import channel_names

svc, t, who = console_page("recon.title", notice=True)
st.caption(t("recon.intro"))

partners = svc.reconciliation.partners()
first_day, last_day = svc.reconciliation.statement_days()
names = channel_names(t)


def partner_name(partner: str) -> str:
    """A payout partner by its channel's name, as everywhere else; the carrier by its own."""
    return names.get(partner) or t(f"recon.partner.{partner}", p=partner)


report = None
with st.form("recon_upload"):
    partner = st.selectbox(t("recon.partner"), partners, format_func=partner_name)
    day = st.date_input(  # empty: the statement's own day
        t("recon.day"), value=None, min_value=first_day, max_value=last_day, help=t("recon.day_help")
    )
    upload = st.file_uploader(
        t("recon.file"), type=["csv", "txt"], help=t("recon.file_help"), max_upload_size=MAX_STATEMENT_BYTES // 2**20
    )
    go = st.form_submit_button(t("recon.go"), type="primary")
if go:
    if upload is None:
        st.error(t("recon.no_file"))
    else:  # a file over MAX_STATEMENT_BYTES is refused by the uploader, and again by the parser
        try:
            report = svc.reconciliation.reconcile(who, partner, upload.getvalue(), day=day, filename=upload.name)
        except PortalError as error:
            st.error(t(error.key, **error.params))
        else:
            st.session_state["recon_report"] = report.import_id
            if not report.stored:
                st.info(t("cli.reconcile.imported_before"))
if report is None and st.session_state.get("recon_report"):  # the last import's, on the next runs
    try:
        report = svc.reconciliation.report(who, st.session_state["recon_report"])
    except PortalError:
        report = None
if report is not None:
    st.subheader(t("recon.report", partner=partner_name(report.partner), day=report.day))
    summary = report_summary(report, t)
    columns = st.columns(len(summary))
    for column, (label, value) in zip(columns, summary, strict=True):
        column.metric(label, value)
    if report.breaks:
        st.dataframe(break_rows(report.breaks, t), hide_index=True, width="stretch")
    else:
        st.success(t("recon.all_matched"), icon=":material/check_circle:")

corrections = svc.reconciliation.pending_corrections(who)
if corrections:
    st.subheader(t("recon.corrections", count=len(corrections)))
    for request in corrections:
        with st.container(border=True):
            st.markdown(request_line(request, t))
            if request.requested_by_id == who.user_id:
                st.caption(t("recon.correction_mine"))
            else:
                actions.agree_or_refuse(
                    t,
                    request.id,
                    lambda r=request: svc.approvals.agree(who, r.id),
                    lambda r=request: svc.approvals.refuse(who, r.id),
                    ("recon.agree", "recon.refuse"),
                    ("recon.corrected", "recon.correction_refused"),
                )

open_breaks = svc.reconciliation.open_breaks(who)
st.subheader(t("recon.open", count=len(open_breaks)))
if not open_breaks:
    st.info(t("recon.none_open"), icon=":material/check_circle:")
else:
    st.dataframe(break_rows(open_breaks, t), hide_index=True, width="stretch")
    with st.form("recon_resolve", clear_on_submit=True):
        st.markdown(f"**{t('recon.resolve_title')}**")
        picked = st.selectbox(
            t("recon.break"),
            range(len(open_breaks)),
            format_func=lambda i: f"{t('break.' + open_breaks[i].kind)} · {open_breaks[i].reference or '—'}",
        )
        how = st.radio(t("recon.how"), ["resolve", "correct"], format_func=lambda h: t(f"recon.how.{h}"))
        reason = st.selectbox(t("recon.reason"), RESOLUTIONS, format_func=lambda r: t(f"recon.reason.{r}"))
        note = st.text_input(t("recon.note"), max_chars=200)
        done = st.form_submit_button(t("recon.submit"))
    if done and picked is not None:
        chosen = open_breaks[picked]
        if how == "correct":
            actions.act(t, lambda: svc.reconciliation.request_correction(who, chosen.id, note), "recon.asked")
        else:
            actions.act(t, lambda: svc.reconciliation.resolve(who, chosen.id, reason, note), "recon.resolved")
        st.rerun()
    st.caption(t("recon.correct_help", kind=t(f"break.{BreakKind.AMOUNT_MISMATCH.value}")))
