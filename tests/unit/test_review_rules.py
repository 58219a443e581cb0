"""The review's pure rules: reason codes (each readable in every language), four eyes, claims."""

from __future__ import annotations

import datetime as dt

import pytest

from core.domain.reasons import why
from core.domain.recovery import RecoveryEvent
from core.domain.review import (
    APPROVE_REASONS,
    REJECT_REASONS,
    held,
    needs_second_person,
    overdue,
    review_code,
    stored_reason,
)
from core.i18n import LANGUAGES, Translator

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("code", APPROVE_REASONS + REJECT_REASONS)
def test_every_reason_code_reads_as_a_sentence_in_every_language(code, language):
    event = RecoveryEvent.APPROVE if code in APPROVE_REASONS else RecoveryEvent.REJECT
    reason = why(event, "operator", stored_reason(code))
    text = Translator(language)(reason.key, **reason.params)
    assert reason.key == f"reason.review.{code}" and text and code not in text


def test_an_operators_own_words_stay_their_words_and_an_approval_without_a_code_says_nothing():
    assert why(RecoveryEvent.REJECT, "operator", "looks wrong").params == {"text": "looks wrong"}
    assert why(RecoveryEvent.APPROVE, "operator", "looks fine") is None
    assert review_code("review:no_such_code") is None and review_code("suspected_fraud") is None


def test_four_eyes_starts_strictly_above_the_amount():
    assert not needs_second_person(100_000, 100_000)
    assert needs_second_person(100_001, 100_000)


def test_a_claim_holds_until_it_expires_and_a_case_is_overdue_past_the_service_time():
    assert held(NOW + dt.timedelta(seconds=1), NOW) and not held(NOW, NOW) and not held(None, NOW)
    assert overdue(NOW - dt.timedelta(hours=4, seconds=1), NOW, 4 * 3600)
    assert not overdue(NOW - dt.timedelta(hours=4), NOW, 4 * 3600)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_reason_code_has_an_operators_label_too(language):
    t = Translator(language)
    for code in APPROVE_REASONS + REJECT_REASONS:
        assert t(f"queue.reason.{code}") != f"queue.reason.{code}"
