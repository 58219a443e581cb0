"""How the pricing lab shows and edits pricing versions, in the reader's language."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.domain.access import Principal, Role
from core.domain.catalog import TieredPercentFee
from core.domain.pricing import OWN_OFFER_ID, PricingError, VersionStatus
from core.domain.pricing_editing import cost_rows, document_diff, edited, offer_terms, promotion_of, tier_rows
from core.errors import PortalError
from core.i18n import Translator, local_time
from core.money import format_fen
from core.services.pricing import LabRun, LivePricing, PopulationSpec, PricingService, VersionView
from pages._ui import actions
from pages._ui.actions import NOTICE
from pages._ui.plain_text import plain

_PAGE_CHANGED = "_pricing_page_changed"


def _run(t: Translator, action: Callable[[], object], done: str) -> None:
    """A button's service call: what it said shows at the top of the page on the next run (the
    whole page's: `page_changed`)."""
    st.session_state[_PAGE_CHANGED] = True
    if actions.signed_out(t):  # the page's principal, checked again before it acts
        return
    try:
        action()
    except PricingError as error:
        problems = error.params.get("problems") or [str(error)]
        listed = "\n".join(f"- {plain(t.problem(p))}" for p in problems)  # they quote what was typed
        st.session_state[NOTICE] = ("error", t("pricing.problems") + "\n\n" + listed)
        return
    except PortalError as error:
        st.session_state[NOTICE] = ("error", t.error(error))
        return
    st.session_state[NOTICE] = ("success", t(done))


def page_changed() -> bool:
    """Whether a button's call has run since the page was last drawn whole: a part of the page
    that reruns alone (a fragment) must then have the whole page drawn again."""
    return bool(st.session_state.pop(_PAGE_CHANGED, False))


def _rate_text(ppm: int) -> str:
    return f"{ppm / 10_000:g}%"


def _tier_text(up_to_fen: int | None, t: Translator) -> str:
    return t("pricing.tier_up_to", up_to=format_fen(up_to_fen)) if up_to_fen else t("pricing.tier_rest")


def show_live(live: LivePricing, t: Translator) -> None:
    offer = live.schedule.own_offer
    fee = offer.fee
    with st.container(border=True):
        st.markdown(t("pricing.live", number=live.number, name=plain(offer.display_name(t.language))))
        if isinstance(fee, TieredPercentFee):
            tiers = " · ".join(f"{_tier_text(tier.up_to_fen, t)} {_rate_text(tier.rate_ppm)}" for tier in fee.tiers)
            st.caption(tiers + " · " + t("pricing.floor", floor=format_fen(fee.floor_fen)))
        if live.schedule.promotion is not None:
            promo = live.schedule.promotion
            st.caption(
                t(
                    "pricing.promotion_line",
                    starts=promo.starts.isoformat(),
                    ends=promo.ends.isoformat(),
                    discount=_rate_text(promo.fee_discount_ppm),
                )
            )


def show_pending(version: VersionView, who: Principal, pricing: PricingService, t: Translator) -> None:
    st.subheader(t("pricing.pending.title", number=version.number))
    with st.container(border=True):
        based = t("pricing.rollback_of", number=version.based_on) if version.based_on else ""
        line = t("pricing.pending.line", author=plain(version.author), note=plain(version.note))
        st.markdown(line + (f" · {based}" if based else ""))
        if who.role is not Role.ADMIN:
            st.caption(t("pricing.pending.waits_for_admin"))
            return
        if version.author_id == who.user_id:
            st.caption(t("pricing.pending.yours"))
            return
        key = f"decision_note_{version.number}"
        st.text_input(t("pricing.decision_note"), key=key, max_chars=500)
        row = st.container(horizontal=True)
        number = version.number

        def decide(approve: bool) -> VersionView:  # the note as typed at the click
            note = st.session_state.get(key, "")
            return pricing.approve(who, number, note) if approve else pricing.decline(who, number, note)

        row.button(
            t("pricing.approve"), key=f"approve_{number}", type="primary", on_click=_run,
            args=(t, lambda: decide(True), "pricing.approved"),
        )  # fmt: skip
        row.button(
            t("pricing.decline"), key=f"decline_{number}", on_click=_run,
            args=(t, lambda: decide(False), "pricing.declined"),
        )  # fmt: skip


