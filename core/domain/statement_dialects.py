"""What a partner's settlement-statement file looks like, as data: a `Dialect`.

A dialect is read from a small JSON file (data/statement_dialects/<name>.json, loaded by
core.statement_dialect_files) and checked here, field by field, so that a wrong file is refused
when it is loaded and names the field, never half-way through reading a statement. The format of
the files, and the two dialects the portal ships, are described in core.domain.statements.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import ReferenceDataError

#: The canonical columns, in the order a row is checked (and a problem reported).
COLUMNS = ("at", "partner_ref", "reference", "kind", "status", "amount", "fee")
KINDS = ("payout", "debit", "refund")
STATUSES = ("success", "failed")
#: What each part of the file may fill in. Summary figures are read back; the others are written
#: (account, first and last time of the rows, export time) and accepted as any text when read.
SUMMARY_FIGURES = ("count", "amount", "fee")
FREE_TEXT = ("account", "first", "last", "exported")
#: A fixed line is never longer than this; a longer line is not compared with a template (which
#: also keeps matching a template linear in practice, whatever the input).
MAX_TEMPLATE_LINE = 300

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_KEYS = {
    "description",
    "encoding",
    "comment_prefix",
    "value_prefix",
    "time_format",
    "columns",
    "kinds",
    "statuses",
    "preamble",
    "detail_end",
    "summary",
    "trailer",
    "line_end",
}
_SAMPLE_TIME = dt.datetime(2024, 5, 1, 9, 8, 7)


@dataclass(frozen=True)
class LineTemplate:
    """One fixed line of a statement, with `{name}` placeholders ("#交易合计：{count}笔")."""

    text: str
    names: tuple[str, ...] = field(init=False, compare=False)
    pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        parts, names, position = [], [], 0
        for found in _PLACEHOLDER.finditer(self.text):
            parts += [re.escape(self.text[position : found.start()]), f"(?P<{found[1]}>.*?)"]
            names.append(found[1])
            position = found.end()
        parts.append(re.escape(self.text[position:]))
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "pattern", re.compile("".join(parts), re.DOTALL))

    @property
    def lead(self) -> str:
        """The fixed text before the first placeholder: a line without it cannot match."""
        first = _PLACEHOLDER.search(self.text)
        return self.text if first is None else self.text[: first.start()]

    def match(self, line: str) -> dict[str, str] | None:
        """The placeholders' text when `line` has this shape, else None."""
        if len(line) > MAX_TEMPLATE_LINE:
            return None
        found = self.pattern.fullmatch(line)
        return None if found is None else found.groupdict()

    def fill(self, values: Mapping[str, str]) -> str:
        return _PLACEHOLDER.sub(lambda found: values[found[1]], self.text)


@dataclass(frozen=True)
class Dialect:
    """How one partner writes a statement. `columns` is in file order: (canonical, header)."""

    name: str
    encoding: str
    comment_prefix: str | None
    value_prefix: str
    time_format: str
    columns: tuple[tuple[str, str], ...]
    kinds: tuple[tuple[str, str], ...]
    statuses: tuple[tuple[str, str], ...]
    preamble: tuple[LineTemplate, ...]
    detail_end: LineTemplate | None
    summary: tuple[LineTemplate, ...]
    trailer: tuple[LineTemplate, ...]
    line_end: str = "\r\n"
    description: str = ""

    def header(self, column: str) -> str:
        return dict(self.columns)[column]

    def time_example(self) -> str:
        return _SAMPLE_TIME.strftime(self.time_format)


