"""My recoveries: each recovery's status and timeline, live; cancel before the debit; a signed
receipt to download, and a box that checks any receipt against the portal's published key."""

from __future__ import annotations

import streamlit as st

from core.errors import PortalError
from core.i18n import local_time
from core.money import format_fen
from core.services.receipts import verify_receipt
from pages._ui import journey_view
from pages._ui.auth import fragment_signed_in, signed_in, while_signed_in
from pages._ui.session import channel_names, services, translator

svc = services()
t = translator()
who = signed_in()
recoveries, journey, receipts = svc.recoveries, svc.journey, svc.receipts
st.title(t("mine.title"))
if who is None:
    st.info(t("recover.sign_in_first"), icon=":material/login:")
    st.stop()

mine = recoveries.list_for(who)
if not mine:
    st.info(t("mine.none"), icon=":material/inbox:")
    st.page_link("pages/recover.py", label=t("nav.recover"), icon=":material/currency_exchange:")
else:
    by_id = {view.id: view for view in mine}
    names = channel_names(t)

    def option(group_id: str) -> str:
        view = by_id[group_id]
        return t(
            "mine.option",
            time=local_time(view.created_at),
            channel=names.get(view.channel_id, view.channel_id),
            amount=format_fen(view.amount_fen),
            state=t(f"state.{view.state.value}"),
        )

    selected = st.selectbox(
        t("mine.pick"),
        options=list(by_id),
        format_func=option,
        key="mine_selected",
    )

    @st.fragment(run_every=2.0)
    def follow() -> None:
        """The status and timeline, refreshed every two seconds without a reload."""
        fragment_signed_in()  # reruns alone: the frame does not check the sign-in
        view, steps = recoveries.follow(who, selected)
        st.markdown(journey_view.status_line(view, steps, journey.expected(view), t), width="stretch")
        if view.risk is not None and view.risk.reasons:
            st.caption(
                t("mine.risk", decision=t(f"risk.decision.{view.risk.decision.value}"))
                + " "
                + journey_view.consumer_risk_reasons(view, t)
            )
        st.html(journey_view.TIMELINE_STYLE)
        with st.container(key=journey_view.TIMELINE):
            st.table(journey_view.timeline(steps, view, t).set_index(t("mine.col.time")))
        if view.cancellable:
            journey_view.cancel_with_confirmation(recoveries, who, view, t)
        st.download_button(
            t("mine.receipt_download"),
            data=while_signed_in(lambda: receipts.issue(who, selected) + "\n"),  # made on the click
            file_name=f"receipt-{view.id[:8]}.jws",
            mime="application/jose",
            icon=":material/receipt_long:",
            key=f"receipt-{view.id}-{view.state.value}",
            on_click="ignore",
        )

    follow()

st.divider()
st.subheader(t("mine.verify_title"))
st.caption(t("mine.verify_intro"))
with st.form("verify_receipt"):
    pasted = st.text_area(t("mine.verify_paste"), key="verify_text", max_chars=64_000)
    uploaded = st.file_uploader(t("mine.verify_upload"), type=["jws", "txt"], key="verify_file", max_upload_size=1)
    checked = st.form_submit_button(t("mine.verify_button"), icon=":material/verified:")
if checked:
    token = uploaded.getvalue()[:64_000].decode("utf-8", errors="replace") if uploaded is not None else pasted
    try:
        receipt = verify_receipt(token, receipts.jwks())
    except PortalError as error:
        st.error(t.error(error), icon=":material/gpp_bad:")
    else:
        st.success(journey_view.receipt_summary(receipt, t), icon=":material/verified:")
        st.json(dict(receipt.recovery), expanded=False)
