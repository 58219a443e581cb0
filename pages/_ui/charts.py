"""Plotly figures for the Compare page, built from the service's numbers, and the settings the
console's charts share with them.

Each figure is one `go.Figure(spec)` from plain dicts: plotly's incremental helpers
(`add_vline`, `add_annotation`) revalidate the layout on every call and cost tens of
milliseconds per chart. The net-by-balance figure is also cached on its inputs (never
per-user data: no phone number reaches it).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

import numpy as np
import plotly.graph_objects as go

from core.domain.calendar import SHANGHAI
from core.domain.catalog import Catalog, TieredPercentFee
from core.domain.quotes import Comparison, QuoteRequest, transaction_size
from core.i18n import Translator
from core.money import FEN_PER_YUAN, format_fen
from core.services.quoting import LiveTerms, QuoteService

PALETTE = ("#1677ff", "#07c160", "#e4393c", "#f59a23", "#722ed1", "#13c2c2", "#8c8c8c", "#eb2f96")
_ANY_MOMENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: Room above the plot for the title and, under it, the labels of the marked lines ("today",
#: "your balance"): there they cross neither a curve, a bar, nor an axis.
_MARGIN = {"l": 10, "r": 10, "t": 68, "b": 20}
_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.28, "x": 0}
#: The console's charts (metrics, books) mark no lines above the plot: less room over it.
CONSOLE_MARGIN = {"l": 10, "r": 10, "t": 48, "b": 20, "autoexpand": True}
CONSOLE_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0}
#: How every chart is shown: without plotly's toolbar.
CHART_CONFIG = {"displayModeBar": False}
_LABEL_BACKGROUND = "rgba(255, 255, 255, 0.9)"
#: Two curves closer than this share of the y axis look like one line on screen (a pixel or two);
#: if they are that close over at least `_SHARED_STRETCH` of the balances drawn, the one on top
#: is dashed.
_SAME_ON_SCREEN = 0.01
_SHARED_STRETCH = 0.05


def label(name: str) -> str:
    """A name as plotly shows it as written: plotly reads tags in its labels (<b>, <a href>,
    <span style>), and the own offer's name is the operator's words."""
    return html.escape(name, quote=False)


def chart_title(text: str) -> dict[str, Any]:
    """At the very top, clear of the labels under it."""
    return {"text": text, "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 8}, "font": {"size": 15}}


def _vline(x: Any, color: str, dash: str = "solid", width: int = 1) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "dash": dash, "width": width},
    }


def _label_above(x: Any, share: float, text: str) -> dict[str, Any]:
    """A marked line's label, just above the plot area (on a background), at the line's top;
    `share` is where the line stands across the x axis (0-1), so the label stays inside."""
    anchor = "left" if share < 0.15 else "right" if share > 0.85 else "center"
    return {
        "x": x,
        "y": 1,
        "yref": "paper",
        "yanchor": "bottom",
        "xanchor": anchor,
        "text": text,
        "showarrow": False,
        "bgcolor": _LABEL_BACKGROUND,
        "borderpad": 2,
        "font": {"size": 11, "color": "#262626"},
    }


#: The x axis ends at the first of these (CNY) that leaves room beyond the balance, so most
#: balance changes only move the "your balance" marker and the browser redraws no data.
_AXIS_ENDS_YUAN = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000)
_CACHED_CURVES = 8  # per session


def net_by_balance(
    quotes: QuoteService, terms: LiveTerms, request: QuoteRequest, language: str, cache: MutableMapping[Any, Any]
) -> go.Figure:
    """Net received against balance for every channel, tier edges and limits marked.

    `cache` belongs to one session (the inputs are that user's); the curves are computed on
    the same terms as the comparison they sit under."""
    top = next((end for end in _AXIS_ENDS_YUAN if end * FEN_PER_YUAN >= request.balance_fen * 3 // 2), None)
    top_fen = top * FEN_PER_YUAN if top else 2 * request.balance_fen
    # The curves depend on neither the moment nor the balance itself, only on the axis they span.
    data_key = (terms.version, replace(request, at=_ANY_MOMENT, balance_fen=top_fen), language)
    if data_key not in cache:
        while len(cache) >= _CACHED_CURVES:
            cache.pop(next(iter(cache)))
        cache[data_key] = _net_curves(quotes, terms.catalog, data_key[1], language)
    traces, shapes = cache[data_key]
    t = Translator(language)
    marker = request.balance_fen / FEN_PER_YUAN
    layout = {
        "title": chart_title(t("chart.net_title")),
        "height": 360,
        "margin": _MARGIN,
        "legend": _LEGEND,
        "hovermode": "x unified",
        "datarevision": repr(data_key),
        "uirevision": "net",
        "shapes": [*shapes, _vline(marker, "#262626", width=2)],
        "annotations": [_label_above(marker, request.balance_fen / top_fen, t("chart.your_balance"))],
        "xaxis": {"title": {"text": t("chart.balance_axis")}, "range": [0, top_fen / FEN_PER_YUAN]},
        "yaxis": {"title": {"text": t("chart.net_axis")}},
    }
    return go.Figure({"data": traces, "layout": layout})


def _told_apart(curves: list[tuple[str, np.ndarray, str]]) -> list[tuple[str, np.ndarray, str, bool]]:
    """Curves as drawn, none hiding another unsaid: channels paying the same at every balance
    become one line named for all of them ("A = B"); a curve that covers an earlier one on
    screen over a stretch is dashed (it is drawn on top), so the one beneath shows through.
    (name, y, colour) -> (name, y, colour, dashed)"""
    top = max((int(y.max()) for _, y, _ in curves if len(y)), default=0)
    near = max(1, int(top * _SAME_ON_SCREEN))
    drawn: list[tuple[str, np.ndarray, str, bool]] = []
    for name, y, color in curves:
        same = next((i for i, (_, earlier, _, _) in enumerate(drawn) if np.array_equal(earlier, y)), None)
        if same is not None:
            first, earlier, first_color, dashed = drawn[same]
            drawn[same] = (f"{first} = {name}", earlier, first_color, dashed)
            continue
        covers = any(
            np.count_nonzero((np.abs(earlier - y) <= near) & ((y > 0) | (earlier > 0))) >= _SHARED_STRETCH * len(y)
            for _, earlier, _, _ in drawn
        )
        drawn.append((name, y, color, covers))
    return drawn


def _net_curves(
    quotes: QuoteService, catalog: Catalog, request: QuoteRequest, language: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Curves from 0 to `request.balance_fen`, with fee tier edges and the transaction limits
    (fixed ones and those derived from the credit limit) of the channels drawn."""
    t = Translator(language)
    top = request.balance_fen
    probe = quotes.batch(request, np.array([top]), catalog=catalog)
    drawn = [b.channel for b in probe if b.eligible.any()] or [b.channel for b in probe]
    edges: set[int] = set()
    limits: set[int] = set()
    for channel in drawn:
        if isinstance(channel.fee, TieredPercentFee):
            edges.update(channel.fee.breakpoints())
        size = transaction_size(channel, request.credit_limit_fen)
        if size:
            limits.update(range(size, top + 1, size))
    marks = sorted(edges | limits)[:40]
    around_marks = (np.array(marks, dtype=np.int64)[:, None] + np.array([-1, 0, 1])).ravel()
    grid = np.unique(np.concatenate([np.linspace(0, top, 161).astype(np.int64), around_marks]))
    grid = grid[(grid >= 0) & (grid <= top)]
    x = (grid / FEN_PER_YUAN).tolist()
    curves = [  # each channel keeps its colour (its place in the catalog) whichever are drawn
        (label(batch.channel.display_name(language)), batch.net_fen, PALETTE[i % len(PALETTE)])
        for i, batch in enumerate(quotes.batch(request, grid, catalog=catalog))
        if batch.eligible.any()
    ]
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": (net_fen / FEN_PER_YUAN).tolist(),
            "name": name,
            "line": {"color": color, "width": 2, "dash": "dash" if dashed else "solid"},
            "hovertemplate": "%{y:,.2f}",
        }
        for name, net_fen, color, dashed in _told_apart(curves)
    ]
    shapes = [_vline(fen / FEN_PER_YUAN, "#bfbfbf", "dot") for fen in sorted(limits)[:12]]
    if limits:  # named in the legend: a label on the plot would collide with "your balance"
        shapes[0] |= {"showlegend": True, "name": t("chart.limit", amount=format_fen(min(limits)))}
    shapes += [_vline(fen / FEN_PER_YUAN, "#d9d9d9", "dash") for fen in sorted(edges)]
    return traces, shapes


