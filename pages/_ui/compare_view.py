"""The Compare page's pieces: its form (share-link aware) and the rendering of a comparison."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

from core.domain.carriers import Carrier
from core.domain.catalog import ChannelKind, PayoutForm
from core.domain.quotes import Comparison, Priority
from core.i18n import Translator, local_time
from core.money import PPM
from core.services.quoting import LiveTerms, QuoteInput, QuoteOutcome, QuoteService
from pages._ui import charts, quote_tables
from pages._ui.plain_text import plain
from pages._ui.session import from_url, one_of, publish_to_url

AUTO = "auto"
SAME = "same"
DEFAULT_CARRIER = Carrier.CHINA_MOBILE  # shown until the user gives a number or a carrier
CARRIERS = [c.value for c in Carrier]
#: The share link's parameters and their defaults (defaults stay out of the URL). Never the
#: phone number or the credit limit: those are the user's own, not a comparison's.
SHARED = {
    "carrier": AUTO,
    "balance": "200",
    "priority": Priority.COST.value,
    "bound": SAME,
}
ALL_COLUMNS = "all_columns"  # the reader's choice: every column of the table, or what decides


def _percent(raw: str) -> int:
    value = int(raw)
    if not 10 <= value <= 100:
        raise ValueError(raw)
    return value


def valuation_defaults(terms: LiveTerms) -> dict[str, int]:
    """The sliders start at what the channels themselves publish (in %): left there, each
    channel's own figure is used; moved, the user's valuation replaces it."""

    def published(form: PayoutForm, fallback: int) -> int:
        values = [c.payout_value_ppm for c in terms.catalog.channels if c.payout_form is form]
        return round(values[0] * 100 / PPM) if values else fallback

    return {"voucher": published(PayoutForm.E_VOUCHER, 90), "points": published(PayoutForm.POINTS, 80)}


def seed_from_url(valuations: dict[str, int]) -> None:
    """Open a shared link: its values become the form's starting values (once per tab)."""
    from_url("carrier", SHARED["carrier"], one_of([AUTO, *CARRIERS]))
    from_url("balance", SHARED["balance"])
    from_url("priority", SHARED["priority"], one_of([p.value for p in Priority]))
    from_url("bound", SHARED["bound"], one_of([SAME, *CARRIERS]))
    from_url("voucher", valuations["voucher"], _percent)
    from_url("points", valuations["points"], _percent)


@dataclass(frozen=True)
class Form:
    given: QuoteInput
    carrier_choice: str  # "auto" or a carrier code, as the user left the select
    voucher: int
    points: int
    default_carrier_used: bool


def form(t: Translator, valuations: dict[str, int]) -> Form:
    left, right = st.columns(2)
    phone = left.text_input(t("compare.phone"), key="phone", placeholder=t("compare.phone_placeholder"), max_chars=20)
    carrier = left.selectbox(
        t("compare.carrier"),
        [AUTO, *CARRIERS],
        key="carrier",
        help=t("compare.carrier_help"),
        format_func=lambda c: t("compare.carrier_auto") if c == AUTO else t(f"carrier.{c}"),
    )
    balance = right.text_input(t("compare.balance"), key="balance", max_chars=20)
    priority = right.segmented_control(
        t("compare.priority"),
        [p.value for p in Priority],
        key="priority",
        required=True,
        format_func=lambda p: t(f"priority.{p}"),
    )
    with st.expander(t("compare.more")):  # stacked, not in columns: fewer elements to redraw per update
        credit_limit = st.text_input(t("compare.credit_limit"), key="credit", max_chars=20)
        bound = st.selectbox(
            t("compare.bound_carrier"),
            [SAME, *CARRIERS],
            key="bound",
            format_func=lambda c: t("compare.bound_same") if c == SAME else t(f"carrier.{c}"),
        )
        voucher = st.slider(t("compare.voucher_value"), 10, 100, key="voucher")
        points = st.slider(t("compare.points_value"), 10, 100, key="points")
    has_phone = bool(phone and phone.strip())
    chosen = None if carrier == AUTO else carrier
    default_used = chosen is None and not has_phone
    given = QuoteInput(
        balance=balance,
        phone=phone if has_phone else "",
        carrier=DEFAULT_CARRIER.value if default_used else chosen,
        credit_limit=credit_limit,
        bound_carrier=None if bound == SAME else bound,
        voucher_value="" if voucher == valuations["voucher"] else f"{voucher}%",
        points_value="" if points == valuations["points"] else f"{points}%",
        priority=priority or Priority.COST.value,
    )
    return Form(given, carrier, voucher, points, default_used)


def forget_stale_link() -> None:
    """Input was refused: a link in the address bar no longer describes what is on screen."""
    publish_to_url({}, SHARED, sharing=False)


