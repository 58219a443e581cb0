"""Tables for the pages: quotes as rows in the user's language."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Iterable

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from core.domain.catalog import Channel
from core.domain.quotes import CHANNEL_PARAMS, ChannelQuote, Comparison, Reason, transaction_size
from core.i18n import Translator, local_time
from core.money import PPM, format_fen, format_ppm_percent
from core.services.quoting import LiveTerms

#: Column order: what a reader needs first (what they get, when, and why not) on the left.
COLUMNS = (
    "rank",
    "channel",
    "net",
    "eta",
    "note",
    "form",
    "fee",
    "hidden",
    "rate",
    "recoverable",
    "transactions",
    "terms",
)


#: What decides a choice, shown whole in the compact table and on each card; the rest on demand.
DECIDING = ("channel", "net", "eta", "form", "note")
DETAILS = tuple(c for c in COLUMNS if c not in DECIDING and c != "rank")


def reason_text(
    reason: Reason | None, t: Translator, channels: Iterable[Channel], *, name: Callable[[str], str] = str
) -> str:
    """A reason in the reader's language, each channel it names by its catalog name (a reason
    carries channel ids, e.g. the best channel and the runner-up it ties with), passed through
    `name` (`plain` where the text goes into Markdown: the own offer's name is staff's words)."""
    if reason is None:
        return ""
    names = {c.id: name(c.display_name(t.language)) for c in channels}
    params = {k: names.get(v, v) if k in CHANNEL_PARAMS else v for k, v in reason.params.items()}
    return t(reason.key, **params)


def eta_text(quote: ChannelQuote, t: Translator) -> str:
    if quote.eta_earliest is None or quote.eta_latest is None:
        return ""
    text = t.date(quote.eta_earliest)
    if quote.eta_latest != quote.eta_earliest:
        text = t("eta.range", first=text, last=t.date(quote.eta_latest))
    return text + (" *" if quote.eta_estimated else "")


def limits_note(quote: ChannelQuote, comparison: Comparison, t: Translator) -> str:
    """Which limits shaped this quote: a split into several transactions, balance left behind."""
    request = comparison.request
    notes = []
    if quote.transactions > 1:
        size = transaction_size(quote.channel, request.credit_limit_fen)
        notes.append(t("note.split", count=quote.transactions, size_fen=size))
    if quote.recoverable_fen < request.balance_fen:
        notes.append(t("note.kept", kept_fen=request.balance_fen - quote.recoverable_fen))
    return "; ".join(notes)


def _row(quote: ChannelQuote, comparison: Comparison, t: Translator, confirmed: str) -> dict[str, str]:
    form = t(f"payout_form.{quote.channel.payout_form.value}")
    row = {"channel": quote.channel.display_name(t.language), "form": form, "terms": confirmed}
    if not quote.eligible:
        channels = (q.channel for q in comparison.quotes)
        return {**row, "rank": "—", "net": "—", "note": reason_text(quote.reason, t, channels)}
    if quote.payout_value_ppm != PPM:
        row["form"] = f"{form} ({format_ppm_percent(quote.payout_value_ppm)})"
    return {
        **row,
        "rank": str(quote.rank),
        "net": format_fen(quote.net_fen),
        "eta": eta_text(quote, t),
        "note": limits_note(quote, comparison, t),
        "fee": format_fen(quote.fee_fen),
        "hidden": format_fen(quote.hidden_cost_fen),
        "rate": format_ppm_percent(quote.effective_rate_ppm or 0),
        "recoverable": format_fen(quote.recoverable_fen),
        "transactions": str(quote.transactions),
    }


def comparison_rows(comparison: Comparison, t: Translator, terms: LiveTerms) -> list[dict[str, str]]:
    """One row per channel (keys: `COLUMNS`), in the comparison's order, every value as shown."""
    confirmed = {ct.channel.id: local_time(ct.confirmed_at) for ct in terms.by_channel}
    rows = [_row(q, comparison, t, confirmed[q.channel.id]) for q in comparison.quotes]
    return [{c: row.get(c, "") for c in COLUMNS} for row in rows]


def table_of(rows: list[dict[str, str]], t: Translator) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS)).rename(columns={c: t(f"col.{c}") for c in COLUMNS})


def deciding_columns(t: Translator) -> list[str]:
    """The compact table's columns (`st.dataframe(column_order=...)`): what decides a choice."""
    return [t(f"col.{c}") for c in DECIDING]


_CELL_PADDING_PX = 18  # the grid's padding either side of a cell's text, and a little air
_MAX_COLUMN_PX = 420
_NARROW = frozenset(" .,;:()[]'|!ijlft-/")


def _text_px(text: str) -> int:
    """About how wide the grid draws `text` (14 px Source Sans; CJK characters are square),
    a little over rather than under."""
    width = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in "WF":
            width += 14
        elif ch in _NARROW:
            width += 4
        elif ch.isdigit() or ch == "¥":
            width += 7
        elif ch.isupper():
            width += 8.5
        elif ch.islower():
            width += 6.5
        else:
            width += 8
    return round(width * 1.02)


