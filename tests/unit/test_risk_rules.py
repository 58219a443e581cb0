"""The risk rules one by one (each firing and not firing, at its exact boundary), over time with
a controlled clock, combined into one decision, serialised, and under random facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.carriers import Carrier
from core.domain.risk import (
    ORDER,
    RULES,
    Assessment,
    Decision,
    Past,
    RiskFacts,
    RiskReason,
    RiskThresholds,
    assess,
    rule_amount,
    rule_carrier_mismatch,
    rule_deny_list,
    rule_new_account,
    rule_ported,
    rule_structuring,
    rule_velocity_device,
    rule_velocity_number,
    rule_velocity_user,
)

T0 = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
DEFAULT = RiskThresholds()
MOBILE, UNICOM, TELECOM = Carrier.CHINA_MOBILE, Carrier.CHINA_UNICOM, Carrier.CHINA_TELECOM


def make_facts(**changes) -> RiskFacts:
    """A harmless submission: 100 CNY from a month-old account, nothing on record."""
    facts = RiskFacts(
        now=T0,
        amount_fen=10_000,
        account_created_at=T0 - 30 * DAY,
        user_history=(),
        number_history=(),
        device_history=(),
        limit_fen=500_000,
        watched_limits=(100_000, 500_000),
        allocated_carrier=MOBILE,
        current_carrier=MOBILE,
        quoted_carrier=MOBILE,
        denied=frozenset(),
    )
    return replace(facts, **changes)


def pasts(*minutes_ago: int, amount_fen: int = 10_000, now: dt.datetime = T0) -> tuple[Past, ...]:
    return tuple(Past(now - m * MINUTE, amount_fen) for m in minutes_ago)


def test_a_plain_submission_is_approved_with_no_reasons():
    assert assess(make_facts()) == Assessment(Decision.APPROVE, ())


# --- velocity --------------------------------------------------------------------------------


def test_third_recovery_within_an_hour_by_one_user_is_approved():
    assert rule_velocity_user(make_facts(user_history=pasts(10, 20)), DEFAULT) is None


def test_fourth_recovery_within_an_hour_by_one_user_goes_to_review():
    reason = rule_velocity_user(make_facts(user_history=pasts(10, 20, 30)), DEFAULT)
    assert reason == RiskReason(
        "velocity_user", Decision.REVIEW, "risk.velocity_user", {"count": 4, "limit": 3, "window_min": 60}
    )


def test_eleventh_recovery_within_an_hour_by_one_user_is_rejected_and_the_tenth_only_reviewed():
    tenth = rule_velocity_user(make_facts(user_history=pasts(*range(1, 10))), DEFAULT)
    eleventh = rule_velocity_user(make_facts(user_history=pasts(*range(1, 11))), DEFAULT)
    assert tenth is not None and tenth.decision is Decision.REVIEW
    assert eleventh is not None and eleventh.decision is Decision.REJECT
    assert eleventh.params == {"count": 11, "limit": 10, "window_min": 60}


def test_a_recovery_exactly_one_window_ago_no_longer_counts():
    assert rule_velocity_user(make_facts(user_history=pasts(60, 20, 30)), DEFAULT) is None
    assert rule_velocity_user(make_facts(user_history=pasts(59, 20, 30)), DEFAULT) is not None


def test_velocity_fires_at_minute_thirty_and_stops_once_the_window_slides_past():
    history: list[Past] = []
    decisions = {}
    for minute in (0, 10, 20, 30, 60, 85):
        now = T0 + minute * MINUTE
        result = assess(make_facts(now=now, user_history=tuple(history)))
        decisions[minute] = result.decision
        history.append(Past(now, 10_000))
    assert decisions == {
        0: Decision.APPROVE,
        10: Decision.APPROVE,
        20: Decision.APPROVE,
        30: Decision.REVIEW,  # 0, 10, 20 and this one
        60: Decision.REVIEW,  # minute 0 is exactly an hour ago and has dropped out: 10, 20, 30, 60
        85: Decision.APPROVE,  # 10 and 20 slid out too: 30, 60 and this one
    }


@pytest.mark.parametrize(
    ("rule", "field", "review", "reject"),
    [
        (rule_velocity_number, "number_history", 3, 10),
        (rule_velocity_device, "device_history", 5, 20),
    ],
    ids=["number", "device"],
)
def test_number_and_device_velocity_review_and_reject_just_past_their_thresholds(rule, field, review, reject):
    def decision(total):
        reason = rule(make_facts(**{field: pasts(*range(1, total))}), DEFAULT)
        return reason and reason.decision

    assert decision(review) is None
    assert decision(review + 1) is Decision.REVIEW
    assert decision(reject) is Decision.REVIEW
    assert decision(reject + 1) is Decision.REJECT


def test_an_unknown_device_has_no_history_and_never_trips_device_velocity():
    assert rule_velocity_device(make_facts(device_history=()), DEFAULT) is None


def test_recoveries_on_the_number_by_other_users_count_for_number_velocity_only():
    facts = make_facts(number_history=pasts(5, 15, 25))
    assert rule_velocity_user(facts, DEFAULT) is None
    reason = rule_velocity_number(facts, DEFAULT)
    assert reason is not None and reason.key == "risk.velocity_number" and reason.params["count"] == 4


# --- amount ----------------------------------------------------------------------------------


def test_an_amount_one_fen_above_the_hard_limit_is_rejected():
    reason = rule_amount(make_facts(amount_fen=500_001), DEFAULT)
    assert reason == RiskReason("amount", Decision.REJECT, "risk.amount", {"amount_fen": 500_001, "limit_fen": 500_000})


def test_an_amount_exactly_at_the_hard_limit_is_only_reviewed():
    reason = rule_amount(make_facts(amount_fen=500_000), DEFAULT)
    assert reason is not None and reason.decision is Decision.REVIEW


def test_an_amount_of_exactly_1000_cny_goes_to_review():
    reason = rule_amount(make_facts(amount_fen=100_000), DEFAULT)
    assert reason == RiskReason("amount", Decision.REVIEW, "risk.amount", {"amount_fen": 100_000, "limit_fen": 100_000})


def test_an_amount_one_fen_under_1000_cny_is_approved():
    assert rule_amount(make_facts(amount_fen=99_999), DEFAULT) is None
    assert assess(make_facts(amount_fen=99_999)).decision is Decision.APPROVE


# --- new account -----------------------------------------------------------------------------


def test_an_account_one_second_short_of_a_day_asking_500_cny_goes_to_review():
    facts = make_facts(amount_fen=50_000, account_created_at=T0 - DAY + dt.timedelta(seconds=1))
    reason = rule_new_account(facts, DEFAULT)
    assert reason is not None and reason.decision is Decision.REVIEW and reason.key == "risk.new_account"
    assert reason.params == {"amount_fen": 50_000, "limit_fen": 50_000, "age_min": 1439}


def test_an_account_exactly_a_day_old_is_no_longer_new():
    assert rule_new_account(make_facts(amount_fen=50_000, account_created_at=T0 - DAY), DEFAULT) is None


def test_a_new_account_asking_less_than_500_cny_is_approved():
    assert rule_new_account(make_facts(amount_fen=49_999, account_created_at=T0 - MINUTE), DEFAULT) is None


# --- carriers --------------------------------------------------------------------------------


def test_a_quote_made_for_another_carrier_is_rejected_for_a_requote():
    reason = rule_carrier_mismatch(make_facts(quoted_carrier=MOBILE, current_carrier=UNICOM), DEFAULT)
    assert reason == RiskReason(
        "carrier_mismatch",
        Decision.REJECT,
        "risk.carrier_mismatch",
        {"quoted": "china_mobile", "current": "china_unicom"},
    )


def test_a_quote_for_the_current_carrier_or_an_unknown_carrier_passes():
    assert rule_carrier_mismatch(make_facts(quoted_carrier=UNICOM, current_carrier=UNICOM), DEFAULT) is None
    assert rule_carrier_mismatch(make_facts(quoted_carrier=MOBILE, current_carrier=None), DEFAULT) is None
    assert rule_carrier_mismatch(make_facts(quoted_carrier=None, current_carrier=UNICOM), DEFAULT) is None


def test_a_ported_number_asking_200_cny_goes_to_review():
    facts = make_facts(amount_fen=20_000, allocated_carrier=MOBILE, current_carrier=TELECOM, quoted_carrier=TELECOM)
    reason = rule_ported(facts, DEFAULT)
    assert reason == RiskReason(
        "ported", Decision.REVIEW, "risk.ported", {"allocated": "china_mobile", "current": "china_telecom"}
    )
    assert assess(facts).decision is Decision.REVIEW


def test_a_ported_number_asking_less_or_an_unported_or_unknown_one_passes():
    ported = make_facts(allocated_carrier=MOBILE, current_carrier=TELECOM, quoted_carrier=TELECOM)
    assert rule_ported(replace(ported, amount_fen=19_999), DEFAULT) is None
    assert rule_ported(replace(ported, amount_fen=20_000, allocated_carrier=TELECOM), DEFAULT) is None
    assert rule_ported(replace(ported, amount_fen=20_000, allocated_carrier=None), DEFAULT) is None
    assert rule_ported(replace(ported, amount_fen=20_000, current_carrier=None), DEFAULT) is None


# --- deny list -------------------------------------------------------------------------------


def test_a_denied_device_and_user_are_rejected_and_named_in_order():
    reason = rule_deny_list(make_facts(denied=frozenset({"user", "device"})), DEFAULT)
    assert reason == RiskReason("deny_list", Decision.REJECT, "risk.deny_list", {"on": "device,user"})


def test_nothing_on_the_deny_list_passes():
    assert rule_deny_list(make_facts(denied=frozenset()), DEFAULT) is None


# --- structuring -----------------------------------------------------------------------------

JUST_UNDER = 99_000  # 990 CNY, under the 1,000 CNY review amount


def structuring_stream(days: list[float], field: str = "user_history") -> list[Decision]:
    """Submit 990 CNY on each of `days` (days after T0); what the structuring rule says each time."""
    history: list[Past] = []
    said = []
    for day in days:
        now = T0 + day * DAY
        reason = rule_structuring(make_facts(now=now, amount_fen=JUST_UNDER, **{field: tuple(history)}), DEFAULT)
        said.append(reason.decision if reason else Decision.APPROVE)
        history.append(Past(now, JUST_UNDER))
    return said


def test_three_amounts_of_990_cny_within_six_days_go_to_review():
    assert structuring_stream([0, 3, 6]) == [Decision.APPROVE, Decision.APPROVE, Decision.REVIEW]
    facts = make_facts(now=T0 + 6 * DAY, amount_fen=JUST_UNDER, user_history=(Past(T0, JUST_UNDER),) * 2)
    assert rule_structuring(facts, DEFAULT) == RiskReason(
        "structuring", Decision.REVIEW, "risk.structuring", {"limit_fen": 100_000, "count": 3}
    )


def test_three_amounts_of_990_cny_spread_over_eight_days_are_not_structuring():
    assert structuring_stream([0, 4, 8]) == [Decision.APPROVE] * 3


def test_an_amount_exactly_a_structuring_window_ago_no_longer_counts():
    assert structuring_stream([0, 6, 7]) == [Decision.APPROVE] * 3


def test_just_under_amounts_on_the_number_by_other_users_count_too():
    assert structuring_stream([0, 1, 2], field="number_history")[-1] is Decision.REVIEW


def test_the_users_and_the_numbers_just_under_amounts_are_counted_separately():
    one_each = make_facts(
        amount_fen=JUST_UNDER,
        user_history=(Past(T0 - DAY, JUST_UNDER),),
        number_history=(Past(T0 - 2 * DAY, JUST_UNDER),),
    )
    assert rule_structuring(one_each, DEFAULT) is None


def test_the_just_under_band_includes_ten_percent_below_and_excludes_the_limit_itself():
    def fires(amount, earlier_amount=JUST_UNDER):
        history = (Past(T0 - DAY, earlier_amount), Past(T0 - 2 * DAY, earlier_amount))
        return rule_structuring(make_facts(amount_fen=amount, user_history=history), DEFAULT) is not None

    assert fires(90_000) and fires(99_999)
    assert not fires(89_999) and not fires(100_000)
    assert not fires(JUST_UNDER, earlier_amount=89_999)


def test_structuring_fires_only_when_this_amount_is_itself_just_under_a_limit():
    history = pasts(60, 120, 180, amount_fen=JUST_UNDER)
    assert rule_structuring(make_facts(amount_fen=50_000, user_history=history), DEFAULT) is None


def test_structuring_watches_each_limit_and_ignores_non_positive_ones():
    history = pasts(60, 120, amount_fen=495_000)
    facts = make_facts(amount_fen=490_000, user_history=history, watched_limits=(0, -5, 100_000, 500_000))
    assert rule_structuring(facts, DEFAULT) == RiskReason(
        "structuring", Decision.REVIEW, "risk.structuring", {"limit_fen": 500_000, "count": 3}
    )
    assert rule_structuring(replace(facts, watched_limits=(0, -5, 100_000)), DEFAULT) is None


# --- combining, thresholds, serialising ------------------------------------------------------


def test_decisions_are_ordered_by_severity_so_max_picks_the_worst():
    assert ORDER == (Decision.APPROVE, Decision.REVIEW, Decision.REJECT)
    assert [d.severity for d in ORDER] == [0, 1, 2]
    assert max(Decision.REVIEW, Decision.REJECT, Decision.APPROVE) is Decision.REJECT
    assert max([Decision.APPROVE, Decision.REVIEW], key=lambda d: d.severity) is Decision.REVIEW


def test_the_decision_is_the_most_severe_reason_and_every_reason_is_kept():
    facts = make_facts(
        amount_fen=100_000,
        account_created_at=T0 - HOUR,
        user_history=pasts(5, 10, 15),
        denied=frozenset({"payee"}),
    )
    result = assess(facts)
    assert result.decision is Decision.REJECT
    assert [r.rule for r in result.reasons] == ["deny_list", "amount", "velocity_user", "new_account"]
    assert [r.decision for r in result.reasons] == [Decision.REJECT] + [Decision.REVIEW] * 3
    assert assess(replace(facts, denied=frozenset())).decision is Decision.REVIEW


def test_every_rule_is_listed_once_and_keys_follow_the_rule_names():
    assert len(RULES) == len(set(RULES)) == 9
    reasons = assess(
        make_facts(
            amount_fen=99_000,
            limit_fen=90_000,
            account_created_at=T0,
            user_history=pasts(*range(1, 12), amount_fen=99_000),
            number_history=pasts(*range(1, 12)),
            device_history=pasts(*range(1, 22)),
            allocated_carrier=TELECOM,
            quoted_carrier=UNICOM,
            denied=frozenset({"number"}),
        )
    ).reasons
    assert {r.rule for r in reasons} == {
        "velocity_user",
        "velocity_number",
        "velocity_device",
        "amount",
        "new_account",
        "carrier_mismatch",
        "ported",
        "deny_list",
        "structuring",
    }
    assert all(r.key == f"risk.{r.rule}" for r in reasons)


@pytest.mark.parametrize(
    "changes",
    [
        {"velocity_window_s": 0},
        {"review_amount_fen": -1},
        {"structuring_count": True},
        {"new_account_s": 1.5},
        {"velocity_review_user": 5, "velocity_reject_user": 4},
        {"velocity_review_device": 30},
        {"structuring_band_pct": 100},
    ],
)
def test_unusable_thresholds_are_refused(changes):
    with pytest.raises(ValueError, match="risk threshold"):
        RiskThresholds(**changes)


def test_equal_review_and_reject_thresholds_are_allowed_and_tuned_thresholds_apply():
    strict = RiskThresholds(velocity_review_user=1, velocity_reject_user=1, structuring_band_pct=1)
    reason = rule_velocity_user(make_facts(user_history=pasts(5)), strict)
    assert reason is not None and reason.decision is Decision.REJECT
    assert reason.params == {"count": 2, "limit": 1, "window_min": 60}


def test_an_assessment_round_trips_through_compact_json():
    result = assess(make_facts(amount_fen=100_000, quoted_carrier=UNICOM, denied=frozenset({"user"})))
    text = result.to_json()
    assert text.startswith('{"decision":"reject","reasons":[{"rule":"deny_list","decision":"reject",')
    assert " " not in text
    assert Assessment.from_json(text) == result
    assert Assessment.from_json(Assessment(Decision.APPROVE, ()).to_json()) == Assessment(Decision.APPROVE, ())


def test_json_params_are_written_in_sorted_order():
    reason = RiskReason("velocity_user", Decision.REVIEW, "risk.velocity_user", {"window_min": 60, "count": 4})
    text = Assessment(Decision.REVIEW, (reason,)).to_json()
    assert text.endswith('"params":{"count":4,"window_min":60}}]}')


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"decision":"maybe","reasons":[]}',
        '{"decision":"approve"}',
        '{"decision":"review","reasons":[{"rule":"amount","decision":"review","key":"risk.amount","params":[]}]}',
        '{"decision":"review","reasons":[{"rule":"x","decision":"review","key":"risk.x","params":{"a":1.5}}]}',
    ],
)
def test_json_that_is_not_an_assessment_is_refused(text):
    with pytest.raises(ValueError):
        Assessment.from_json(text)


# --- properties and speed --------------------------------------------------------------------

moments = st.datetimes(timezones=st.just(dt.UTC))
near_moments = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=dt.UTC)
)
amounts = st.integers(min_value=-(10**12), max_value=10**12)
carriers = st.none() | st.sampled_from(Carrier)


def histories(when):
    return st.lists(st.builds(Past, when, amounts | st.sampled_from([99_000, 495_000])), max_size=25).map(tuple)


def facts_strategy(when):
    return st.builds(
        RiskFacts,
        now=when,
        amount_fen=amounts | st.sampled_from([99_000, 100_000, 495_000]),
        account_created_at=when,
        user_history=histories(when),
        number_history=histories(when),
        device_history=histories(when),
        limit_fen=amounts,
        watched_limits=st.lists(amounts | st.sampled_from([100_000, 500_000]), max_size=4).map(tuple),
        allocated_carrier=carriers,
        current_carrier=carriers,
        quoted_carrier=carriers,
        denied=st.frozensets(st.sampled_from(["user", "number", "device", "payee"])),
    )


@st.composite
def thresholds_strategy(draw):
    small = st.integers(min_value=1, max_value=30)
    values = {}
    for who in ("user", "number", "device"):
        review = draw(small)
        values[f"velocity_review_{who}"] = review
        values[f"velocity_reject_{who}"] = review + draw(st.integers(min_value=0, max_value=30))
    return RiskThresholds(
        velocity_window_s=draw(st.integers(min_value=1, max_value=10**8)),
        structuring_window_s=draw(st.integers(min_value=1, max_value=10**8)),
        structuring_band_pct=draw(st.integers(min_value=1, max_value=99)),
        structuring_count=draw(small),
        **values,
    )


@settings(max_examples=300, deadline=None)
@given(facts_strategy(moments) | facts_strategy(near_moments), thresholds_strategy() | st.just(DEFAULT))
def test_assess_never_raises_and_its_json_round_trips(facts, thresholds):
    result = assess(facts, thresholds)
    assert result.decision is max((r.decision for r in result.reasons), default=Decision.APPROVE)
    assert Assessment.from_json(result.to_json()) == result


@settings(max_examples=300, deadline=None)
@given(
    facts_strategy(near_moments),
    histories(near_moments),
    histories(near_moments),
    histories(near_moments),
    thresholds_strategy() | st.just(DEFAULT),
)
def test_adding_history_never_lowers_the_decision(facts, more_user, more_number, more_device, thresholds):
    more = replace(
        facts,
        user_history=facts.user_history + more_user,
        number_history=facts.number_history + more_number,
        device_history=facts.device_history + more_device,
    )
    for rule in (rule_velocity_user, rule_velocity_number, rule_velocity_device):
        before, after = rule(facts, thresholds), rule(more, thresholds)
        assert (after.decision if after else Decision.APPROVE) >= (before.decision if before else Decision.APPROVE)
    assert assess(more, thresholds).decision >= assess(facts, thresholds).decision
