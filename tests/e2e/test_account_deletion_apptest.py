"""Deleting one's account on the Account page: the word and the click go together (one click,
not a first one to wake a disabled button), the word is read without regard to case, and a
wrong word says so and deletes nothing."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from core.domain.access import Principal, Role
from core.i18n import Translator
from pages._ui.session import LANGUAGE_KEY
from tests.support.apptest import open_app, signed_in_as


def _exists(user: dict) -> bool:
    who = Principal(user["sub"], Role.CONSUMER)
    return bool(shared().identity.verified_numbers(who, who.user_id))


def _delete(language: str, word: str) -> tuple[dict, AppTest]:
    """A new consumer on the Account page in `language` types `word` and clicks once."""
    user = signed_in_as("consumer")
    at = open_app(user=user, lang=language)
    at.switch_page("pages/account.py").run()
    at.session_state[LANGUAGE_KEY] = language  # (AppTest does not send the language widget's value back)
    at.text_input(key="delete_confirm").input(word)
    at.button[-1].click().run()  # the form's one button, with the word typed
    assert not at.exception
    return user, at


@pytest.mark.parametrize(("language", "word"), [("zh-CN", "删除"), ("en", "delete"), ("en", " DELETE ")])
def test_the_word_typed_and_one_click_delete_the_account(language, word):
    user, _ = _delete(language, word)
    assert not _exists(user)


@pytest.mark.parametrize(("language", "word"), [("zh-CN", "删"), ("en", "remove"), ("en", "")])
def test_a_wrong_word_says_so_and_deletes_nothing(language, word):
    user, at = _delete(language, word)
    assert _exists(user)
    assert Translator(language)("account.delete_word_wrong") in [e.value for e in at.error]
