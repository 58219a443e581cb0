"""Partners' settlement statements (对账单): reading and writing them in each partner's dialect.

A statement is a text file a partner publishes for a day: one row per transaction (time, the
partner's own order id, our reference, kind, status, amount, fee), then a summary block stating
the count and totals. Reconciliation compares the rows with our records and the summary with the
rows; this module only turns bytes into a `Statement` and back, strictly: anything malformed is a
`StatementError` naming the line (1-based) and the problem, whatever the bytes are. (The rows,
the summary and StatementError are defined in core.domain.statement_rows, and exported here.)

The shape of each partner's file is data, one JSON file per dialect in data/statement_dialects/
(loaded by core.statement_dialect_files; partners.json names each partner's dialect, with a
"default"). Two ship:

wechat_pay  modelled on WeChat Pay's merchant statement. UTF-8 CSV, lines ending in CRLF. A
            header row 交易时间,平台订单号,商户订单号,交易类型,交易状态,金额,手续费; every
            value prefixed with a backtick (`) so that spreadsheets keep long order numbers as
            text; kinds 付款 (payout), 扣费 (debit), 退款 (refund); statuses SUCCESS / FAIL.
            After the detail, the summary block: the line 总交易单数,总金额,总手续费 and one line
            of the three figures, backtick-prefixed too (`3,`300.00,`1.80).
alipay      modelled on Alipay's account statement (账务明细). GBK-encoded CSV. `#` comment
            lines before the header (title, #账号：[…], #起始日期：[…]   终止日期：[…], a dashed
            业务明细列表 rule) and after the detail (the dashed 业务明细列表结束 rule, the summary
            line #交易合计：N笔，金额：X元，服务费：Y元, then #导出时间：[…]). Columns 支付宝交易号,
            商户订单号, 发生时间, 业务类型, 状态, 金额（元）, 服务费（元）; kinds 转账 / 扣款 / 退款;
            statuses 成功 / 失败; no value prefix.

Both: times are Asia/Shanghai wall-clock time written `2024-05-01 09:08:07`; amounts are yuan
with exactly two decimals (read through Decimal into integer fen, never a float); a partner's
header may carry extra columns (ignored), but must name all seven.

A dialect file's fields: `encoding`; `comment_prefix` (or null); `value_prefix` (or null);
`time_format` (strftime codes, read back exactly); `line_end` ("\\r\\n" or "\\n"); `columns`,
`kinds`, `statuses` (canonical name -> the partner's text; `columns` in file order); and the fixed
lines as templates: `preamble` (lines before the header), `detail_end` (the line that ends the
detail, or null: then the first summary line does), `summary` (lines stating {count}, {amount} and
{fee} once each: the first starts the block) and `trailer` (lines after it). Preamble and trailer
lines may hold {account}, {first}, {last} and {exported}, which are written and accepted as any
text when read; they, and `detail_end`, must be comment lines. To add a partner's dialect, add
<name>.json beside the others (core.domain.statement_dialects checks every field when it is
loaded, and names what is wrong) and map the partner to it in partners.json.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from core.domain.calendar import SHANGHAI, shanghai_day
from core.domain.statement_dialects import COLUMNS, KINDS, STATUSES, Dialect, LineTemplate
from core.domain.statement_rows import (
    CONTROL,
    PROBLEMS,
    Statement,
    StatementError,
    StatementRow,
    Summary,
    add_up,
    statement_error,
)
from core.money import to_yuan

__all__ = [
    "COLUMNS",
    "KINDS",
    "MAX_STATEMENT_BYTES",
    "PROBLEMS",
    "STATUSES",
    "Dialect",
    "Statement",
    "StatementError",
    "StatementRow",
    "Summary",
    "check_days",
    "check_kinds",
    "parse_statement",
    "statement_error",
    "write_statement",
]

MAX_STATEMENT_BYTES = 32 * 1024 * 1024  # a 200,000-row Alipay day is about 21 MB; a 50 MB upload is refused
_YUAN = re.compile(r"(?:0|[1-9][0-9]{0,12})\.[0-9]{2}")
#: The time format every shipped dialect uses, read without strptime (the slow part of a large file).
_ISO_SECONDS = "%Y-%m-%d %H:%M:%S"
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_COUNT = re.compile(r"0|[1-9][0-9]{0,8}")
_VALUE_LIMIT = 40

# Reading ---------------------------------------------------------------------------------------


def parse_statement(data: bytes, dialect: Dialect, *, max_bytes: int = MAX_STATEMENT_BYTES) -> Statement:
    """Read a statement in `dialect`. Raises StatementError, and nothing else, for any bytes."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise statement_error("binary", 0)
    if len(data) > max_bytes:
        raise statement_error("too_large", 0, size=str(len(data)), limit=str(max_bytes))
    lines = _Lines(_decode(data, dialect))
    columns = _read_header(lines, dialect)
    end = dialect.detail_end or dialect.summary[0]
    lead, everything, number = end.lead, lines.lines, lines.number
    read_plain = _plain_row_reader(columns, dialect)
    rows = []
    while number < len(everything):
        text = everything[number]
        if text.startswith(lead) and end.match(text) is not None:
            break
        number += 1
        row = read_plain(text, number) if read_plain is not None else None
        rows.append(row if row is not None else _read_row(text, number, columns, dialect))
    lines.number = number
    if number == len(everything):
        raise statement_error("missing_summary", number + 1)
    if dialect.detail_end is not None:
        lines.take()
    summary = _read_summary(lines, dialect)
    _read_fixed(lines, dialect.trailer, "truncated")
    if lines.peek() is not None:
        lines.take()
        raise statement_error("unexpected_line", lines.number, value=_clip(lines.current))
    return Statement(dialect.name, tuple(rows), summary)