def show_pending_effect(
    version: VersionView, live_document: str, run: LabRun | None, names: dict[str, str], t: Translator
) -> None:
    """What the admin approves: the document's changes against the live version and its effect."""
    with st.expander(t("pricing.pending.diff"), expanded=True):
        changes = document_diff(live_document, version.document, (t("pricing.run.live"), t("pricing.run.pending")))
        st.code("\n".join(changes) if changes else t("pricing.pending.no_diff"), language="diff")
    if run is not None:
        st.markdown(t("pricing.pending.effect"))
        show_run(run, names, t, other="pricing.run.pending")


def _tier_editor(document: dict[str, Any], t: Translator, key: str) -> list[dict[str, Any]]:
    frame = pd.DataFrame(tier_rows(document), columns=["up_to_yuan", "rate_percent"])
    result = st.data_editor(
        frame,
        key=key,
        num_rows="dynamic",
        hide_index=True,
        placeholder="",  # the last tier's open bound is blank, not "None"
        column_config={
            "up_to_yuan": st.column_config.NumberColumn(
                t("pricing.col.up_to"),
                help=t("pricing.col.up_to_help"),
                min_value=0.01,
                max_value=1_000_000.0,
                format="%.2f",
            ),
            "rate_percent": st.column_config.NumberColumn(
                t("pricing.col.rate"), min_value=0.0, max_value=100.0, step=0.01, format="%.2f%%", required=True
            ),
        },
    )
    return result.to_dict("records")


def _cost_editor(document: dict[str, Any], names: dict[str, str], t: Translator, key: str) -> list[dict[str, Any]]:
    rows = cost_rows(document)
    frame = pd.DataFrame([{"name": names.get(r["channel"], r["channel"]), **r} for r in rows])
    money = {"min_value": 0.0, "max_value": 1_000_000.0, "format": "%.2f"}
    percent = {"min_value": 0.0, "max_value": 100.0, "step": 0.01, "format": "%.2f%%"}
    result = st.data_editor(
        frame,
        key=key,
        num_rows="fixed",
        hide_index=True,
        placeholder="",  # no partner minimum or cap is blank, not "None"
        disabled=["name", "channel"],
        column_order=[c for c in frame.columns if c != "channel"],  # the id travels along, unseen
        column_config={
            "name": st.column_config.TextColumn(t("pricing.col.channel")),
            "partner_rate_percent": st.column_config.NumberColumn(t("pricing.col.partner_rate"), **percent),
            "partner_floor_yuan": st.column_config.NumberColumn(t("pricing.col.partner_floor"), **money),
            "partner_cap_yuan": st.column_config.NumberColumn(t("pricing.col.partner_cap"), **money),
            "resale_value_percent": st.column_config.NumberColumn(t("pricing.col.resale"), **percent),
            "loss_rate_percent": st.column_config.NumberColumn(t("pricing.col.loss"), **percent),
        },
    )
    return result.to_dict("records")


