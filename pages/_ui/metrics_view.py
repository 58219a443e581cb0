"""How the console shows the operations metrics, in the reader's language: the headline figures,
the charts (daily volume and amount, payout times per channel against the channel's promise,
the breakdown by carrier) and the payout-time table. Each chart is one `go.Figure(spec)`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.domain.calendar import SHANGHAI
from core.i18n import Translator, age_text, local_time
from core.money import FEN_PER_YUAN, format_fen
from core.services.console.metrics import Metrics, PayoutTimes, Promise
from pages._ui.charts import CHART_CONFIG, CONSOLE_LEGEND, CONSOLE_MARGIN, PALETTE, chart_title

#: The period the page opens on: the last 30 days, today (Beijing time) included.
DEFAULT_DAYS = 30


def default_period(now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    today = (now or dt.datetime.now(dt.UTC)).astimezone(SHANGHAI).date()
    return today - dt.timedelta(days=DEFAULT_DAYS - 1), today


def rate_text(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def duration_text(seconds: float | None, t: Translator) -> str:
    if seconds is None:
        return "—"
    return t("metrics.seconds", n=round(seconds)) if seconds < 60 else age_text(seconds, t)


def promise_text(promise: Promise | None, t: Translator) -> str:
    if promise is None:
        return "—"
    if promise.rule == "instant":
        return t("metrics.promise.instant")
    if promise.rule == "working_days":
        return t("metrics.promise.working_days", min=promise.min_days, max=promise.max_days)
    return t("metrics.promise.t_plus", days=promise.max_days, cutoff=promise.cutoff)


def carrier_name(carrier: str, t: Translator) -> str:
    return t(f"carrier.{carrier}") if carrier else t("metrics.carrier_unknown")


def headlines(m: Metrics, t: Translator) -> list[tuple[str, str, str | None]]:
    """(label, value, help) of each headline figure, in the order shown."""
    total = m.total
    return [
        (t("metrics.volume"), f"{total.count:,}", t("metrics.help.volume")),
        (t("metrics.amount"), format_fen(total.amount_fen), None),
        (t("metrics.fees"), format_fen(total.fees_fen), t("metrics.help.fees")),
        (t("metrics.success_rate"), rate_text(total.success_rate), t("metrics.help.success_rate")),
        (t("metrics.review_rate"), rate_text(total.review_rate), t("metrics.help.review_rate")),
        (t("metrics.queue_size"), f"{m.queue_size:,}", None),
        (t("metrics.oldest_case"), duration_text(m.oldest_case_age_s, t), None),
        (t("metrics.stuck"), f"{m.stuck:,}", t("metrics.help.stuck")),
    ]


def show_headlines(m: Metrics, t: Translator) -> None:
    figures = headlines(m, t)
    for row in (figures[:4], figures[4:]):
        for column, (label, value, help) in zip(st.columns(len(row)), row, strict=True):
            column.metric(label, value, help=help, border=True)
    st.caption(
        f"{t('metrics.refund_rate')} {rate_text(m.total.refund_rate)} · "
        f"{t('metrics.reject_rate')} {rate_text(m.total.reject_rate)} · " + t("metrics.as_of", time=local_time(m.as_of))
    )


def daily_figure(m: Metrics, t: Translator) -> go.Figure:
    """Recoveries (bars) and their amount in yuan (line, right axis) per Beijing day."""
    days = [day.isoformat() for day in m.by_day]
    figures = list(m.by_day.values())
    return go.Figure(
        {
            "data": [
                {
                    "type": "bar",
                    "name": t("metrics.volume"),
                    "x": days,
                    "y": [f.count for f in figures],
                    "marker": {"color": PALETTE[0]},
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": t("metrics.amount_yuan"),
                    "x": days,
                    "y": [f.amount_fen / FEN_PER_YUAN for f in figures],
                    "yaxis": "y2",
                    "line": {"color": PALETTE[3]},
                },
            ],
            "layout": {
                "title": chart_title(t("metrics.chart.daily")),
                "margin": CONSOLE_MARGIN,
                "legend": CONSOLE_LEGEND,
                "xaxis": {"type": "date", "tickformat": "%m-%d"},
                "yaxis": {"title": {"text": t("metrics.volume")}, "rangemode": "tozero", "automargin": True},
                "yaxis2": {
                    "automargin": True,
                    "title": {"text": t("metrics.amount_yuan")},
                    "overlaying": "y",
                    "side": "right",
                    "rangemode": "tozero",
                    "showgrid": False,
                },
                "height": 340,
            },
        }
    )


#: Drawn on a log axis when the longest time is this many times the shortest (an instant channel
#: beside a working-days one: minutes beside days).
_LOG_ABOVE = 20


def _axis(times: list[PayoutTimes]) -> tuple[float, str, str]:
    """(seconds per unit, the unit's message key, axis type): minutes, unless something drawn is
    longer than two hours; logarithmic when the times drawn differ by orders of magnitude."""
    drawn = [v for p in times for v in (p.p50_s, p.p95_s) if v] + [
        p.promise.nominal_s for p in times if p.promise is not None
    ]
    longest, shortest = max(drawn, default=0.0), min(drawn, default=0.0)
    kind = "log" if shortest > 0 and longest / shortest > _LOG_ABOVE else "linear"
    return (3600.0, "metrics.hours", kind) if longest > 2 * 3600 else (60.0, "metrics.minutes", kind)


def payout_figure(m: Metrics, names: Mapping[str, str], t: Translator) -> go.Figure:
    """p50 and p95 payout time per channel (bars), and the channel's promise (a marker)."""
    times = list(m.payout_times)
    per, unit, kind = _axis(times)
    labels = [names.get(p.channel, p.channel) for p in times]

    def scaled(values: list[float | None]) -> list[float | None]:
        return [None if v is None else v / per for v in values]

    hover = [
        f"{label}<br>p50 {duration_text(p.p50_s, t)} · p95 {duration_text(p.p95_s, t)}<br>"
        f"{t('metrics.promise')}: {promise_text(p.promise, t)} · {t('metrics.on_time')} {rate_text(p.on_time_rate)}"
        for label, p in zip(labels, times, strict=True)
    ]
    bar = {"type": "bar", "x": labels, "hovertext": hover, "hoverinfo": "text"}
    return go.Figure(
        {
            "data": [
                {
                    **bar,
                    "name": t("metrics.p50"),
                    "y": scaled([p.p50_s for p in times]),
                    "marker": {"color": PALETTE[0]},
                },
                {
                    **bar,
                    "name": t("metrics.p95"),
                    "y": scaled([p.p95_s for p in times]),
                    "marker": {"color": PALETTE[4]},
                },
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": t("metrics.promise"),
                    "x": labels,
                    "y": scaled([p.promise.nominal_s if p.promise is not None else None for p in times]),
                    "hovertext": [promise_text(p.promise, t) for p in times],
                    "hoverinfo": "text",
                    "marker": {"symbol": "line-ew-open", "size": 40, "color": PALETTE[2], "line": {"width": 3}},
                },
            ],
            "layout": {
                "title": chart_title(t("metrics.chart.payout")),
                "barmode": "group",
                "margin": CONSOLE_MARGIN,
                "legend": CONSOLE_LEGEND,
                "yaxis": {"title": {"text": t(unit)}, "type": kind, "automargin": True},
                "height": 340,
            },
        }
    )