def check_days(statement: Statement, first: dt.date, last: dt.date) -> None:
    """Refuse a statement with a row dated outside the Beijing days `first`..`last`, naming the
    first such row's line (a year 0001 or 9999 is a broken file, never a business day)."""
    for row in statement.rows:
        if not first <= shanghai_day(row.at) <= last:
            written = row.at.replace(tzinfo=None).isoformat(sep=" ")
            raise statement_error(
                "date_range", row.line, value=_clip(written), first=first.isoformat(), last=last.isoformat()
            )


def check_kinds(statement: Statement, kinds: Iterable[str], dialect: Dialect) -> None:
    """Refuse a statement with a row of a kind the partner never has (a payment partner's payouts
    in the carrier's debits and refunds: another partner's file), naming the first such row's line."""
    allowed = frozenset(kinds)
    for row in statement.rows:
        if row.kind not in allowed:
            raise statement_error("foreign_kind", row.line, value=_clip(dict(dialect.kinds)[row.kind]))


def _decode(data: bytes, dialect: Dialect) -> list[str]:
    """The file's lines (without line ends), after every check that is about bytes and text."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise statement_error("binary", data.count(b"\n", 0, nul) + 1)
    try:
        text = data.decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        raise statement_error("encoding", data.count(b"\n", 0, exc.start) + 1, encoding=dialect.encoding) from None
    control = CONTROL.search(text)
    if control is not None:
        raise statement_error("binary", text.count("\n", 0, control.start()) + 1)
    if not text:
        raise statement_error("missing_header", 1)
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1]:
        raise statement_error("truncated", len(lines))
    return [line.removesuffix("\r") for line in lines[:-1]]


class _Lines:
    """A cursor over the lines; `number` is the 1-based number of the line last taken."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.number = lines, 0

    def peek(self) -> str | None:
        return self.lines[self.number] if self.number < len(self.lines) else None

    def take(self) -> str:
        self.number += 1
        return self.lines[self.number - 1]

    @property
    def current(self) -> str:
        return self.lines[self.number - 1]


def _read_fixed(lines: _Lines, templates: Sequence[LineTemplate], missing: str) -> list[dict[str, str]]:
    found = []
    for template in templates:
        if lines.peek() is None:
            raise statement_error(missing, lines.number + 1)
        values = template.match(lines.take())
        if values is None:
            problem = "bad_summary" if missing == "missing_summary" else "unexpected_line"
            raise statement_error(problem, lines.number, value=_clip(lines.current))
        found.append(values)
    return found


def _fields(line: str, number: int) -> list[str]:
    if '"' not in line:  # nothing quoted: what the csv module would read, without it
        return line.split(",") if line else []
    try:
        return next(csv.reader((line,), strict=True), [])
    except csv.Error:
        raise statement_error("bad_csv", number) from None


def _read_header(lines: _Lines, dialect: Dialect) -> dict[str, int]:
    """The position of each canonical column, and (under "") the number of fields a row has."""
    _read_fixed(lines, dialect.preamble, "missing_header")
    if lines.peek() is None:
        raise statement_error("missing_header", lines.number + 1)
    names = _fields(lines.take(), lines.number)
    wanted = {header: column for column, header in dialect.columns}
    positions: dict[str, int] = {"": len(names)}
    for index, name in enumerate(names):
        if name in wanted and wanted[name] in positions:
            raise statement_error("bad_header", lines.number, value=_clip(name))
        if name in wanted:
            positions[wanted[name]] = index
    absent = [header for column, header in dialect.columns if column not in positions]
    if len(absent) == len(dialect.columns):
        raise statement_error("missing_header", lines.number)
    if absent:
        raise statement_error("missing_columns", lines.number, columns=", ".join(absent))
    return positions


