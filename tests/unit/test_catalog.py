import copy
import json

import pytest

from core.domain.catalog import Basis, catalog_from_dict, channel_from_dict
from core.errors import CatalogError
from core.reference_data import load_catalog, load_catalog_raw

ARTICLE_CHANNELS = {
    "alipay",
    "wechat_pay",
    "china_mobile_app",
    "china_unicom_app",
    "china_telecom_app",
    "icbc_e_mall",
    "cmb_life",
}


def test_the_bundled_catalog_lists_every_channel_of_the_article(catalog):
    assert {c.id for c in catalog.channels} == ARTICLE_CHANNELS


def test_every_block_of_every_channel_says_where_its_figures_come_from(catalog):
    for channel in catalog.channels:
        assert set(channel.provenance) == {"serves", "fee", "payout", "speed", "limits"}
        for prov in channel.provenance.values():
            assert prov.note["zh-CN"] and prov.note["en"]
    # The article gives ranges, not tiers: the chosen tiers must say they are estimates.
    assert catalog.by_id()["alipay"].provenance["fee"].basis is Basis.ESTIMATE


def test_third_party_tier_rates_stay_inside_the_articles_range(catalog):
    for cid in ("alipay", "wechat_pay"):
        for tier in catalog.by_id()[cid].fee.tiers:
            assert 25_000 <= tier.rate_ppm <= 50_000


def _broken(mutate):
    data = copy.deepcopy(load_catalog_raw())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["channels"][0]["fee"]["tiers"][0].update(rate="0.5%"), "channels[0].fee.tiers[0].rate"),
        (lambda d: d["channels"][0]["fee"]["tiers"][0].update(rate=0.05), "channels[0].fee.tiers[0].rate"),
        (
            lambda d: d["channels"][0]["limits"].update(per_transaction_yuan=500),
            "channels[0].limits.per_transaction_yuan",
        ),
        (lambda d: d["channels"][1].pop("kind"), "channels[1].kind: missing"),
        (lambda d: d["channels"][2]["speed"].update(min=6), "channels[2].speed.max: below min"),
        (lambda d: d["channels"][2]["serves"].update(carriers=["china_mobile", "nope"]), "channels[2].serves.carriers"),
        (lambda d: d["channels"][0]["fee"].update(floor_yuan="20.00"), "channels[0].fee.floor_yuan"),
        (lambda d: d["channels"][3]["payout"].pop("cash_value"), "channels[3].payout.cash_value"),
        (lambda d: d["channels"][0]["fee"]["provenance"].pop("note"), "channels[0].fee.provenance.note: missing"),
        (lambda d: d["channels"][1].update(id="alipay"), "ids must be unique"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d["channels"][2]["speed"].update(max=10**7), "channels[2].speed.max"),
        (lambda d: d["channels"][0]["limits"].update(per_transaction_yuan="99999999999.00"), "per_transaction_yuan"),
        (lambda d: d["channels"][5]["payout"].update(points_per_yuan=-8), "channels[5].payout.points_per_yuan"),
        # a tier that charges more on larger amounts: recovering 100.01 yields less than 100.00
        (lambda d: d["channels"][0]["fee"]["tiers"][1].update(rate="0.09"), "channels[0].fee: recovering"),
    ],
)
def test_a_bad_catalog_is_refused_naming_the_field(mutate, field):
    with pytest.raises(CatalogError) as caught:
        catalog_from_dict(_broken(mutate), source="data/channels.json")
    message = str(caught.value)
    assert message.startswith("data/channels.json: ")
    assert field in message


def test_a_catalog_file_that_is_not_json_is_refused_naming_the_file_and_line(tmp_path):
    path = tmp_path / "channels.json"
    path.write_text('{"schema_version": 1,\n  "as_of": }', encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value) and "line 2" in str(caught.value)


def test_a_single_channel_from_a_feed_is_validated_the_same_way():
    data = load_catalog_raw()["channels"][0]
    assert channel_from_dict(data, source="feed").id == "alipay"
    with pytest.raises(CatalogError):
        channel_from_dict({**data, "fee": {"rule": "percent"}}, source="feed")


def test_the_catalog_file_is_plain_utf8_json():
    from core.reference_data import DATA_DIR

    json.loads((DATA_DIR / "channels.json").read_text(encoding="utf-8"))
