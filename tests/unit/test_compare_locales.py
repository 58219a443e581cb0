"""Links in the messages are written out as markdown links or code: a bare URL followed by
full-width punctuation would swallow it (`…/7439.html)%E3%80%82`)."""

from __future__ import annotations

import re

import pytest

from core.i18n import LANGUAGES, load_messages, placeholders

URL_PLACEHOLDERS = {"url", "issuer", "link", "jwks"}
LINK_OR_CODE = re.compile(r"\[[^\]]*\]\([^)\s]*\)|`[^`]*`")


def shown_bare(message: str) -> str:
    """The message with a URL in each URL-like placeholder, minus its explicit links and code."""
    filled = message.format(
        **{p: "https://example.cn/x" if p in URL_PLACEHOLDERS else p for p in placeholders(message)}
    )
    return LINK_OR_CODE.sub("", filled)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_message_shows_a_bare_url(language):
    messages = load_messages(language)
    bare = {key: text for key, text in messages.items() if "http" in shown_bare(text)}
    assert bare == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_source_link_and_the_receipt_issuer_are_explicit(language):
    messages = load_messages(language)
    assert "]({url})" in messages["method.sources_intro"]
    assert "`{issuer}`" in messages["receipt.valid"] or "]({issuer})" in messages["receipt.valid"]
