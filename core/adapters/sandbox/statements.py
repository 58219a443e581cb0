"""The sandbox partners' daily settlement statements: the operations a partner's own book says
took effect on one Asia/Shanghai business day, written in the partner's dialect
(`core.domain.statements`), with optional breaks injected for testing reconciliation:

    missing       rows left out (the partner did not record what we did)
    changed       rows whose amount is changed (by one yuan, up or down)
    duplicated    rows listed twice
    foreign       rows that are not ours (a reference of another merchant)
    next_day      rows dated the next business day (their time moved past midnight)
    summary_off   the summary block's total amount disagrees with the rows by this many fen

Which rows are broken is decided by `seed` (the same seed breaks the same rows), and the
statement says which references it broke (`Produced.broken`), for tests to hold the
reconciliation to.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace

from core.adapters.sandbox.books import PartnerBook, partner_ref
from core.domain.calendar import SHANGHAI
from core.domain.statements import StatementRow, Summary, add_up, write_statement
from core.errors import InputError
from core.statement_dialect_files import dialect_for

KNOBS = ("missing", "changed", "duplicated", "foreign", "next_day")
MAX_BREAKS = 1_000


@dataclass(frozen=True)
class Breaks:
    missing: int = 0
    changed: int = 0
    duplicated: int = 0
    foreign: int = 0
    next_day: int = 0
    summary_off: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in KNOBS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BREAKS:
                raise InputError(
                    f"--{name.replace('_', '-')} is a count from 0 to {MAX_BREAKS}",
                    key="error.statement.knob",
                    knob=name,
                    most=str(MAX_BREAKS),
                )


@dataclass(frozen=True)
class Produced:
    data: bytes
    rows: int
    broken: dict[str, list[str]] = field(default_factory=dict)  # knob -> references it broke


def produce_statement(
    book: PartnerBook, partner: str, day: dt.date, *, until: float, breaks: Breaks | None = None
) -> Produced:
    """The statement of `partner` for Shanghai day `day`, as its book stands at `until`."""
    breaks = breaks or Breaks()
    rows = book.statement_rows(partner, day, until=until)
    rng = random.Random(f"{partner}:{day.isoformat()}:{breaks.seed}")  # noqa: S311 - replayable breaks, not a secret
    paid = [i for i, row in enumerate(rows) if row.status == "success"]
    rng.shuffle(paid)
    picks: dict[str, list[int]] = {}
    for name in ("missing", "changed", "duplicated", "next_day"):
        count = getattr(breaks, name)
        picks[name], paid = paid[:count], paid[count:]
    broken = {name: [rows[i].reference for i in picked] for name, picked in picks.items() if picked}
    out: list[StatementRow] = []
    for i, row in enumerate(rows):
        if i in picks["missing"]:
            continue
        if i in picks["changed"]:
            row = replace(row, amount_fen=max(1, row.amount_fen + rng.choice((-100, 100))))
        if i in picks["next_day"]:
            midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=row.at.tzinfo)
            row = replace(row, at=midnight + dt.timedelta(seconds=rng.randrange(1, 600)))
        out.append(row)
        if i in picks["duplicated"]:
            out.append(row)
    for n in range(breaks.foreign):
        reference = f"OTHER-MERCHANT-{day:%Y%m%d}-{rng.randrange(10**8):08d}-{n}"
        kind = "payout" if partner != "carrier" else "debit"
        moment = dt.datetime.combine(day, dt.time(12), tzinfo=SHANGHAI) + dt.timedelta(seconds=n)
        amount = rng.choice((5_000, 10_000, 29_000))
        out.append(StatementRow(moment, partner_ref(partner, kind, reference), reference, kind, "success", amount))
        broken.setdefault("foreign", []).append(reference)
    summary = None
    if breaks.summary_off:
        totals = add_up(out)
        if totals.amount_fen + breaks.summary_off < 0:
            raise InputError(
                "--summary-off would make the summary's total negative",
                key="error.statement.summary_off",
                most=str(totals.amount_fen),
            )
        summary = Summary(totals.count, totals.amount_fen + breaks.summary_off, totals.fee_fen)
    data = write_statement(out, dialect_for(partner), summary=summary)
    return Produced(data, len(out), broken)
