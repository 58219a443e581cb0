"""Names on the Compare page come from the catalog in the reader's language, never as raw ids."""

from __future__ import annotations

import itertools
import re

import pytest

from core.domain.carriers import Carrier
from core.domain.quotes import CHANNEL_PARAMS, Priority, Reason, compare
from core.i18n import LANGUAGES, Translator, load_messages, placeholders
from core.reference_data import load_catalog
from pages._ui.quote_tables import reason_text
from tests.support.quotes import make_request

CATALOG = load_catalog()
CHANNELS = CATALOG.channels
IDS = re.compile(r"\b(" + "|".join(sorted({c.id for c in CHANNELS} | {c.value for c in Carrier})) + r")\b")
BEST_KEYS = sorted(k for k in load_messages("en") if k.startswith("best."))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", BEST_KEYS)
def test_every_best_reason_names_every_channel_pair_from_the_catalog(language, key):
    # A bare Translator (no channel names handed to it): the names must come from the channels.
    t = Translator(language)
    wanted = placeholders(load_messages("en")[key])
    assert wanted & CHANNEL_PARAMS  # every best reason names a channel
    for best, other in itertools.permutations(CHANNELS, 2):
        params = {"channel": best.id, "other": other.id, "net_fen": 120_000, "gap_fen": 0}
        params |= {"date": "2026-12-02", "form": best.payout_form.value}
        text = reason_text(Reason(key, {p: v for p, v in params.items() if p in wanted}), t, CHANNELS)
        assert best.display_name(language) in text
        if "other" in wanted:
            assert other.display_name(language) in text
        assert not IDS.search(text), text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("first", list(Priority))
@pytest.mark.parametrize("carrier", list(Carrier))
def test_the_best_reasons_the_ranking_gives_read_without_ids(catalog, calendar, language, first, carrier):
    t = Translator(language)
    for points in (None, 1_000_000):  # at face value the two bank malls tie
        request = make_request(
            1200,
            carrier=carrier,
            credit_limit_fen=1_000_000,
            points_value_ppm=points,
            priorities=Priority.order_with_first(first),
        )
        comparison = compare(catalog, request, calendar)
        texts = [reason_text(comparison.best_reason, t, CHANNELS)]
        texts += [reason_text(q.reason, t, CHANNELS) for q in comparison.quotes]
        assert not IDS.search("\n".join(texts)), texts


def test_no_reason_is_an_empty_text():
    assert reason_text(None, Translator("en"), CHANNELS) == ""
