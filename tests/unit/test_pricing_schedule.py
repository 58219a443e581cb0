"""The pricing document: the shipped one parses; every bad one is a PricingError naming its field."""

import copy
import datetime as dt
import json
import random
import re

import pytest

from core.domain.catalog import NoFee, Tier, TieredPercentFee
from core.domain.pricing import (
    MAX_DOCUMENT_BYTES,
    OWN_OFFER_ID,
    CostSchedule,
    PricingError,
    Promotion,
    discounted,
    parse_document,
)
from core.money import PPM, Rounding
from core.reference_data import DATA_DIR

SHIPPED = (DATA_DIR / "pricing" / "schedule.json").read_text(encoding="utf-8")
#: `field.path[0].more: what is wrong`, or `(top): …` for the document as a whole.
FIELD_PATH = re.compile(r"^(\(top\)|[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*): \S")


@pytest.fixture(scope="module")
def market(catalog):
    return catalog.by_id()


def test_the_shipped_document_parses(market):
    schedule = parse_document(SHIPPED, market=market)
    assert schedule.own_offer.id == OWN_OFFER_ID
    assert set(schedule.costs) == {*market, OWN_OFFER_ID}
    assert schedule.promotion is None
    assert isinstance(schedule.own_offer.fee, TieredPercentFee)


# --- 1,000 bad documents ---------------------------------------------------------------------

WRONG_TYPES = (123, -1, 1.5, True, [], {}, [1, 2], {"a": 1}, "abc", "")
#: Validated leaves of the shipped document, and values each refuses (beyond WRONG_TYPES' reach).
LEAVES = (
    ("schema_version", ("abc", [], {}, 2, 0, "2")),
    ("own_offer", WRONG_TYPES),
    ("own_offer.id", ("alipay", "", 5, [])),
    ("own_offer.kind", ("carrier_app", *WRONG_TYPES)),
    ("own_offer.name", WRONG_TYPES),
    ("own_offer.as_of", ("2026-13-01", "yesterday", *WRONG_TYPES)),
    ("own_offer.serves", WRONG_TYPES),
    ("own_offer.serves.rule", WRONG_TYPES),
    ("own_offer.serves.carriers", (["nokia"], [], 123, "abc", [None], {})),
    ("own_offer.fee", WRONG_TYPES),
    ("own_offer.fee.rule", WRONG_TYPES),
    ("own_offer.fee.tiers", ([], 123, "abc", [1], [{}], {})),
    ("own_offer.fee.tiers.0.rate", ("1.5", "-0.1", "0.0000001", "NaN", *WRONG_TYPES)),
    ("own_offer.fee.tiers.0.up_to_yuan", ("-1", "1e3", "abc", 100, 1.5, [])),
    ("own_offer.fee.tiers.2.up_to_yuan", ("900.00",)),
    ("own_offer.fee.floor_yuan", ("20.00", "-1", 1, [], "abc")),
    ("own_offer.fee.cap_yuan", ("0.10", "-1", 1, [], "abc")),
    ("own_offer.fee.rounding", ("sideways", *WRONG_TYPES)),
    ("own_offer.payout.form", ("cheque", *WRONG_TYPES)),
    ("own_offer.payout.cash_value", ("0.5", "2", 1, [])),
    ("own_offer.speed.rule", ("eventually", *WRONG_TYPES)),
    ("own_offer.speed.days", (-1, 61, 1.5, "1", True, [], {})),
    ("own_offer.speed.cutoff", ("25:00", "noon", 123, [], {})),
    ("own_offer.limits.min_transaction_yuan", ("2000.00", "-1", 20, [], "abc")),
    ("own_offer.limits.per_transaction_yuan", ("10.00", "-1", 1000, [], "abc")),
    ("own_offer.limits.per_day_yuan", ("-1", 3000, [], "abc")),
    ("own_offer.serves.provenance.basis", ("rumour", *WRONG_TYPES)),
    ("own_offer.fee.provenance.note", WRONG_TYPES),
    ("costs", (123, "abc", {}, True)),
    ("costs.N", WRONG_TYPES),
    ("costs.N.channel", ("nope", "", 123, [], {})),
    ("costs.N.partner_fee", WRONG_TYPES),
    ("costs.N.partner_fee.rule", ("flat", *WRONG_TYPES)),
    ("costs.N.resale_value", ("-0.1", "1.5", "2", 1, 0.5, [], "abc", "0.0000001")),
    ("costs.N.loss_rate", ("-0.1", "1.01", 1, 0.5, [], "abc")),
)


def _set(document: dict, path: str, value: object, rng: random.Random) -> None:
    keys: list[object] = []
    for part in path.split("."):
        if part == "N":
            keys.append(rng.randrange(len(document["costs"])))
        elif part.isdigit():
            keys.append(int(part))
        else:
            keys.append(part)
    node: object = document
    for key in keys[:-1]:
        node = node[key]  # type: ignore[index]
    node[keys[-1]] = value  # type: ignore[index]


def _cost_row(document: dict, rng: random.Random) -> dict:
    return document["costs"][rng.randrange(len(document["costs"]))]


