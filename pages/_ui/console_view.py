"""How the operators' console shows cases, requests and decisions, in the reader's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from core.domain.review import APPROVE_REASONS, REJECT_REASONS
from core.i18n import Translator, age_text, local_time
from core.money import format_fen
from core.services.console.approvals import ApprovalView
from core.services.console.queue import Case, Decision
from pages._ui.journey_view import risk_reasons
from pages._ui.plain_text import plain

#: What an operator may decide, as (approve?, reason code), approvals first.
DECISIONS: tuple[tuple[bool, str], ...] = tuple((True, r) for r in APPROVE_REASONS) + tuple(
    (False, r) for r in REJECT_REASONS
)
REASONS = frozenset((*APPROVE_REASONS, *REJECT_REASONS))


def decision_label(decision: tuple[bool, str], t: Translator) -> str:
    approve, reason = decision
    return t("queue.approve_because" if approve else "queue.reject_because", reason=t(f"queue.reason.{reason}"))


def decision_message(decision: Decision) -> str:
    return "queue.sent_for_second" if decision.request is not None else "queue.decided"


def clock_time(moment: dt.datetime) -> str:
    return local_time(moment)[-5:]


def queue_summary(
    cases: Sequence[Case], waiting: int, requests: Sequence[ApprovalView], service_s: float, t: Translator
) -> str:
    """The queue in one line; `waiting` counts every case, `cases` are the oldest shown."""
    oldest = max((c.age_s for c in cases), default=0.0)
    overdue = sum(1 for c in cases if c.overdue)
    return t(
        "queue.summary",
        cases=waiting,
        oldest=age_text(oldest, t) if cases else "—",
        overdue=overdue,
        service=age_text(service_s, t),
        requests=len(requests),
    )


def case_heading(case: Case, names: Mapping[str, str], t: Translator) -> str:
    view = case.view
    badge = (
        f":red-badge[:material/schedule: {age_text(case.age_s, t)}]"
        if case.overdue
        else (f":gray-badge[{age_text(case.age_s, t)}]")
    )
    carrier = t(f"carrier.{case.carrier}") if case.carrier else t("queue.carrier_unknown")
    return (
        f"**{format_fen(view.amount_fen)}** · {names.get(view.channel_id, view.channel_id)} · {carrier} · "
        f"`{view.masked_number}` {badge}  \n"
        f"{t('queue.submitted', time=local_time(view.created_at))} · `{view.id[:8]}`"
    )


def case_details(case: Case, t: Translator) -> str:
    history = case.history
    by_state = ", ".join(f"{t(f'state.{state}')} {n}" for state, n in sorted(history.by_state.items()))
    return "  \n".join(
        [
            t("queue.rules", rules=risk_reasons(case.view, t) or "—"),
            t(
                "queue.history",
                since=local_time(history.account_since)[:10],
                earlier=history.recoveries,
                states=by_state or "—",
                numbers=", ".join(history.numbers) or "—",
                devices=history.devices,
            ),
        ]
    )


def same_number_warning(case: Case, names: Mapping[str, str], t: Translator) -> str:
    others = "; ".join(
        t(
            "queue.other_recovery",
            id=o.id[:8],
            amount=format_fen(o.amount_fen),
            channel=names.get(o.channel_id, o.channel_id),
            state=t(f"state.{o.state.value}"),
            time=local_time(o.created_at),
        )
        for o in case.same_number
    )
    return t("queue.same_number", count=len(case.same_number), others=others)


def reason_text(reason: str, t: Translator) -> str:
    """A review reason in the reader's language; anything that is not a code from the list (a
    request kept before the command line took codes only) as the words it is, never Markdown."""
    if not reason:
        return "—"
    return t(f"queue.reason.{reason}") if reason in REASONS else plain(reason)


def stake_text(request: ApprovalView, t: Translator) -> str:
    """What a request puts at stake, in words: the recovery and part, the amount, the channel, the
    partner's reference and, for a correcting entry, the two amounts it reconciles."""
    stake = request.stake
    pieces = []
    if stake.recovery_id:
        pieces.append(t("queue.stake.recovery", id=stake.recovery_id[:8]))
    if stake.part is not None:
        pieces.append(t("queue.stake.part", part=stake.part))
    if stake.amount_fen is not None:
        pieces.append(t("queue.stake.amount", amount_fen=stake.amount_fen))
    if stake.channel:
        pieces.append(t("queue.stake.channel", channel=stake.channel))
    if stake.reference:
        partner = t("recon.partner.carrier") if stake.partner == "carrier" else t.value("channel", stake.partner)
        pieces.append(t("queue.stake.reference", partner=partner, reference=plain(stake.reference)))
    if stake.ours_fen is not None or stake.theirs_fen is not None:
        ours, theirs = stake.ours_fen or 0, stake.theirs_fen or 0
        pieces.append(t("queue.stake.amounts", ours_fen=ours, theirs_fen=theirs, difference_fen=theirs - ours))
    if not pieces and request.detail.get("display"):  # a deny-list entry: its masked value
        pieces.append(plain(request.detail["display"]))
    return " · ".join(pieces) or f"`{request.subject[:8]}`"


def request_line(request: ApprovalView, t: Translator) -> str:
    note = request.detail.get("note", "")
    return t(
        f"queue.request.{request.action.value}",
        stake=stake_text(request, t),
        name=plain(request.requested_by),
        reason=reason_text(request.detail.get("reason", ""), t),
        note=plain(note) if note else "—",
        until=local_time(request.expires_at),
    )
