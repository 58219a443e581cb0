"""A problem of a terms or pricing document, by its field path, that can be said in any language.

A `Problem` is the English line it always was ("own_offer.fee.cap_yuan: below floor_yuan": a
`str`, so logs, joins and the command line's English read it as before) that also carries what
it is as data: the field path, a code and its parameters. A reader's language says it from the
locale files (`problem.<code>`, the same parameters; `core.i18n.Translator.problem`), the field
path kept as it is. `ProblemValue` is what a field's converter raises: the code and parameters
without the path, which the reader walking the document adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Every problem's code and its English words ({names} are its parameters).
MESSAGES: Mapping[str, str] = {
    # the shape of a document
    "not_object": "expected an object",
    "missing": "missing",
    "invalid": "not a valid value here",
    "not_json": "not JSON ({kind})",
    "not_utf8": "not UTF-8 text",
    "too_large": "larger than {most} bytes",
    "schema_version": "{value} is not the supported {supported}",
    # a field's value
    "not_one_of": "{value} is not one of {choices}",
    "texts": "needs a non-empty text for each of {languages}",
    "money_text": 'write amounts as strings of yuan, like "500.00"',
    "money": "{value} is not an amount in yuan (0 or more, at most two decimals)",
    "implausible": "{value} is beyond any plausible term",
    "day_range": "{value} is not a day from {first} to {last}",
    "rate_text": 'write rates as strings, like "0.025"',
    "rate": "{value} is not a rate from 0 to 1 (at most six decimals)",
    "share": "must be between 0 and 1",
    "whole_number": "expected a whole number from 0 to {high}",
    "date": "{value} is not a date like 2026-12-01",
    "date_text": 'write dates as text, like "2026-12-01"',
    "time": "{value} is not a time like 15:00",
    "carrier": "{value} is not a carrier; choose one of {choices}",
    "must_be": "must be {value}",
    # texts shown to everyone
    "text_empty": "must not be empty",
    "text_unseen": "must be one line of visible text (no line break, control or invisible formatting character)",
    "text_too_long": "at most {most} characters",
    # terms that do not hold together
    "below": "below {bound}",
    "before": "before {bound}",
    "one_tier": "at least one tier",
    "open_tier_not_last": "only the last tier may be open-ended",
    "last_tier_open": "the last tier must be open-ended (null)",
    "bounds_rise": "upper bounds must rise strictly",
    "carriers_needed": "name the carriers served",
    "own_network_one": "own_network names exactly one carrier",
    "cash_at_face": "cash is worth its face (1) or leave it out",
    "cash_value_needed": "vouchers and points need their default cash value (0 < v <= 1)",
    "floor_nets_nothing": "must be below limits.min_transaction_yuan, or a transaction nets nothing",
    "monotonic": "recovering {more} fen yields less than {amount} fen",
    "ids_unique": "ids must be unique",
    "no_channel": "the catalog lists no channel",
    # pricing versions
    "second_cost": "{route} has a second cost schedule",
    "not_in_catalog": "{route} is not a channel of the catalog",
    "no_cost": "no cost schedule for {routes}",
    # the lab's editors (rows from 1, as the editor shows them)
    "not_number": "not a number",
    "beyond": "beyond any plausible term",
    "not_a_route": "not a route of this document",
}

#: The longest quoted value a problem repeats.
VALUE_MAX = 40


class Problem(str):
    """`path: what is wrong` in English, with `path`, `code` and `params` to say it otherwise."""

    path: str
    code: str
    params: dict[str, str]

    def __new__(cls, path: str, code: str, **params: Any) -> Problem:
        texts = {name: str(value) for name, value in params.items()}
        problem = super().__new__(cls, f"{path or '(top)'}: {MESSAGES[code].format(**texts)}")
        problem.path, problem.code, problem.params = path or "(top)", code, texts
        return problem

    def __reduce__(self) -> Any:  # copied or pickled as itself, not as its text
        return (_rebuild, (self.path, self.code, self.params))


def _rebuild(path: str, code: str, params: dict[str, str]) -> Problem:
    return Problem(path, code, **params)


class ProblemValue(ValueError):
    """A field's value that is wrong, as its converter says it: the code and parameters of the
    Problem the document's reader makes of it at the field's path."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(MESSAGES[code].format(**{k: str(v) for k, v in params.items()}))
        self.code, self.params = code, params

    def at(self, path: str) -> Problem:
        return Problem(path, self.code, **self.params)


def quoted(value: Any) -> str:
    """A value a problem repeats, as written, cut short."""
    return repr(value)[:VALUE_MAX]


__all__ = ["MESSAGES", "Problem", "ProblemValue", "quoted"]
