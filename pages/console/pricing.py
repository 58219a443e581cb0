"""The pricing lab (analysts and admins): the live version of the portal's own offer and cost
schedules, a draft edited in tables and saved (checked whole first), submitted with a note; an
admin who is not the author approves it (live at once, everywhere) or declines it; rollback to
an earlier live version is the same two steps. Every step is a service call, audited."""

from __future__ import annotations

import streamlit as st

from core.domain.access import Role
from core.domain.pricing import PricingError
from core.errors import PortalError
from core.services.pricing import PopulationSpec
from pages._ui import pricing_view
from pages._ui.auth import console_page, fragment_signed_in
from pages._ui.plain_text import plain
from pages._ui.session import channel_names

svc, t, who = console_page("pricing.title", lambda w: w.role in (Role.ANALYST, Role.ADMIN), notice=True)

st.caption(t("pricing.intro"))
try:
    desk = svc.pricing.desk(who)
except PortalError as error:  # the live version cannot be read against today's market: say so
    st.error(t.error(error))
    st.stop()
pricing_view.show_live(desk.live, t)

names = channel_names(t)
live_document, draft = desk.live_document, desk.draft
if desk.pending is not None:
    pricing_view.show_pending(desk.pending, who, svc.pricing, t)
    if desk.may_decide:  # what the approver decides on: its figures beside the live version's
        try:  # its margin curve too (the lab's, below, is the approver's own draft's)
            effect = svc.pricing.simulate(who, PopulationSpec(), draft=desk.pending.document)
        except PortalError as error:  # the market moved since it was submitted: say so
            st.warning(t.error(error))
            effect = None
        pricing_view.show_pending_effect(desk.pending, live_document, effect, names, t)
pricing_view.page_changed()  # drawn whole now


@st.fragment
def draft_and_what_it_does() -> None:
    """The draft's tables and what they do: a change here reruns this part alone (the live
    version, the pending one and the versions above and below stay as they are); a save or a
    submit reruns the whole page, whose lists it changes."""
    fragment_signed_in()  # reruns alone: the frame does not check the sign-in
    if pricing_view.page_changed():
        st.rerun(scope="app")
    st.subheader(t("pricing.draft.title", number=draft.number) if draft else t("pricing.draft.new"))
    base = draft.document if draft else live_document
    current = pricing_view.draft_editor(base, draft, who, svc.pricing, names, t)

    st.subheader(t("pricing.what_it_does"))
    spec = pricing_view.population_inputs(t)
    what_if = pricing_view.what_if_inputs(names, t)
    for channel, multiplier in what_if.items():
        st.caption(t("pricing.what_if_on", channel=plain(names.get(channel, channel)), multiplier=f"{multiplier:g}"))
    try:  # the population or the scenario may be refused too, with or without the draft
        try:
            run = svc.pricing.simulate(who, spec, draft=current, what_if=what_if)  # the draft as the tables hold it
        except PricingError as error:  # the terms typed do not hold together yet: the live version alone
            problems = "\n".join(f"- {plain(t.problem(p))}" for p in error.params.get("problems", []))
            st.warning(t("pricing.cannot_simulate") + "\n\n" + problems)
            run = svc.pricing.simulate(who, spec, what_if=what_if)
    except PortalError as error:
        st.error(t.error(error))
        return
    pricing_view.show_run(run, names, t)


draft_and_what_it_does()
pricing_view.show_versions(desk.versions, who, svc.pricing, t)