def bad_document(rng: random.Random) -> str | bytes:
    """One mutation of the shipped document that makes it unusable."""
    document = json.loads(SHIPPED)
    kind = rng.randrange(11)
    if kind <= 3:  # a wrong type or a refused value at a validated field
        path, values = rng.choice(LEAVES)
        _set(document, path, rng.choice(values), rng)
    elif kind == 4:  # a field left out
        path, _ = rng.choice([leaf for leaf in LEAVES if "provenance" not in leaf[0] and "up_to" not in leaf[0]])
        path = path.replace("N", str(rng.randrange(len(document["costs"]))))
        *parents, last = path.split(".")
        node = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        optional = {"cap_yuan": "rounding", "floor_yuan": "rounding", "cash_value": "form"}
        last = optional.get(last, "min_transaction_yuan" if "limits" in path else last)  # those may be left out
        del node[int(last) if last.isdigit() else last]
    elif kind == 5:  # a duplicated cost row
        document["costs"].insert(rng.randrange(len(document["costs"]) + 1), copy.deepcopy(_cost_row(document, rng)))
    elif kind == 6:  # a cost row for no channel of the catalog, or one missing
        if rng.random() < 0.5:
            _cost_row(document, rng)["channel"] = rng.choice(["unknown_pay", "DIRECT", "alipay ", "中国移动"])
        else:
            del document["costs"][rng.randrange(len(document["costs"]))]
    elif kind == 7:  # a promotion with bad dates or discount
        starts = dt.date(2026, 12, 1) + dt.timedelta(days=rng.randrange(60))
        promotion = {"starts": starts.isoformat(), "ends": starts.isoformat(), "fee_discount": "0.5"}
        field, value = rng.choice(
            [
                ("ends", (starts - dt.timedelta(days=rng.randrange(1, 30))).isoformat()),
                ("starts", "2026-02-30"),
                ("ends", "next week"),
                ("starts", 20261201),
                ("ends", None),
                ("fee_discount", "1.5"),
                ("fee_discount", "-0.2"),
                ("fee_discount", 0.5),
                ("fee_discount", None),
            ]
        )
        promotion[field] = value
        document["promotion"] = rng.choice([promotion, promotion, "soon", [promotion]])
    elif kind == 8:  # not JSON (cut short, or bytes that are not text)
        text = json.dumps(document)
        return rng.choice([text[: rng.randrange(len(text))], b"\xff\xfe" + text.encode()[:50], "{" * 5000, "nan"])
    elif kind == 9:  # too large to be a pricing document
        document["padding"] = "x" * (MAX_DOCUMENT_BYTES + rng.randrange(1000))
    else:  # not an object at all
        return json.dumps(rng.choice([[], 1, "schedule", None, [document]]))
    return json.dumps(document, ensure_ascii=rng.random() < 0.5)


@pytest.mark.parametrize("saved", [lambda text: "\ufeff" + text, lambda text: ("\ufeff" + text).encode("utf-8")])
def test_a_document_saved_with_a_byte_order_mark_reads_as_without(market, saved):
    assert parse_document(saved(SHIPPED), market=market) == parse_document(SHIPPED, market=market)


def test_a_thousand_bad_documents_each_name_their_problem(market):
    rng = random.Random(20261130)
    for i in range(1_000):
        text = bad_document(rng)
        with pytest.raises(PricingError) as caught:
            parse_document(text, market=market)
        problems = caught.value.params.get("problems")
        assert problems, (i, text[:200])
        assert all(FIELD_PATH.match(p) for p in problems), (i, problems)


# --- the promotion ---------------------------------------------------------------------------


@pytest.mark.parametrize(("starts", "ends", "path"), [("0001-01-01", "2026-12-12", "promotion.starts"),
                                                     ("2026-12-10", "9999-12-31", "promotion.ends")])  # fmt: skip
def test_a_promotion_outside_the_days_it_can_name_is_refused_naming_the_field(market, starts, ends, path):
    """Year 1 or 9999 is a typing slip: the lab's date pickers could not even reach a sane day
    from it (they offer ten years either side)."""
    document = json.loads(SHIPPED)
    document["promotion"] = {"starts": starts, "ends": ends, "fee_discount": "0.5"}
    with pytest.raises(PricingError) as refused:
        parse_document(json.dumps(document), market=market)
    assert [(p.path, p.code) for p in refused.value.params["problems"]] == [(path, "day_range")]
    kept = parse_document(json.dumps(document), market=market, strict=False)  # approved before: as approved
    assert kept.promotion is not None


