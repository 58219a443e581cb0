"""What a settlement statement holds (rows and the summary it states) and what can be wrong
with one (StatementError, one key per problem). Reading and writing are in core.domain.statements.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.domain.statement_dialects import KINDS, STATUSES
from core.errors import InputError

#: No text statement holds these: C0 controls but tab and line feed, DEL, C1 controls, Unicode's
#: line separators and non-characters, and a carriage return inside a line (one last in the file
#: is a line end cut off: "truncated").
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]|\r(?=[^\n])")

#: Every problem a StatementError names (its key is "error.statement.<problem>"), with the
#: English message; the parameters are strings, and `line` is "0" when it is not about a line.
PROBLEMS: Mapping[str, str] = {
    "unknown_dialect": "There is no statement dialect called “{dialect}”.",
    "too_large": "The statement is {size} bytes; at most {limit} bytes are read.",
    "binary": "Line {line}: a NUL byte or control character; this is not a text statement.",
    "encoding": "Line {line}: not valid {encoding} text.",
    "truncated": "Line {line}: the file ends early; it was cut off.",
    "missing_header": "Line {line}: the header row is missing.",
    "missing_columns": "Line {line}: the header lacks the column(s) {columns}.",
    "bad_header": "Line {line}: the column “{value}” appears more than once.",
    "unexpected_line": "Line {line}: “{value}” is not the line this statement format has here.",
    "bad_csv": "Line {line}: not a valid CSV line (check the quotes).",
    "field_count": "Line {line}: {found} fields, where the header has {expected}.",
    "bad_prefix": "Line {line}: the value “{value}” in {column} lacks the “{prefix}” prefix.",
    "missing_value": "Line {line}: {column} is empty.",
    "bad_time": "Line {line}: “{value}” is not a time like {example}.",
    "date_range": "Line {line}: “{value}” is not a day a statement can cover (from {first} to {last}).",
    "bad_amount": "Line {line}: “{value}” in {column} is not an amount in yuan with two decimals.",
    "zero_amount": "Line {line}: the amount in {column} is zero.",
    "unknown_kind": "Line {line}: “{value}” is not a transaction type this statement format knows.",
    "foreign_kind": (
        "Line {line}: a “{value}” row, which this partner's statements never hold: is it another partner's statement?"
    ),
    "unknown_status": "Line {line}: “{value}” is not a status this statement format knows.",
    "missing_summary": "Line {line}: the summary block is missing.",
    "bad_summary": "Line {line}: “{value}” is not the summary line this statement format has here.",
    "bad_count": "Line {line}: “{value}” is not a count of transactions.",
}


class StatementError(InputError):
    """A statement that cannot be read: key error.statement.<problem>, with `line` and `problem`."""

    key = "error.statement"


def statement_error(problem: str, line: int = 0, **params: str) -> StatementError:
    texts = {name: str(value) for name, value in {"line": str(line), "problem": problem, **params}.items()}
    return StatementError(PROBLEMS[problem].format(**texts), key=f"error.statement.{problem}", **texts)


@dataclass(frozen=True)
class StatementRow:
    """One transaction as a partner states it. `at` is aware (read as Asia/Shanghai)."""

    at: dt.datetime
    partner_ref: str
    reference: str
    kind: str
    status: str
    amount_fen: int
    fee_fen: int = 0
    line: int = field(default=0, compare=False)

    @classmethod
    def read(
        cls,
        at: dt.datetime,
        partner_ref: str,
        reference: str,
        kind: str,
        status: str,
        amount_fen: int,
        fee_fen: int,
        line: int,
    ) -> StatementRow:
        """A row from values a statement reader has already checked as __post_init__ does (an
        aware time, a known kind and status, a positive amount, one line of text): built
        without checking them again, which is most of the cost of a 200,000-row file."""
        row = object.__new__(cls)
        row.__dict__.update(
            at=at,
            partner_ref=partner_ref,
            reference=reference,
            kind=kind,
            status=status,
            amount_fen=amount_fen,
            fee_fen=fee_fen,
            line=line,
        )
        return row

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.at, dt.datetime) or self.at.utcoffset() is None:
            problems.append("at must be an aware datetime")
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {KINDS}")
        if self.status not in STATUSES:
            problems.append(f"status {self.status!r} is not one of {STATUSES}")
        if type(self.amount_fen) is not int or self.amount_fen <= 0:
            problems.append("amount_fen must be a positive int")
        if type(self.fee_fen) is not int or self.fee_fen < 0:
            problems.append("fee_fen must be a non-negative int")
        problems += [
            f"{name} must be one line of printable text"
            for name in ("partner_ref", "reference")
            if not _is_text(getattr(self, name))
        ]
        if problems:
            raise ValueError("; ".join(problems))


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value) and CONTROL.search(value) is None and "\n" not in value


@dataclass(frozen=True)
class Summary:
    count: int
    amount_fen: int
    fee_fen: int


@dataclass(frozen=True)
class Statement:
    dialect: str
    rows: tuple[StatementRow, ...]
    summary: Summary  # as the file states it: the caller compares it with totals()

    def totals(self) -> Summary:
        return add_up(self.rows)


def add_up(rows: Iterable[StatementRow]) -> Summary:
    """The rows added up: their count, amount and fee."""
    rows = tuple(rows)
    return Summary(len(rows), sum(r.amount_fen for r in rows), sum(r.fee_fen for r in rows))