def fitted_widths(rows: list[dict[str, str]], t: Translator) -> dict[str, st.column_config.Column]:
    """Each column as wide as its longest value (or title), so none is cut mid-word: the grid
    would otherwise size columns on its own and shorten the arrival window or the note."""
    config = {}
    for c in COLUMNS:
        title = t(f"col.{c}")
        widest = max([_text_px(title) + 8, *(_text_px(row[c]) for row in rows)])  # + the bolder title
        config[title] = st.column_config.TextColumn(width=min(_MAX_COLUMN_PX, widest + _CELL_PADDING_PX))
    return config


def grey_out_ineligible(frame: pd.DataFrame, comparison: Comparison) -> Styler:
    eligible = [q.eligible for q in comparison.quotes]

    def style(row: pd.Series) -> list[str]:
        return [""] * len(row) if eligible[row.name] else ["color: #a0a0a0"] * len(row)

    return frame.style.apply(style, axis=1)


# --- the comparison as cards, for a narrow screen ---------------------------------------------

#: The ranked comparison is drawn twice, as a table and as cards, and the width it gets (known
#: only to the browser) picks one: the table when its deciding columns fit side by side (a
#: laptop), else a card per channel (a phone), read without scrolling sideways. The containers
#: are Streamlit containers with these keys (CSS class `st-key-<key>`); the cards say how wide
#: the table needs to be (class `cmp-need-<px>`, in steps), a CSS container query does the rest.
RANKED, TABLE, CARDS = "compare_ranked", "compare_table", "compare_cards"
_NEED_STEP_PX, _NEED_MIN_PX, _NEED_MAX_PX = 20, 480, 1200
_TABLE_BORDER_PX = 4


def _need_rules() -> str:
    rules = []
    for need in range(_NEED_MIN_PX, _NEED_MAX_PX + 1, _NEED_STEP_PX):
        has = f".st-key-{RANKED}:has(.cmp-need-{need})"
        rules.append(f"@container (max-width: {need - 1}px) {{ {has} .st-key-{TABLE} {{ display: none; }} }}")
        rules.append(f"@container (min-width: {need}px) {{ {has} .st-key-{CARDS} {{ display: none; }} }}")
    return "\n".join(rules)


CARD_STYLE = f"""<style>
.st-key-{RANKED} {{ container-type: inline-size; }}
{_need_rules()}
.cmp-cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 0.5rem; }}
.cmp-card {{ border: 1px solid rgba(128, 128, 128, 0.3); border-radius: 0.5rem; padding: 0.5rem 0.75rem;
  min-width: 0; overflow-wrap: anywhere; }}
.cmp-card.cmp-out {{ opacity: 0.6; }}
.cmp-head {{ display: flex; justify-content: space-between; align-items: baseline; gap: 0.5rem; }}
.cmp-name {{ font-weight: 600; }}
.cmp-net {{ font-weight: 600; font-size: 1.15rem; white-space: nowrap; font-variant-numeric: tabular-nums; }}
.cmp-card dl {{ display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.1rem 0.75rem;
  margin: 0.25rem 0 0; padding: 0; font-size: 0.9rem; }}
.cmp-card dt {{ opacity: 0.7; font-weight: normal; margin: 0; padding: 0; }}
.cmp-card dd {{ margin: 0; padding: 0; }}
.cmp-card details {{ margin-top: 0.25rem; font-size: 0.9rem; }}
.cmp-card summary {{ cursor: pointer; opacity: 0.8; }}
</style>"""


def table_need_px(rows: list[dict[str, str]], t: Translator) -> int:
    """How wide the compact table must be to show its columns whole, rounded up to a step."""
    widths = fitted_widths(rows, t)
    need = sum(int(widths[t(f"col.{c}")]["width"]) for c in DECIDING) + _TABLE_BORDER_PX
    stepped = -(-need // _NEED_STEP_PX) * _NEED_STEP_PX
    return min(_NEED_MAX_PX, max(_NEED_MIN_PX, stepped))


def _pairs(row: dict[str, str], columns: Iterable[str], t: Translator) -> str:
    return "".join(
        f"<dt>{html.escape(t(f'col.{c}'))}</dt><dd>{html.escape(row[c])}</dd>" for c in columns if row.get(c)
    )


def channel_cards(rows: list[dict[str, str]], t: Translator) -> str:
    """One card per channel: name, what you receive, when, in what form, which limit shaped it;
    the other figures folded under "details". HTML for `st.html` (every value escaped), styled
    by `CARD_STYLE`."""
    cards = []
    for row in rows:
        eligible = row["rank"] != "—"
        head = f"{row['rank']} · {row['channel']}" if eligible else row["channel"]
        cards.append(
            f'<section class="cmp-card{"" if eligible else " cmp-out"}">'
            f'<div class="cmp-head"><span class="cmp-name">{html.escape(head)}</span>'
            f'<span class="cmp-net">{html.escape(row["net"])}</span></div>'
            f"<dl>{_pairs(row, DECIDING[2:], t)}</dl>"
            f"<details><summary>{html.escape(t('compare.details'))}</summary>"
            f"<dl>{_pairs(row, DETAILS, t)}</dl></details>"
            "</section>"
        )
    return f'<div class="cmp-cards cmp-need-{table_need_px(rows, t)}">{"".join(cards)}</div>'