def test_the_promotion_discounts_the_fee_only_inside_its_window(market):
    document = json.loads(SHIPPED)
    document["promotion"] = {"starts": "2026-12-10", "ends": "2026-12-12", "fee_discount": "0.5"}
    schedule = parse_document(json.dumps(document), market=market)
    assert schedule.promotion == Promotion(dt.date(2026, 12, 10), dt.date(2026, 12, 12), 500_000)
    full = schedule.own_offer.fee
    for day, inside in ((9, False), (10, True), (11, True), (12, True), (13, False)):
        offer = schedule.own_offer_on(dt.date(2026, 12, day))
        assert (offer.fee != full) is inside
        for amount in (20_00, 100_00, 300_00, 1000_00):
            expected = discounted(full, 500_000).fee(amount) if inside else full.fee(amount)
            assert offer.fee.fee(amount) == expected
    assert schedule.own_offer_on(dt.date(2026, 12, 11)).fee.fee(200_00) == 350  # 3.5% of 200 = 7.00, halved
    assert schedule.own_offer_on(dt.date(2026, 12, 9)).fee.fee(200_00) == 700


def test_discounting_leaves_free_and_zero_alone_and_scales_floor_and_cap():
    fee = TieredPercentFee((Tier(None, 30_000),), 50, 6_000, Rounding.HALF_UP)
    assert discounted(NoFee(), 500_000) == NoFee()
    assert discounted(fee, 0) is fee
    assert discounted(fee, 250_000) == TieredPercentFee((Tier(None, 22_500),), 37, 4_500, Rounding.HALF_UP)


# --- the cost arithmetic, worked by hand -----------------------------------------------------


@pytest.mark.parametrize(
    ("amount_fen", "partner", "shortfall", "loss"),
    [
        (10_000, 60, 150, 30),  # 100 CNY: 0.6% = 0.60; 1.5% not resold = 1.50; 0.3% lost = 0.30
        (1_000, 10, 15, 3),  # 10 CNY: 0.06 lifted to the 0.10 minimum; 0.15; 0.03
        (500_000, 2_000, 7_500, 1_500),  # 5,000 CNY: 30.00 capped at 20.00; 75.00; 15.00
        (333, 10, 5, 1),  # 3.33 CNY: resale 3.28005 rounds down to 3.28; loss 0.00999 half up to 0.01
        (0, 0, 0, 0),  # nothing recovered costs nothing (the fee never exceeds the amount)
    ],
)
def test_the_own_offers_cost_worked_by_hand(market, amount_fen, partner, shortfall, loss):
    cost = parse_document(SHIPPED, market=market).costs[OWN_OFFER_ID]
    assert cost.partner_fee_fen(amount_fen) == partner
    assert cost.cost_fen(amount_fen) == partner + shortfall + loss


def test_a_free_route_at_face_value_costs_nothing_and_loss_alone_is_rounded_half_up():
    assert CostSchedule("x", NoFee(), PPM, 0).cost_fen(123_45) == 0
    assert CostSchedule("x", NoFee(), PPM, 1_000).cost_fen(1_500) == 2  # 1.5 fen rounds up
    assert CostSchedule("x", NoFee(), PPM, 1_000).cost_fen(1_499) == 1
    assert CostSchedule("x", NoFee(), 999_000, 0).cost_fen(1_999) == 2  # resale 1997.001 -> 1997


# --- texts the portal shows to everyone --------------------------------------------------------


def with_texts(name: str = "本平台直收", note: str | None = None) -> str:
    document = json.loads(SHIPPED)
    document["own_offer"]["name"]["zh-CN"] = name
    if note is not None:
        document["own_offer"]["fee"]["provenance"]["note"]["en"] = note
    return json.dumps(document, ensure_ascii=False)


@pytest.mark.parametrize(
    ("name", "note", "path"),
    [
        ("<img src=x onerror=alert(1)>**粗体** :red[红]\u202e", None, "own_offer.name.zh-CN"),
        ("本平台\n直收", None, "own_offer.name.zh-CN"),
        ("本平台\u200b直收", None, "own_offer.name.zh-CN"),
        ("本平台\x1b[31m直收", None, "own_offer.name.zh-CN"),
        ("收" * 41, None, "own_offer.name.zh-CN"),
        ("   ", None, "own_offer.name.zh-CN"),
        ("本平台直收", "an estimate\u2028of ours", "own_offer.fee.provenance.note.en"),
        ("本平台直收", "x" * 301, "own_offer.fee.provenance.note.en"),
    ],
)
def test_a_name_or_note_that_cannot_be_shown_as_one_line_as_written_is_refused(market, name, note, path):
    """A right-to-left override, a line break or an escape in the own offer's name was stored and
    reached every consumer on Compare."""
    with pytest.raises(PricingError) as caught:
        parse_document(with_texts(name, note), market=market)
    assert [p.split(":")[0] for p in caught.value.params["problems"]] == [path]


def test_a_name_with_markdown_in_it_is_kept_as_written(market):
    """Visible characters are the author's to choose; every page shows them escaped."""
    name = "<img src=x>**粗体** :red[红] ![a](x.png)"
    assert parse_document(with_texts(name), market=market).own_offer.name["zh-CN"] == name


def test_a_version_approved_before_names_were_checked_still_quotes_with_its_name_cleaned(market):
    text = with_texts("本平台\u202e直收\n", "an estimate\u2028of ours")
    schedule = parse_document(text, market=market, strict=False)
    assert schedule.own_offer.name["zh-CN"] == "本平台直收"
    assert schedule.own_offer.provenance["fee"].note["en"] == "an estimate of ours"