def _editor_rows(shown: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """An editor's rows as its widget state holds them now: the rows it was shown with its
    edits, additions and deletions applied (what the editor returns on the next run)."""
    state = st.session_state.get(key) or {}
    rows = [dict(r) for r in shown]
    for index, changes in (state.get("edited_rows") or {}).items():
        if 0 <= int(index) < len(rows):
            rows[int(index)].update(changes)
    deleted = {int(i) for i in state.get("deleted_rows") or []}
    return [r for i, r in enumerate(rows) if i not in deleted] + [dict(r) for r in state.get("added_rows") or []]


def draft_editor(
    base_document: str,
    draft: VersionView | None,
    who: Principal,
    pricing: PricingService,
    names: dict[str, str],
    t: Translator,
) -> str | None:
    """The draft's terms in tables; save checks the whole document (nothing is saved if a cell is
    wrong); submit saves what the tables hold and sends it to an admin with a note. Returns the
    document the editors hold now (None while a cell is not a figure)."""
    document = json.loads(base_document)
    stamp = draft.number if draft else "new"
    keys = {"tiers": f"tiers_{stamp}", "costs": f"costs_{stamp}", "note": f"note_{stamp}", "promo": f"promo_on_{stamp}"}
    st.markdown(t("pricing.draft.tiers"))
    tiers = _tier_editor(document, t, keys["tiers"])
    terms = offer_terms(document)
    columns = st.columns(5)
    labels = ("floor_yuan", "cap_yuan", "min_transaction_yuan", "per_transaction_yuan", "per_day_yuan")
    chosen: dict[str, Any] = {}
    for column, name in zip(columns, labels, strict=True):
        chosen[name] = column.number_input(
            t(f"pricing.term.{name}"), min_value=0.0, max_value=1_000_000.0, value=terms[name], step=1.0,
            format="%.2f", key=f"{name}_{stamp}",
        )  # fmt: skip
    promo = promotion_of(document)
    promotion: dict[str, Any] | None = None
    if st.toggle(t("pricing.promotion"), value=promo is not None, key=keys["promo"]):
        today = dt.date.today()
        starts = dt.date.fromisoformat(promo["starts"]) if promo else today
        ends = dt.date.fromisoformat(promo["ends"]) if promo else today + dt.timedelta(days=7)
        left, middle, right = st.columns(3)
        promotion = {
            "starts": left.date_input(t("pricing.promotion_starts"), value=starts, key=f"promo_s_{stamp}"),
            "ends": middle.date_input(t("pricing.promotion_ends"), value=ends, key=f"promo_e_{stamp}"),
            "discount_percent": right.number_input(
                t("pricing.promotion_discount"), min_value=0.0, max_value=100.0,
                value=promo["discount_percent"] if promo else 20.0, step=1.0, key=f"promo_d_{stamp}",
            ),
        }  # fmt: skip
    st.markdown(t("pricing.draft.costs"))
    costs = _cost_editor(document, names, t, keys["costs"])
    st.text_input(t("pricing.note"), value=draft.note if draft else "", max_chars=500, key=keys["note"])

    try:  # what the editors hold now, saved or not: the lab simulates it as it is typed
        current: str | None = json.dumps(
            edited(document, tiers, chosen, promotion, costs), ensure_ascii=False, indent=1
        )
    except PricingError as error:
        current = None
        st.warning(
            t("pricing.cells")
            + "\n\n"
            + "\n".join(f"- {plain(t.problem(p))}" for p in error.params.get("problems", []))
        )

    def fresh() -> str:
        """The document as the widgets hold it at the click (a callback runs before the page does)."""
        state = st.session_state
        promotion_now = (
            {
                "starts": state[f"promo_s_{stamp}"],
                "ends": state[f"promo_e_{stamp}"],
                "discount_percent": state[f"promo_d_{stamp}"],
            }
            if state.get(keys["promo"]) and f"promo_s_{stamp}" in state
            else None
        )
        changed = edited(
            document,
            _editor_rows(tier_rows(document), keys["tiers"]),
            {name: state.get(f"{name}_{stamp}", terms[name]) for name in labels},
            promotion_now,
            _editor_rows(cost_rows(document), keys["costs"]),
        )
        return json.dumps(changed, ensure_ascii=False, indent=1)

    def save() -> VersionView:
        note = st.session_state.get(keys["note"], "")
        return pricing.save_draft(who, fresh(), note, number=draft.number if draft else None)

    def submit() -> VersionView:
        return pricing.submit(who, save().number, st.session_state.get(keys["note"], ""))

    row = st.container(horizontal=True)
    row.button(t("pricing.save"), key=f"save_{stamp}", on_click=_run, args=(t, save, "pricing.saved"))
    row.button(
        t("pricing.submit"), key=f"submit_{stamp}", type="primary", on_click=_run, args=(t, submit, "pricing.submitted")
    )
    st.caption(t("pricing.submit_help"))
    return current


def population_inputs(t: Translator) -> PopulationSpec:
    st.caption(t("pricing.population_help"))
    source = st.segmented_control(
        t("pricing.population_source"),
        ["synthetic", "replay"],
        default="synthetic",
        format_func=lambda s: t(f"pricing.source.{s}"),
        key="pop_source",
    )
    size, median, sigma, seed = st.columns(4)
    users = int(size.number_input(t("pricing.population_size"), 1, 200_000, 20_000, step=1_000, key="pop_n"))
    chosen_seed = int(seed.number_input(t("pricing.seed"), 0, 2**31 - 1, 0, step=1, key="pop_seed"))
    if source == "replay":
        days = int(median.number_input(t("pricing.replay_days"), 1, 365, 30, step=1, key="pop_days"))
        return PopulationSpec(size=users, seed=chosen_seed, replay_days=days)
    return PopulationSpec(
        size=users,
        median_yuan=median.number_input(t("pricing.median"), 1.0, 10_000.0, 150.0, step=10.0, key="pop_median"),
        sigma=sigma.number_input(t("pricing.sigma"), 0.0, 5.0, 1.0, step=0.1, key="pop_sigma"),
        seed=chosen_seed,
    )


def what_if_inputs(names: dict[str, str], t: Translator) -> dict[str, float]:
    """A competitor's fee changed, for the scenario (empty: the market as it is)."""
    with st.expander(t("pricing.what_if")):
        left, right = st.columns(2)
        market = [c for c in names if c != OWN_OFFER_ID]
        channel = left.selectbox(
            t("pricing.what_if_channel"),
            ["", *market],
            format_func=lambda c: names.get(c, c) if c else t("pricing.what_if_none"),
            key="what_if_channel",
        )
        multiplier = right.slider(t("pricing.what_if_multiplier"), 0.0, 2.0, 0.8, 0.05, key="what_if_multiplier")
    return {channel: multiplier} if channel else {}


def show_run(run: LabRun, names: dict[str, str], t: Translator, other: str = "pricing.run.draft") -> None:
    """The figures side by side (static tables: a few rows each, drawn at once on every change)
    and the margin curve. `other` heads the second version's column: the draft, or the version
    waiting for approval."""
    runs = [("pricing.run.live", run.live)] + ([(other, run.draft)] if run.draft is not None else [])
    figures = {
        "win_rate": lambda r: f"{r.win_rate:.1%}",
        "volume": lambda r: format_fen(r.volume_fen),
        "revenue": lambda r: format_fen(r.revenue_fen),
        "cost": lambda r: format_fen(r.cost_fen),
        "margin": lambda r: format_fen(r.margin_fen),
        "surplus": lambda r: format_fen(r.user_surplus_fen),
    }
    st.table(  # one row per figure, one column per version: three columns fit a phone
        [
            {t("pricing.col.figure"): t(f"pricing.col.{name}")}
            | {t(version): shown(result) for version, result in runs}
            for name, shown in figures.items()
        ],
        hide_index=True,
        border="horizontal",
    )
    shown = run.draft or run.live
    competitors = [c for c, n in shown.total.market_users.items() if n]
    if competitors:
        st.markdown(t("pricing.won_from"))
        st.table(
            [
                {
                    t("pricing.col.channel"): plain(names.get(c, t("pricing.nobody") if c == "none" else c)),
                    t("pricing.col.their_users"): f"{shown.total.market_users.get(c, 0):,}",
                    t("pricing.run.live"): f"{run.live.total.win_share_of(c):.1%}",
                    **({t(other): f"{run.draft.total.win_share_of(c):.1%}"} if run.draft else {}),
                }
                for c in sorted(competitors, key=lambda c: (c == "none", c))  # "no channel takes it" last
            ],
            hide_index=True,
            border="horizontal",
        )
    figure = go.Figure()
    xs = [p.multiplier for p in run.curve]
    figure.add_trace(go.Scatter(x=xs, y=[p.margin_fen / 100 for p in run.curve], name=t("pricing.col.margin")))
    figure.add_trace(
        go.Scatter(x=xs, y=[p.win_rate * 100 for p in run.curve], name=t("pricing.col.win_rate"), yaxis="y2")
    )
    figure.update_layout(
        xaxis_title=t("pricing.multiplier"),
        yaxis={"title": t("pricing.margin_yuan")},
        yaxis2={"title": t("pricing.win_percent"), "overlaying": "y", "side": "right"},
        height=340,
        margin={"t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.12},
    )
    st.plotly_chart(figure, width="stretch", config={"displayModeBar": False})
    st.caption(t("pricing.run_seconds", seconds=f"{run.seconds:.2f}", users=f"{run.live.users:,}"))


def show_versions(versions: list[VersionView], who: Principal, pricing: PricingService, t: Translator) -> None:
    st.subheader(t("pricing.versions"))
    st.dataframe(
        [
            {
                t("pricing.col.number"): v.number,
                t("pricing.col.status"): t(f"pricing.status.{v.status.value}"),
                t("pricing.col.author"): v.author or t("pricing.shipped"),
                t("pricing.col.note"): v.note if v.author_id else t("pricing.shipped_note"),  # stored in English
                t("pricing.col.decided_by"): v.decided_by,
                t("pricing.col.decided_at"): local_time(v.decided_at) if v.decided_at else "",
            }
            for v in versions
        ],
        hide_index=True,
        width="stretch",
    )
    retired = [v.number for v in versions if v.status is VersionStatus.RETIRED]  # was live, is no more
    if retired:
        with st.expander(t("pricing.rollback")):
            st.selectbox(t("pricing.rollback_to"), retired, key="rollback_to")
            st.text_input(t("pricing.note"), key="rollback_note", max_chars=500)

            def roll_back() -> VersionView:
                state = st.session_state
                return pricing.rollback(who, int(state["rollback_to"]), state.get("rollback_note", ""))

            st.button(
                t("pricing.rollback_submit"), key="rollback_go", on_click=_run, args=(t, roll_back, "pricing.submitted")
            )