class _Checker:
    """Collects what is wrong with one dialect file, to refuse it in one message."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, entry: str, reason: str) -> None:
        self.problems.append(f"{entry}: {reason}")

    def text(self, data: Mapping[str, Any], entry: str, *, optional: bool = False) -> str | None:
        value = data.get(entry)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value or "\n" in value or "\r" in value:
            self.fail(entry, "give one line of text" + (" or null" if optional else ""))
            return None
        return value

    def mapping(self, data: Mapping[str, Any], entry: str, canonical: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        value = data.get(entry)
        if not isinstance(value, dict) or set(value) != set(canonical):
            self.fail(entry, f"give an object with exactly the keys {', '.join(canonical)}")
            return ()
        texts = list(value.values())
        if not all(isinstance(t, str) and t and t == t.strip() and t.isprintable() for t in texts):
            self.fail(entry, "every value is printable text without surrounding spaces")
        elif len(set(texts)) != len(texts):
            self.fail(entry, "two keys have the same text")
        return tuple((str(k), str(v)) for k, v in value.items())

    def templates(self, data: Mapping[str, Any], entry: str, allowed: tuple[str, ...]) -> tuple[LineTemplate, ...]:
        value = data.get(entry, [])
        if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
            self.fail(entry, "give a list of lines")
            return ()
        return tuple(t for line in value if (t := self.template(line, entry, allowed)) is not None)

    def template(self, line: object, entry: str, allowed: tuple[str, ...]) -> LineTemplate | None:
        if not isinstance(line, str):
            self.fail(entry, "give a line of text")
            return None
        names = _PLACEHOLDER.findall(line)
        if not line or not line.isprintable() or len(line) > MAX_TEMPLATE_LINE // 2:
            self.fail(entry, f"{line[:40]!r} is not one short printable line")
        elif unknown := [n for n in names if n not in allowed]:
            self.fail(entry, f"unknown placeholder {{{unknown[0]}}} (allowed: {', '.join(allowed) or 'none'})")
        elif len(set(names)) != len(names) or "{" in _PLACEHOLDER.sub("", line) or "}" in _PLACEHOLDER.sub("", line):
            self.fail(entry, f"{line[:40]!r}: each placeholder once, and no other braces")
        else:
            return LineTemplate(line)
        return None


def dialect_from_dict(name: str, data: Any, *, source: str = "") -> Dialect:
    """Check a dialect file's content and build the `Dialect`; ReferenceDataError names the
    fields that are wrong."""
    check = _Checker()
    if not isinstance(data, dict):
        data = {}
        check.fail("(file)", "give a JSON object")
    for entry in sorted(set(data) - _KEYS):
        check.fail(entry, "not a dialect field")
    encoding = check.text(data, "encoding") or "utf-8"
    try:
        "交易,`#".encode(encoding)
    except (LookupError, UnicodeError):
        check.fail("encoding", f"{encoding!r} is not an encoding that can write Chinese")
    comment = check.text(data, "comment_prefix", optional=True)
    prefix = check.text(data, "value_prefix", optional=True) or ""
    if any(c in prefix for c in ',"') or (comment and prefix.startswith(comment)):
        check.fail("value_prefix", "no comma or quote, and not the comment prefix")
    time_format = check.text(data, "time_format") or "%Y-%m-%d %H:%M:%S"
    try:
        if dt.datetime.strptime(_SAMPLE_TIME.strftime(time_format), time_format) != _SAMPLE_TIME:
            check.fail("time_format", "does not give back the seconds it writes")
    except ValueError:
        check.fail("time_format", "cannot read back the times it writes")
    line_end = data.get("line_end", "\r\n")
    if line_end not in ("\r\n", "\n"):
        check.fail("line_end", 'give "\\r\\n" or "\\n"')
    columns = check.mapping(data, "columns", COLUMNS)
    dialect = Dialect(
        name=name,
        encoding=encoding,
        comment_prefix=comment,
        value_prefix=prefix,
        time_format=time_format,
        columns=columns,
        kinds=check.mapping(data, "kinds", KINDS),
        statuses=check.mapping(data, "statuses", STATUSES),
        preamble=check.templates(data, "preamble", FREE_TEXT),
        detail_end=None if data.get("detail_end") is None else check.template(data["detail_end"], "detail_end", ()),
        summary=check.templates(data, "summary", SUMMARY_FIGURES),
        trailer=check.templates(data, "trailer", FREE_TEXT),
        line_end=line_end if isinstance(line_end, str) else "\r\n",
        description=str(data.get("description", "")),
    )
    _check_layout(dialect, check)
    if check.problems:
        raise ReferenceDataError(
            f"statement dialect {name} ({source}): " + "; ".join(check.problems),
            key="error.statement.bad_dialect",
            dialect=name,
            problems="; ".join(check.problems),
        )
    return dialect


def _check_layout(dialect: Dialect, check: _Checker) -> None:
    """The parts can be told apart: fixed lines outside the summary are comments, and the
    summary states each figure once."""
    figures = [n for t in dialect.summary for n in t.names]
    if sorted(figures) != sorted(SUMMARY_FIGURES):
        check.fail("summary", "state {count}, {amount} and {fee} once each")
    fixed = [*dialect.preamble, *dialect.trailer, *([dialect.detail_end] if dialect.detail_end else [])]
    comment = dialect.comment_prefix
    if fixed and not comment:
        check.fail("comment_prefix", "preamble, detail_end and trailer lines need a comment prefix")
    elif comment and any(not t.text.startswith(comment) for t in fixed):
        check.fail("comment_prefix", f"every preamble, detail_end and trailer line starts with {comment!r}")