def eta_window(comparison: Comparison, service: QuoteService, t: Translator) -> go.Figure:
    """Arrival windows as bars on the calendar, days off shaded."""
    eligible = [q for q in comparison.quotes if q.eligible][::-1]
    today = comparison.request.at.astimezone(SHANGHAI).date()
    last = max([q.eta_latest for q in eligible if q.eta_latest] + [today]) + dt.timedelta(days=1)
    bars = {
        "type": "bar",
        "orientation": "h",
        "showlegend": False,
        "marker": {"color": PALETTE[0]},
        "y": [label(q.channel.display_name(t.language)) for q in eligible],
        "base": [q.eta_earliest.isoformat() for q in eligible if q.eta_earliest],
        "x": [
            ((q.eta_latest - q.eta_earliest).days + 1) * 86_400_000 for q in eligible if q.eta_latest and q.eta_earliest
        ],
        "customdata": [
            [t.date(q.eta_earliest), t.date(q.eta_latest)] for q in eligible if q.eta_earliest and q.eta_latest
        ],
        "hovertemplate": "%{customdata[0]} – %{customdata[1]}<extra></extra>",
    }
    legend_swatch = {
        "type": "scatter",
        "x": [None],
        "y": [None],
        "mode": "markers",
        "name": t("chart.day_off"),
        "marker": {"color": "rgba(245,34,45,0.25)", "size": 12, "symbol": "square"},
    }
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": day.isoformat(),
            "y0": 0,
            "y1": 1,
            "x1": (day + dt.timedelta(days=1)).isoformat(),
            "fillcolor": "#f5222d",
            "opacity": 0.08,
            "line": {"width": 0},
            "layer": "below",
        }
        for day in service.calendar.days_off_between(today, last)
    ]
    shapes.append(_vline(today.isoformat(), "#262626"))
    start = today - dt.timedelta(days=1)
    share = (today - start).days / max(1, (last - start).days)
    layout = {
        "title": chart_title(t("chart.eta_title")),
        "height": max(250, 90 + 36 * len(eligible)),
        "margin": _MARGIN,
        "legend": _LEGEND,
        "bargap": 0.35,
        "shapes": shapes,
        "annotations": [_label_above(today.isoformat(), share, t("chart.today"))],
        "xaxis": {
            "type": "date",
            "tickformat": "%m-%d",
            "range": [start.isoformat(), last.isoformat()],
        },
    }
    return go.Figure({"data": [bars, legend_swatch], "layout": layout})


