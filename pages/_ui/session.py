"""The portal's services handle, the per-tab language, and share-link state, the Streamlit way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from core.bootstrap import Services, shared
from core.i18n import DEFAULT_LANGUAGE, LANGUAGE_COOKIE, LANGUAGES, Translator

LANGUAGE_KEY = "lang"  # session-state key and query parameter
LANGUAGE_LABELS = {"zh-CN": "中文", "en": "English"}
MAX_URL_VALUE = 20  # as long as the longest input accepts


@st.cache_resource(show_spinner=False)
def services() -> Services:
    """Built once per portal process and shared by every session: holds no per-user data."""
    return shared()


def from_url(key: str, default: Any, parse: Callable[[str], Any] = str) -> None:
    """Give widget `key` its value: from the URL on this tab's first run (share links carry
    codes such as `china_unicom`, never translated labels), else the default. An invalid
    URL value is ignored rather than shown as an error."""
    marker = f"_url_read_{key}"
    if marker not in st.session_state:
        st.session_state[marker] = True
        raw = st.query_params.get(key)
        if raw is not None and len(raw) <= MAX_URL_VALUE:
            with contextlib.suppress(ValueError, KeyError):
                st.session_state[key] = parse(raw)
    if key not in st.session_state:
        st.session_state[key] = default


def one_of(choices: list[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw

    return parse


def publish_to_url(values: Mapping[str, Any], defaults: Mapping[str, Any], *, sharing: bool) -> None:
    """Keep the address bar honest about the comparison without rewriting it on every change.

    While sharing, the URL carries exactly these inputs (defaults left out). Otherwise a URL
    that already describes the comparison (a shared link just opened) is left alone, and one
    that no longer does is cleared, once. The language, when not the default, always stays.
    """
    wanted = {k: str(v) for k, v in values.items() if v != defaults.get(k)}
    shown = {k: v for k, v in st.query_params.to_dict().items() if k != LANGUAGE_KEY}
    if not sharing and shown != wanted:
        wanted = {}
    if language() != DEFAULT_LANGUAGE:
        wanted[LANGUAGE_KEY] = language()
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def language() -> str:
    value = st.session_state.get(LANGUAGE_KEY, DEFAULT_LANGUAGE)
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def translator() -> Translator:
    channels = services().quotes.terms().by_channel
    return Translator(language(), {ct.channel.id: ct.channel.name for ct in channels})


def channel_names(t: Translator) -> dict[str, str]:
    """Each channel's name in the reader's language, by channel id."""
    return {c.id: c.display_name(t.language) for c in services().quotes.terms().catalog.channels}


def remembered_language() -> str:
    """The language a tab starts in without ?lang: the one the reader last signed in with (the
    provider leaves it in a cookie, as Streamlit lands a sign-in on "/"), else the default."""
    value = (getattr(st.context, "cookies", None) or {}).get(LANGUAGE_COOKIE, "")
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def language_switch() -> None:
    from_url(LANGUAGE_KEY, remembered_language(), one_of(list(LANGUAGES)))
    st.segmented_control(
        "🌐",
        LANGUAGES,
        format_func=LANGUAGE_LABELS.__getitem__,
        key=LANGUAGE_KEY,
        required=True,
        label_visibility="collapsed",
    )
    # the address carries the language chosen, on every page: a reload or a copied link keeps it
    # (a page that rewrites its own parameters drops it; it is put back on the next run)
    chosen = language()
    if chosen != DEFAULT_LANGUAGE and st.query_params.get(LANGUAGE_KEY) != chosen:
        st.query_params[LANGUAGE_KEY] = chosen
    elif chosen == DEFAULT_LANGUAGE and LANGUAGE_KEY in st.query_params:
        del st.query_params[LANGUAGE_KEY]
