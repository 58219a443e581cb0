"""How the console shows recoveries: filters read from and written to the address, result rows,
a recovery's whole record, and stuck cases, in the reader's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.i18n import Translator, local_time
from core.money import format_fen, parse_amount, to_yuan
from core.services.console.recoveries import Cursor, RecoveryDetail, RecoveryFilter, SearchPage
from core.services.console.stuck import PartnerAnswer, StuckCase, StuckPart, stuck_text
from pages._ui.plain_text import plain

#: Filter fields as the address carries them (never a full number: `n` is its blind index).
URL_FIELDS = {
    "id": "recovery_id",
    "ref": "reference",
    "n": "number_index",
    "state": "state",
    "channel": "channel",
    "carrier": "carrier",
}


def filter_from_url(params: Mapping[str, str]) -> RecoveryFilter:
    """The filters a link carries; anything unreadable is dropped, not an error."""
    values: dict[str, object] = {field: str(params.get(key, ""))[:80] for key, field in URL_FIELDS.items()}
    for key, field in (("min", "min_fen"), ("max", "max_fen")):
        try:
            values[field] = parse_amount(params[key]) if params.get(key) else None
        except InputError:
            values[field] = None
    for key, field in (("from", "date_from"), ("to", "date_to")):
        try:
            values[field] = dt.date.fromisoformat(params[key]) if params.get(key) else None
        except ValueError:
            values[field] = None
    return RecoveryFilter(**values)  # type: ignore[arg-type]


def filter_to_url(wanted: RecoveryFilter) -> dict[str, str]:
    params = {key: getattr(wanted, field) for key, field in URL_FIELDS.items() if getattr(wanted, field)}
    if wanted.min_fen is not None:
        params["min"] = f"{to_yuan(wanted.min_fen):.2f}"
    if wanted.max_fen is not None:
        params["max"] = f"{to_yuan(wanted.max_fen):.2f}"
    if wanted.date_from is not None:
        params["from"] = wanted.date_from.isoformat()
    if wanted.date_to is not None:
        params["to"] = wanted.date_to.isoformat()
    return params


def cursor_from_url(text: str) -> Cursor | None:
    """Where the page a link shows starts; an edited or broken one is the first page."""
    at, _, group_id = str(text).partition("|")
    try:
        moment = dt.datetime.fromisoformat(at[:40])
    except ValueError:
        return None
    return Cursor.checked(moment, group_id)


def cursor_to_url(cursor: Cursor) -> str:
    return f"{cursor.created_at.isoformat()}|{cursor.group_id}"


def rows(page: SearchPage, names: Mapping[str, str], t: Translator) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                t("search.col.id"): v.id[:8],
                t("search.col.state"): t(f"state.{v.state.value}"),
                t("search.col.amount"): format_fen(v.amount_fen),
                t("search.col.created"): local_time(v.created_at),
                t("search.col.number"): v.masked_number,
                t("search.col.channel"): names.get(v.channel_id, v.channel_id),
                t("search.col.carrier"): t(f"carrier.{page.carriers[v.id]}") if page.carriers.get(v.id) else "—",
                t("search.col.fee"): format_fen(v.fee_fen),
                t("search.col.parts"): len(v.parts),
            }
            for v in page.views
        ]
    )


def summary(detail: RecoveryDetail, names: Mapping[str, str], t: Translator) -> str:
    v = detail.view
    return t(
        "detail.summary",
        amount=format_fen(v.amount_fen),
        channel=names.get(v.channel_id, v.channel_id),
        network=t(f"carrier.{detail.carrier}") if detail.carrier else "—",
        number=v.masked_number,
        state=t(f"state.{v.state.value}"),
        time=local_time(v.created_at),
    )


def record_tables(detail: RecoveryDetail, t: Translator) -> dict[str, pd.DataFrame]:
    """The record's tables by title: parts, timeline, ledger, partner calls, audit."""
    return {
        "detail.parts": pd.DataFrame(
            [
                {
                    t("col.part"): p.part,
                    t("col.state"): t(f"state.{p.state.value}"),
                    t("col.amount"): format_fen(p.debit_fen),
                    t("search.col.fee"): format_fen(p.fee_fen),
                    t("col.reason"): p.reason or "—",
                    t("col.id"): p.id,
                }
                for p in detail.view.parts
            ]
        ),
        "detail.timeline": pd.DataFrame(
            [
                {
                    t("col.time"): local_time(s.at),
                    t("col.part"): s.part,
                    t("col.event"): t(f"event.{s.event.value}"),
                    t("col.state"): t(f"state.{s.state.value}"),
                    t("col.by"): t(f"actor.{s.by}"),
                    t("col.reason"): s.reason or "—",
                }
                for s in detail.steps
            ]
        ),
        "detail.ledger": pd.DataFrame(
            [
                {
                    t("col.time"): local_time(p.at),
                    t("col.part"): p.part,
                    t("col.event"): t(f"event.{p.event}"),
                    t("col.account"): t(f"ledger.{p.account}"),
                    t("col.amount"): format_fen(p.amount_fen),
                    t("col.entry"): p.entry_id[:8],
                }
                for p in detail.postings
            ]
        ),
        "detail.calls": pd.DataFrame(
            [
                {
                    t("col.part"): c.part,
                    t("col.kind"): t(f"call.{c.kind}"),
                    t("col.due"): local_time(c.available_at),
                    t("col.attempts"): c.attempts,
                    t("col.error"): c.last_error or "—",
                    t("col.done"): local_time(c.done_at) if c.done_at else "—",
                }
                for c in detail.calls
            ]
        ),
        "detail.audit": pd.DataFrame(
            [
                {
                    "#": a.seq,
                    t("col.time"): local_time(a.at),
                    t("col.actor"): actor_text(a.actor),
                    t("col.action"): a.action,
                    t("col.detail"): ", ".join(f"{k}={v}" for k, v in a.detail.items()),
                }
                for a in detail.audit
            ]
        ),
    }


def actor_text(actor: str) -> str:
    """An account id shortened to its first 8 characters; `engine`, `partner:<channel>` whole."""
    return actor[:8] if len(actor) == 36 and actor.count("-") == 4 else actor


def answer_line(answer: PartnerAnswer, part: int, t: Translator) -> str:
    amount = f" · {format_fen(answer.amount_fen)}" if answer.amount_fen is not None else ""
    reason = f" ({plain(answer.reason)})" if answer.reason else ""
    return t(
        "detail.answer",
        part=part,
        call=answer.call,
        ours=t(f"state.{answer.ours.value}"),
        theirs=plain(answer.theirs) + reason,
        amount=amount,
    )


def stuck_line(part: StuckPart, t: Translator) -> str:
    return stuck_text(part, t, plain)  # the partner's own words escaped for Markdown


def stuck_heading(case: StuckCase, names: Mapping[str, str], t: Translator) -> str:
    v = case.view
    carrier = f"{t(f'carrier.{case.carrier}')} · " if case.carrier else ""
    return (
        f"**{format_fen(v.amount_fen)}** · {names.get(v.channel_id, v.channel_id)} · {carrier}`{v.masked_number}` · "
        f"`{v.id[:8]}` · {t(f'state.{v.state.value}')} · {t('queue.submitted', time=local_time(v.created_at))}"
    )


def show_tables(tables: Mapping[str, pd.DataFrame], t: Translator) -> None:
    for title, frame in tables.items():
        st.markdown(f"**{t(title)}**")
        st.dataframe(frame, hide_index=True, width="stretch")