def _plain_row_reader(
    positions: Mapping[str, int], dialect: Dialect
) -> Callable[[str, int], StatementRow | None] | None:
    """A reader of the common row, for a large file: one regular expression that matches only a
    well-formed unquoted row of this header (every value in place, prefixed, of its form), and
    the row built from its groups. It answers None for any other line, which the strict reader
    (`_read_row`) then reads or names the problem of, so the two accept exactly the same rows.
    None when the dialect's times are not ISO (then every row is read strictly)."""
    if dialect.time_format != _ISO_SECONDS:
        return None
    kinds = {written: canonical for canonical, written in dialect.kinds}
    statuses = {written: canonical for canonical, written in dialect.statuses}
    forms = {
        "at": _ISO_TIME.pattern,
        "partner_ref": '[^,"]+',
        "reference": '[^,"]+',
        "kind": "|".join(map(re.escape, kinds)),
        "status": "|".join(map(re.escape, statuses)),
        "amount": _YUAN.pattern,
        "fee": _YUAN.pattern,
    }
    in_file = {index: column for column, index in positions.items() if column}
    parts, order = [], []
    for index in range(positions[""]):
        column = in_file.get(index)
        if column is None:  # a column the partner adds: ignored, as the strict reader does
            parts.append('[^,"]*')
        else:
            parts.append(f"{re.escape(dialect.value_prefix)}({forms[column]})")
            order.append(column)
    fullmatch = re.compile(",".join(parts)).fullmatch
    at, partner_ref, ref, kind, status, amount, fee = (order.index(c) for c in forms)
    from_iso = dt.datetime.fromisoformat

    def read(text: str, number: int) -> StatementRow | None:
        found = fullmatch(text)
        if found is None:
            return None
        values = found.groups()
        fen = int(values[amount].replace(".", ""))  # exact: digits, a point and two decimals
        if fen == 0:
            return None  # the strict reader names it
        try:
            moment = from_iso(values[at]).replace(tzinfo=SHANGHAI)
        except ValueError:  # 2026-02-30: the strict reader names it
            return None
        return StatementRow.read(
            moment,
            values[partner_ref],
            values[ref],
            kinds[values[kind]],
            statuses[values[status]],
            fen,
            int(values[fee].replace(".", "")),
            number,
        )

    return read


def _read_row(text: str, number: int, positions: Mapping[str, int], dialect: Dialect) -> StatementRow:
    fields = _fields(text, number)
    if len(fields) != positions[""]:
        raise statement_error("field_count", number, found=str(len(fields)), expected=str(positions[""]))
    values = {}
    for column, header in dialect.columns:
        value = fields[positions[column]]
        if not value.startswith(dialect.value_prefix):
            raise statement_error("bad_prefix", number, value=_clip(value), column=header, prefix=dialect.value_prefix)
        values[column] = value[len(dialect.value_prefix) :]
        if not values[column]:
            raise statement_error("missing_value", number, column=header)
    return StatementRow(
        at=_read_time(values["at"], number, dialect),
        partner_ref=values["partner_ref"],
        reference=values["reference"],
        kind=_read_choice(values["kind"], dialect.kinds, "unknown_kind", number),
        status=_read_choice(values["status"], dialect.statuses, "unknown_status", number),
        amount_fen=_read_fen(values["amount"], number, dialect.header("amount"), positive=True),
        fee_fen=_read_fen(values["fee"], number, dialect.header("fee")),
        line=number,
    )


def _read_time(text: str, number: int, dialect: Dialect) -> dt.datetime:
    try:
        if dialect.time_format == _ISO_SECONDS:  # ASCII digits in fixed places; the date itself checked
            exact = _ISO_TIME.fullmatch(text) is not None
            moment = dt.datetime.fromisoformat(text) if exact else dt.datetime.min
        else:
            moment = dt.datetime.strptime(text, dialect.time_format)
            exact = moment.strftime(dialect.time_format) == text  # refuses 2024-5-1 and full-width digits
    except (ValueError, OverflowError):
        exact = False
    if not exact:
        raise statement_error("bad_time", number, value=_clip(text), example=dialect.time_example())
    return moment.replace(tzinfo=SHANGHAI)