def carrier_figure(m: Metrics, t: Translator) -> go.Figure:
    """Recoveries per carrier (bars), with their amount, success and review rates on hover."""
    carriers = list(m.by_carrier)
    labels = [carrier_name(c, t) for c in carriers]
    figures = [m.by_carrier[c] for c in carriers]
    hover = [
        f"{label}<br>{t('metrics.volume')} {f.count:,} · {t('metrics.amount')} {format_fen(f.amount_fen)}<br>"
        f"{t('metrics.success_rate')} {rate_text(f.success_rate)} · "
        f"{t('metrics.review_rate')} {rate_text(f.review_rate)}"
        for label, f in zip(labels, figures, strict=True)
    ]
    return go.Figure(
        {
            "data": [
                {
                    "type": "bar",
                    "x": labels,
                    "y": [f.count for f in figures],
                    "hovertext": hover,
                    "hoverinfo": "text",
                    "marker": {"color": [PALETTE[i % len(PALETTE)] for i in range(len(labels))]},
                }
            ],
            "layout": {
                "title": chart_title(t("metrics.chart.carrier")),
                "margin": CONSOLE_MARGIN,
                "yaxis": {"title": {"text": t("metrics.volume")}, "rangemode": "tozero", "automargin": True},
                "height": 300,
            },
        }
    )


def payout_table(m: Metrics, names: Mapping[str, str], t: Translator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            t("metrics.channel"): [names.get(p.channel, p.channel) for p in m.payout_times],
            t("metrics.volume"): [p.measured for p in m.payout_times],
            "p50": [duration_text(p.p50_s, t) for p in m.payout_times],
            "p95": [duration_text(p.p95_s, t) for p in m.payout_times],
            t("metrics.promise"): [promise_text(p.promise, t) for p in m.payout_times],
            t("metrics.on_time"): [rate_text(p.on_time_rate) for p in m.payout_times],
        }
    )


def show_charts(m: Metrics, names: Mapping[str, str], t: Translator) -> None:
    if m.total.count == 0:
        st.info(t("metrics.no_data"), icon=":material/insights:")
        return
    st.plotly_chart(daily_figure(m, t), width="stretch", config=CHART_CONFIG)
    left, right = st.columns([3, 2])
    with left:
        if any(p.measured for p in m.payout_times):
            st.plotly_chart(payout_figure(m, names, t), width="stretch", config=CHART_CONFIG)
        else:
            st.info(t("metrics.no_payouts"), icon=":material/schedule:")
    with right:
        st.plotly_chart(carrier_figure(m, t), width="stretch", config=CHART_CONFIG)
    st.subheader(t("metrics.payout_table"))
    st.dataframe(payout_table(m, names, t), hide_index=True, width="stretch")
