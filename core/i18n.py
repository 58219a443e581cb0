"""Message catalogs (data/locales/*.json) and the formatting of figures in a language.

Pages and the command line render every user-facing string through a `Translator`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.domain.calendar import SHANGHAI
from core.domain.problems import Problem
from core.domain.quotes import CHANNEL_PARAMS, Reason
from core.money import format_fen

LOCALES_DIR = Path(__file__).resolve().parent.parent / "data" / "locales"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
#: The language the reader last signed in with: set by the sign-in provider, read by the frame
#: (Streamlit lands a finished sign-in on "/", without the portal's ?lang).
LANGUAGE_COOKIE = "portal_lang"


@functools.cache
def load_messages(language: str, directory: Path = LOCALES_DIR) -> Mapping[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    return json.loads((directory / f"{language}.json").read_text(encoding="utf-8"))


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Translator:
    def __init__(self, language: str = DEFAULT_LANGUAGE, channel_names: Mapping[str, Mapping[str, str]] | None = None):
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.messages = load_messages(self.language)
        self.channel_names = channel_names or {}

    def __call__(self, key: str, **params: Any) -> str:
        template = self.messages.get(key)
        if template is None:
            template = load_messages("en").get(key, key)
        return template.format(**{k: self.value(k, v) for k, v in params.items()}) if params else template

    def value(self, name: str, value: Any) -> str:
        """Format a parameter by its name: *_fen as money, carriers, channels, forms, dates."""
        if value is None:
            return ""
        if name.endswith("_fen") and isinstance(value, int):
            return format_fen(value)
        if name == "field":
            return self(f"field.{value}")
        if name == "carrier":
            return self(f"carrier.{value}")
        if name in CHANNEL_PARAMS:  # a channel id: its catalog name in this language
            return self.channel_names.get(str(value), {}).get(self.language, str(value))
        if name == "form":
            return self(f"payout_form.{value}")
        if name == "date" and value:
            return self.date(dt.date.fromisoformat(str(value)))
        return str(value)

    def date(self, day: dt.date) -> str:
        weekday = self(f"weekday.{day.weekday()}")
        if self.language == "zh-CN":
            return f"{day.month}月{day.day}日({weekday})"
        return f"{weekday} {day.day} {day.strftime('%b')}"

    def list(self, items: list[str]) -> str:
        """Items of a list in a sentence: 甲、乙 / a, b."""
        return ("、" if self.language == "zh-CN" else ", ").join(items)

    def reason(self, reason: Reason | None) -> str:
        return "" if reason is None else self(reason.key, **dict(reason.params))

    def problem(self, problem: str) -> str:
        """A document's problem in this language, its field path kept (`core.domain.problems`);
        any other text as it is."""
        if not isinstance(problem, Problem):
            return str(problem)
        return f"{problem.path}: {self(f'problem.{problem.code}', **problem.params)}"

    def error(self, error: Exception) -> str:
        """An expected error in the user's language (never a traceback)."""
        key = getattr(error, "key", "error.generic")
        params = {"detail": str(error), **dict(getattr(error, "params", {}) or {})}
        problems = params.get("problems")
        if isinstance(problems, list) and problems and all(isinstance(p, Problem) for p in problems):
            source = f"{params['source']}: " if params.get("source") else ""  # the file, when one is named
            params["detail"] = source + "; ".join(self.problem(p) for p in problems)
        if key in self.messages:
            safe = {p: params.get(p, "") for p in placeholders(self.messages[key])}
            return self(key, **safe)
        return str(error) if self.language == "en" else self("error.generic")


def local_time(moment: dt.datetime) -> str:
    """A moment as every page and command shows one: Beijing time, to the minute."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def age_text(seconds: float, t: Translator) -> str:
    """How long, in minutes, hours and minutes, or days (a case's age, how late a payout is)."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return t("queue.age.minutes", n=minutes)
    if minutes < 48 * 60:
        return t("queue.age.hours", n=minutes // 60, m=minutes % 60)
    return t("queue.age.days", n=minutes // (24 * 60))
