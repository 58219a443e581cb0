import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.calendar import SHANGHAI
from core.domain.carriers import Carrier
from core.domain.quotes import Priority, compare, quote_channel
from core.money import MAX_BALANCE_FEN, PPM
from tests.support.quotes import make_request


def quotes_by_id(catalog, calendar, request):
    return {q.channel.id: q for q in compare(catalog, request, calendar).quotes}


def test_points_channel_pays_eighty_percent_cash_equivalent(catalog, calendar):
    # The article: 100 CNY of balance = 800 points worth 80 CNY.
    q = quotes_by_id(catalog, calendar, make_request(100, credit_limit_fen=1_000_000))["icbc_e_mall"]
    assert (q.recoverable_fen, q.fee_fen, q.hidden_cost_fen, q.net_fen) == (10000, 0, 2000, 8000)
    assert q.effective_rate_ppm == 200_000


def test_users_own_points_valuation_replaces_the_default(catalog, calendar):
    request = make_request(100, credit_limit_fen=1_000_000, points_value_ppm=950_000)
    assert quotes_by_id(catalog, calendar, request)["cmb_life"].net_fen == 9500


def test_alipay_splits_1200_into_three_transactions_of_at_most_500(catalog, calendar):
    q = quotes_by_id(catalog, calendar, make_request(1200))["alipay"]
    # 500 @ 2.5% = 12.50 twice, 200 @ 4% = 8.00
    assert q.transactions == 3
    assert q.fee_fen == 1250 + 1250 + 800
    assert q.net_fen == 120000 - 3300
    assert q.eta_earliest == q.eta_latest == dt.date(2026, 11, 18)


def test_remainder_below_the_channel_minimum_stays_on_the_phone_account(catalog, calendar):
    q = quotes_by_id(catalog, calendar, make_request("1005"))["alipay"]  # 500 + 500 + 5 (< 10 minimum)
    assert q.recoverable_fen == 100000
    assert q.transactions == 2


def test_fee_floor_applies_to_small_transactions(catalog, calendar):
    q = quotes_by_id(catalog, calendar, make_request(10))["alipay"]  # 5% of 10 = 0.50, the floor
    assert q.fee_fen == 50
    q = quotes_by_id(catalog, calendar, make_request(10))["wechat_pay"]  # 4.5% of 10 = 0.45 > 0.30 floor
    assert q.fee_fen == 45


def test_carrier_app_takes_half_the_balance_as_vouchers(catalog, calendar):
    q = quotes_by_id(catalog, calendar, make_request(301))["china_mobile_app"]
    assert q.recoverable_fen == 15050
    assert q.fee_fen == 0
    assert q.net_fen == 13545  # 90% of 150.50, rounded down
    assert q.hidden_cost_fen == 1505


def test_carrier_app_serves_its_own_network_only(catalog, calendar):
    quotes = quotes_by_id(catalog, calendar, make_request(200, Carrier.CHINA_UNICOM))
    assert quotes["china_unicom_app"].eligible
    assert not quotes["china_mobile_app"].eligible
    assert quotes["china_mobile_app"].reason.key == "reason.own_network_only"


def test_virtual_operator_numbers_are_not_served_by_the_host_networks_app(catalog, calendar):
    quotes = quotes_by_id(catalog, calendar, make_request(200, Carrier.CHINA_MOBILE, is_virtual_operator=True))
    assert quotes["china_mobile_app"].reason.key == "reason.virtual_operator"
    assert quotes["alipay"].eligible


def test_china_broadnet_is_not_served_by_channels_the_article_does_not_name_for_it(catalog, calendar):
    quotes = quotes_by_id(catalog, calendar, make_request(200, Carrier.CHINA_BROADNET, credit_limit_fen=1_000_000))
    assert quotes["alipay"].reason.key == "reason.carrier_not_served"
    assert quotes["icbc_e_mall"].eligible  # the bound card's phone is this Broadnet number