def breakdown(comparison: Comparison, t: Translator) -> go.Figure:
    """Where each channel's share of the balance goes: received, hidden cost, fee, not recovered."""
    eligible = [q for q in comparison.quotes if q.eligible][::-1]
    names = [label(q.channel.display_name(t.language)) for q in eligible]
    balance = comparison.request.balance_fen
    series = [
        (t("chart.net"), [q.net_fen for q in eligible], "#52c41a"),
        (t("chart.hidden"), [q.hidden_cost_fen for q in eligible], "#faad14"),
        (t("chart.fee"), [q.fee_fen for q in eligible], "#f5222d"),
        (t("chart.unrecovered"), [balance - q.recoverable_fen for q in eligible], "#d9d9d9"),
    ]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "y": names,
            "x": [v / FEN_PER_YUAN for v in values],
            "name": label,
            "marker": {"color": color},
            "text": [format_fen(v) if v else "" for v in values],
            "textposition": "inside",
            "hovertemplate": "%{x:,.2f}",
        }
        for label, values, color in series
    ]
    layout = {
        "title": chart_title(t("chart.breakdown_title")),
        "height": max(250, 110 + 36 * len(names)),
        "margin": _MARGIN,
        "legend": _LEGEND,
        "barmode": "stack",
        "hovermode": "y unified",
    }
    return go.Figure({"data": traces, "layout": layout})