def render(
    outcome: QuoteOutcome, entered: Form, quotes: QuoteService, t: Translator, valuations: dict[str, int]
) -> None:
    comparison, request = outcome.comparison, outcome.comparison.request
    if entered.default_carrier_used:
        st.info(t("compare.default_carrier", carrier=DEFAULT_CARRIER.value), icon=":material/info:")
    number = outcome.number
    if number is not None and number.allocated_carrier is not None:
        key = "compare.detected_virtual" if number.is_virtual_operator else "compare.detected"
        st.caption(
            t(key, masked=number.masked, carrier=number.allocated_carrier.value) + " " + t("compare.ported_hint")
        )

    best = comparison.best
    if best is None:
        st.warning(t("compare.none_eligible"))
    else:
        # channel names as written, never as Markdown: the own offer's is the operator's words
        title = f"{t('compare.best_title')} · {plain(best.channel.display_name(t.language))}"
        why = quote_tables.reason_text(comparison.best_reason, t, (q.channel for q in comparison.quotes), name=plain)
        st.success(f"**{title}**  \n{why}", icon=":material/thumb_up:")
    for stale in outcome.terms.stale(quotes.clock(), quotes.stale_after):
        when = local_time(stale.confirmed_at)
        name = plain(stale.channel.display_name(t.language))
        st.warning(t("compare.stale", channel=name, time=when), icon=":material/schedule:")

    ranked(comparison, outcome.terms, t)
    if any(q.eta_estimated for q in comparison.quotes):
        st.caption(t("compare.estimate_note"))

    share = {
        "balance": entered.given.balance.strip(),
        "carrier": request.carrier.value,
        "priority": request.priorities[0].value,
        "bound": request.bound_carrier.value if request.bound_carrier else SAME,
        "voucher": entered.voucher,
        "points": entered.points,
    }
    # Rewriting the URL on every keystroke would cost each update a history entry and a redraw
    # of the navigation: the address bar follows the comparison only while the share box is open.
    sharing = st.popover(
        t("compare.share"), icon=":material/share:", help=t("compare.share_help"), key="sharing", on_change="rerun"
    )
    publish_to_url(share, {**SHARED, **valuations}, sharing=bool(sharing.open))
    if sharing.open:
        link = urlencode({**share, "lang": t.language})
        # wrapped: on a phone the whole link shows (one line was cut at the screen's edge)
        sharing.code(f"{(st.context.url or '').split('?')[0]}?{link}", language=None, wrap_lines=True)

    if best is not None:
        _charts(outcome, quotes, t)


def ranked(comparison: Comparison, terms: LiveTerms, t: Translator) -> None:
    """The ranked channels: a table of what decides a choice (every column at the reader's
    wish) where there is room for it, a card per channel where there is not (a phone)."""
    rows = quote_tables.comparison_rows(comparison, t, terms)
    # Style alone: Streamlit puts it out of the flow, and it is the same on every update.
    st.html(quote_tables.CARD_STYLE)
    with st.container(key=quote_tables.RANKED, gap="small"):
        with st.container(key=quote_tables.TABLE, gap="small"):
            every_column = bool(st.session_state.get(ALL_COLUMNS))
            st.dataframe(
                quote_tables.grey_out_ineligible(quote_tables.table_of(rows, t), comparison),
                hide_index=True,
                width="stretch",
                column_order=None if every_column else quote_tables.deciding_columns(t),
                column_config=quote_tables.fitted_widths(rows, t),
            )
            st.toggle(t("compare.all_columns"), key=ALL_COLUMNS)
        with st.container(key=quote_tables.CARDS):
            st.html(quote_tables.channel_cards(rows, t))
    own = [q.channel for q in comparison.quotes if q.channel.kind is ChannelKind.OWN_OFFER]
    if own:  # the operator's own offer, ranked by the same rules as every other channel
        st.caption(t("compare.own_offer_note", name=plain(own[0].display_name(t.language))))


CHARTS = ("net", "eta", "breakdown")


def _charts(outcome: QuoteOutcome, quotes: QuoteService, t: Translator) -> None:
    """One chart at a time, chosen by the reader: only it is built, sent and drawn per update
    (a segmented control is one element where tabs are four)."""
    comparison = outcome.comparison
    if st.session_state.get("chart") not in CHARTS:
        st.session_state["chart"] = CHARTS[0]
    shown = st.segmented_control(
        t("chart.choose"),
        CHARTS,
        key="chart",
        required=True,
        label_visibility="collapsed",
        format_func=lambda name: t(f"chart.tab_{name}"),
    )
    if shown == "net":
        cache = st.session_state.setdefault("_net_curves", {})
        figure = charts.net_by_balance(quotes, outcome.terms, comparison.request, t.language, cache)
    elif shown == "eta":
        figure = charts.eta_window(comparison, quotes, t)
    else:
        figure = charts.breakdown(comparison, t)
    st.plotly_chart(figure, width="stretch", config=charts.CHART_CONFIG)