def test_bank_points_need_a_credit_limit_and_the_bound_cards_carrier(catalog, calendar):
    quotes = quotes_by_id(catalog, calendar, make_request(200))
    assert quotes["icbc_e_mall"].reason.key == "reason.needs_credit_limit"
    request = make_request(200, credit_limit_fen=1_000_000, bound_carrier=Carrier.CHINA_TELECOM)
    assert quotes_by_id(catalog, calendar, request)["icbc_e_mall"].reason.key == "reason.bound_card_carrier"


def test_bank_points_transactions_are_capped_at_a_fifth_of_the_credit_limit(catalog, calendar):
    q = quotes_by_id(catalog, calendar, make_request(1200, credit_limit_fen=300_000))["icbc_e_mall"]
    assert q.transactions == 2  # 600 + 600
    assert q.recoverable_fen == 120000


def test_bank_points_arrive_t_plus_one_counting_from_the_next_workday_after_the_cutoff(catalog, calendar):
    before = make_request(100, credit_limit_fen=1_000_000, at=dt.datetime(2026, 11, 20, 14, 59, tzinfo=SHANGHAI))
    after = replace(before, at=dt.datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI))
    assert quotes_by_id(catalog, calendar, before)["icbc_e_mall"].eta_latest == dt.date(2026, 11, 23)  # Fri -> Mon
    assert quotes_by_id(catalog, calendar, after)["icbc_e_mall"].eta_latest == dt.date(2026, 11, 24)


def test_ranking_follows_the_users_first_priority(catalog, calendar):
    by_cost = compare(catalog, make_request(200, credit_limit_fen=1_000_000), calendar)
    assert by_cost.best.channel.id == "alipay"
    assert by_cost.best_reason.key == "best.most_money"
    by_speed = compare(catalog, make_request(200, priorities=Priority.order_with_first(Priority.SPEED)), calendar)
    assert by_speed.best.eta_latest == dt.date(2026, 11, 18)
    ranks = [q.rank for q in by_cost.quotes if q.eligible]
    assert ranks == list(range(1, len(ranks) + 1))
    assert all(q.rank is None for q in by_cost.quotes if not q.eligible)
    assert [q.eligible for q in by_cost.quotes] == sorted((q.eligible for q in by_cost.quotes), reverse=True)


def test_vouchers_valued_at_face_carry_no_hidden_cost(catalog, calendar):
    q = quotes_by_id(catalog, calendar, make_request(20, voucher_value_ppm=PPM))["china_mobile_app"]
    assert (q.recoverable_fen, q.hidden_cost_fen, q.net_fen, q.effective_rate_ppm) == (1000, 0, 1000, 0)


def test_a_balance_below_every_minimum_has_no_best_channel(catalog, calendar):
    comparison = compare(catalog, make_request("0.50"), calendar)
    assert comparison.best is None and comparison.best_reason is None
    assert {q.reason.key for q in comparison.quotes} >= {"reason.below_minimum"}


balances = st.integers(min_value=1, max_value=MAX_BALANCE_FEN)
options = st.fixed_dictionaries(
    {
        "carrier": st.sampled_from(list(Carrier)),
        "credit_limit_fen": st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)),
        "bound_carrier": st.one_of(st.none(), st.sampled_from(list(Carrier))),
        "voucher_value_ppm": st.one_of(st.none(), st.integers(min_value=1, max_value=PPM)),
        "points_value_ppm": st.one_of(st.none(), st.integers(min_value=1, max_value=PPM)),
        "is_virtual_operator": st.booleans(),
        "priorities": st.sampled_from([Priority.order_with_first(p) for p in Priority]),
    }
)


@settings(max_examples=300, deadline=None)
@given(balances, options)
def test_every_eligible_quote_accounts_for_each_fen(catalog, calendar, balance, opts):
    request = make_request(1, balance_fen=balance, **opts)
    for q in compare(catalog, request, calendar).quotes:
        if q.eligible:
            assert q.fee_fen + q.hidden_cost_fen + q.net_fen == q.recoverable_fen
            assert 0 < q.recoverable_fen <= balance
            assert q.fee_fen >= 0 and q.hidden_cost_fen >= 0 and q.net_fen >= 0
            assert q.eta_earliest <= q.eta_latest
        else:
            assert q.reason is not None and q.net_fen == 0