def _read_choice(text: str, choices: tuple[tuple[str, str], ...], problem: str, number: int) -> str:
    for canonical, written in choices:
        if text == written:
            return canonical
    raise statement_error(problem, number, value=_clip(text))


def _read_fen(text: str, number: int, column: str, *, positive: bool = False) -> int:
    if not _YUAN.fullmatch(text):
        raise statement_error("bad_amount", number, value=_clip(text), column=column)
    fen = int(text[:-3]) * 100 + int(text[-2:])  # exact: _YUAN allows digits, a point and two decimals
    if positive and fen == 0:
        raise statement_error("zero_amount", number, column=column)
    return fen


def _read_summary(lines: _Lines, dialect: Dialect) -> Summary:
    figures: dict[str, tuple[str, int]] = {}
    for template in dialect.summary:
        start = lines.number + 1
        (values,) = _read_fixed(lines, (template,), "missing_summary")
        figures |= {name: (text, start) for name, text in values.items()}
    count, count_line = figures["count"]
    if not _COUNT.fullmatch(count):
        raise statement_error("bad_count", count_line, value=_clip(count))
    amount = _read_fen(*figures["amount"], dialect.header("amount"))
    return Summary(int(count), amount, _read_fen(*figures["fee"], dialect.header("fee")))


def _clip(text: str) -> str:
    return text[:_VALUE_LIMIT]


# Writing ---------------------------------------------------------------------------------------


class _Text:
    """What csv.writer writes to: the file's text, in pieces."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


def write_statement(
    rows: Sequence[StatementRow],
    dialect: Dialect,
    *,
    summary: Summary | None = None,
    account: str = "",
    exported_at: dt.datetime | None = None,
) -> bytes:
    """The statement's bytes in `dialect`. `summary` defaults to the rows' totals (pass another
    to state a disagreeing one); `account` and `exported_at` fill the dialect's preamble and
    trailer lines (the export time defaults to the last row's time, so the same rows always give
    the same bytes). ValueError for what the dialect cannot carry."""
    summary = add_up(rows) if summary is None else summary
    times = sorted(row.at for row in rows)
    if exported_at is None and times:
        exported_at = times[-1]
    free = {
        "account": account,
        "first": _time_text(times[0], dialect) if times else "",
        "last": _time_text(times[-1], dialect) if times else "",
        "exported": _time_text(exported_at, dialect) if exported_at else "",
    }
    text = _Text()
    _write_fixed(text, dialect.preamble, free, dialect)
    writer = csv.writer(text, lineterminator=dialect.line_end)
    writer.writerow([header for _, header in dialect.columns])
    for row in rows:
        writer.writerow([dialect.value_prefix + _cell(row, column, dialect) for column, _ in dialect.columns])
    _write_fixed(text, [dialect.detail_end] if dialect.detail_end else [], {}, dialect)
    if summary.count < 0 or not _COUNT.fullmatch(str(summary.count)):
        raise ValueError(f"summary count {summary.count} cannot be written")
    figures = {"count": str(summary.count), "amount": _yuan(summary.amount_fen), "fee": _yuan(summary.fee_fen)}
    _write_fixed(text, dialect.summary, figures, dialect)
    _write_fixed(text, dialect.trailer, free, dialect)
    try:
        return "".join(text.parts).encode(dialect.encoding)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{dialect.encoding} cannot carry {exc.object[exc.start : exc.end]!r}") from None


def _write_fixed(text: _Text, templates: Iterable[LineTemplate], values: Mapping[str, str], dialect: Dialect) -> None:
    for template in templates:
        line = template.fill(values)
        if template.match(line) is None or CONTROL.search(line) or "\n" in line:
            raise ValueError(f"{line[:60]!r} cannot be written as one line of the {dialect.name} dialect")
        text.write(line + dialect.line_end)


def _cell(row: StatementRow, column: str, dialect: Dialect) -> str:
    if column == "at":
        return _time_text(row.at, dialect)
    if column in ("amount", "fee"):
        return _yuan(row.amount_fen if column == "amount" else row.fee_fen)
    if column in ("kind", "status"):
        return dict(dialect.kinds)[row.kind] if column == "kind" else dict(dialect.statuses)[row.status]
    return row.partner_ref if column == "partner_ref" else row.reference


def _time_text(moment: dt.datetime, dialect: Dialect) -> str:
    return moment.astimezone(SHANGHAI).strftime(dialect.time_format)


def _yuan(fen: int) -> str:
    text = f"{to_yuan(fen):f}"
    if fen < 0 or not _YUAN.fullmatch(text):
        raise ValueError(f"{fen} fen cannot be written as an amount")
    return text