@settings(max_examples=300, deadline=None)
@given(balances, st.integers(min_value=1, max_value=50_000), options)
def test_within_a_channel_recovering_more_never_yields_less(catalog, calendar, balance, extra, opts):
    small = make_request(1, balance_fen=balance, **opts)
    large = replace(small, balance_fen=min(balance + extra, MAX_BALANCE_FEN))
    for channel in catalog.channels:
        assert quote_channel(channel, large, calendar).net_fen >= quote_channel(channel, small, calendar).net_fen


@pytest.mark.parametrize("carrier", list(Carrier))
def test_every_carrier_has_at_least_one_channel(catalog, calendar, carrier):
    assert compare(catalog, make_request(200, carrier, credit_limit_fen=1_000_000), calendar).best is not None


def with_limits(channel, **limits):
    return replace(channel, limits=replace(channel.limits, **limits))


@pytest.mark.parametrize(
    ("per_day_yuan", "balance", "last_day"),
    [
        (500, 1200, 20),  # 500 + 500 + 200, one a day: Wed, Thu, Fri
        (900, 1500, 20),  # only one 500 fits in 900 a day: three days
        (900, 1400, 19),  # 500, then 500 + 400 share the second day
        (1000, 1200, 19),  # 500 + 500, then 200
        (300, 1200, 21),  # transactions shrink to 300, four a day apart: Wed..Sat (instant: calendar days)
    ],
)
def test_a_daily_limit_packs_whole_transactions_day_by_day(catalog, calendar, per_day_yuan, balance, last_day):
    daily = with_limits(catalog.by_id()["alipay"], per_day_fen=per_day_yuan * 100)
    q = quote_channel(daily, make_request(balance), calendar)
    assert q.eta_earliest == dt.date(2026, 11, 18)  # Wednesday
    assert q.eta_latest == dt.date(2026, 11, last_day)
    assert not q.eta_estimated


def test_a_monthly_limit_caps_what_can_be_recovered(catalog, calendar):
    alipay = catalog.by_id()["alipay"]
    monthly = with_limits(alipay, per_month_fen=80_000)
    q = quote_channel(monthly, make_request(1200), calendar)
    assert q.recoverable_fen == 80_000 and q.transactions == 2


def test_most_money_first_means_money_decides_even_against_speed_and_cash(catalog, calendar):
    # Points valued at face: the bank malls pay 1,200 in points, Alipay 1,167 in cash, instantly.
    request = make_request(1200, credit_limit_fen=1_000_000, points_value_ppm=PPM)
    comparison = compare(catalog, request, calendar)
    assert [q.channel.id for q in comparison.quotes[:3]] == ["cmb_life", "icbc_e_mall", "alipay"]
    assert comparison.best_reason.key == "best.tied"  # the two malls pay the same
    assert comparison.best_reason.params["other"] == "icbc_e_mall"


def test_cash_first_puts_every_cash_channel_ahead(catalog, calendar):
    request = make_request(
        1200, credit_limit_fen=1_000_000, points_value_ppm=PPM, priorities=Priority.order_with_first(Priority.CASH)
    )
    comparison = compare(catalog, request, calendar)
    assert [q.channel.id for q in comparison.quotes[:2]] == ["alipay", "wechat_pay"]
    assert comparison.best_reason.key == "best.cash_most"


def test_cash_first_with_no_cash_channel_says_so(catalog, calendar):
    request = make_request(
        200, Carrier.CHINA_BROADNET, credit_limit_fen=1_000_000, priorities=Priority.order_with_first(Priority.CASH)
    )
    assert compare(catalog, request, calendar).best_reason.key == "best.no_cash"


def test_speed_first_among_equally_fast_channels_picks_the_most_money(catalog, calendar):
    comparison = compare(catalog, make_request(200, priorities=Priority.order_with_first(Priority.SPEED)), calendar)
    assert comparison.best.channel.id == "alipay"
    assert comparison.best_reason.key == "best.fastest_most"
