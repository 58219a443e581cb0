import pytest

from core.domain.carriers import Carrier
from core.errors import InvalidPhoneNumber
from core.phones import mask, parse_mobile


@pytest.mark.parametrize(
    ("number", "carrier", "virtual"),
    [
        ("13800138000", Carrier.CHINA_MOBILE, False),
        ("13012345678", Carrier.CHINA_UNICOM, False),
        ("19912345678", Carrier.CHINA_TELECOM, False),
        ("19212345678", Carrier.CHINA_BROADNET, False),
        ("16212345678", Carrier.CHINA_TELECOM, True),
        ("16512345678", Carrier.CHINA_MOBILE, True),
        ("16712345678", Carrier.CHINA_UNICOM, True),
        ("17031234567", Carrier.CHINA_MOBILE, True),
        ("17112345678", Carrier.CHINA_UNICOM, True),
        ("+86 138 0013 8000", Carrier.CHINA_MOBILE, False),
        ("１３８００１３８０００", Carrier.CHINA_MOBILE, False),
        ("138-0013-8000", Carrier.CHINA_MOBILE, False),
    ],
)
def test_carrier_is_named_from_the_segment(number, carrier, virtual):
    parsed = parse_mobile(number)
    assert parsed.allocated_carrier is carrier
    assert parsed.is_virtual_operator is virtual


def test_a_satellite_segment_has_no_known_carrier():
    assert parse_mobile("13491234567").allocated_carrier is None


@pytest.mark.parametrize(
    "number", ["", "123", "10012345678", "14012345678", "1380013800a", "238001380001", "138001380001"]
)
def test_invalid_numbers_are_refused(number):
    with pytest.raises(InvalidPhoneNumber):
        parse_mobile(number)


def test_numbers_are_masked_to_first_three_and_last_four():
    assert mask("13800138000") == "138****8000"
    number = parse_mobile("13800138000")
    assert "13800138000" not in repr(number) and "13800138000" not in str(number)
    assert number.masked == "138****8000"


@pytest.mark.parametrize("number", ["11187009999", "17912009999", "12036001234", "11187008613"])
def test_a_number_that_reads_as_a_carriers_international_prefix_is_refused_as_not_mobile(number):
    """1XX XX00 and 179XX00 are also China's international prefixes: phonenumbers read
    11187009999 as a call to country code 9999 and raised its own error, which no page expected."""
    with pytest.raises(InvalidPhoneNumber) as refused:
        parse_mobile(number)
    assert refused.value.key == "error.phone.segment"


@pytest.mark.parametrize(
    "odd", ["1380013❶❷❸❹", "1380013፩፩፩፩", "13800138❽00", "➀3800138000", "①③⑧00138000", "¹³⁸00138000", "138001380⒈0"]
)
def test_characters_that_are_digits_only_to_python_are_refused_and_teach_the_segment_nothing(odd):
    """str.isdigit holds for ❶ and ፩, which phonenumbers skips: such a number was remembered as
    its segment's answer (refusing every real number of it) or accepted with them in it. NFKC
    read circled ① and superscript ¹ as digits: such a number was a real one."""
    from core import phones

    phones._SEGMENTS.clear()
    for _ in range(2):  # cold, then with the real number's segment remembered
        with pytest.raises(InvalidPhoneNumber) as refused:
            parse_mobile(odd)
        assert refused.value.key == "error.phone.invalid"
        assert parse_mobile("13800138000").allocated_carrier is Carrier.CHINA_MOBILE


def test_decimal_digits_of_other_scripts_read_as_their_ascii_digits():
    assert parse_mobile("١٣٨٠٠١٣٨٠٠٠").national == "13800138000"  # Arabic-Indic
    assert parse_mobile("+८६ १३८००१३८०००").national == "13800138000"  # Devanagari, with the country code
    with pytest.raises(InvalidPhoneNumber):
        parse_mobile("1" * 100_000)  # refused unread


def test_every_number_of_a_segment_parses_as_the_segment_does():
    """`parse_mobile` remembers what the first SEGMENT_DIGITS digits say (the carrier, virtual or
    not, or not a mobile segment) and answers later numbers of that segment from it: that holds
    only while phonenumbers reads no further digit. Seeded samples of segments, each with its
    lowest, highest and a random number, must agree, parsed afresh."""
    import random

    import phonenumbers.carrierdata

    from core import phones

    assert len("86") + phones.SEGMENT_DIGITS >= phonenumbers.carrierdata.CARRIER_LONGEST_PREFIX
    rng = random.Random(20261202)
    segments = {f"1{n:06d}" for n in rng.sample(range(1_000_000), 3_000)}
    segments |= {f"{three}{four}000" for three in range(130, 200) for four in range(10)}  # every 4-digit segment
    for segment in sorted(segments):
        numbers = [segment + "0000", segment + "9999", segment + f"{rng.randrange(10_000):04d}"]
        answers = {phones._segment_of(number) for number in numbers}
        assert len(answers) == 1, segment


def test_a_remembered_segment_answers_as_parsing_would():
    from core import phones

    phones._SEGMENTS.clear()
    first, second = parse_mobile("13800138000"), parse_mobile("13800139999")  # one segment: the second remembered
    assert "1380013" in phones._SEGMENTS and len(phones._SEGMENTS) == 1
    assert (second.national, second.allocated_carrier, second.is_virtual_operator) == (
        "13800139999",
        first.allocated_carrier,
        first.is_virtual_operator,
    )
    for _ in range(2):  # a segment that is not a mobile one is refused the same way, remembered or not
        with pytest.raises(InvalidPhoneNumber) as refused:
            parse_mobile("12012345678")
        assert refused.value.key == "error.phone.segment"
    assert all(len(key) == phones.SEGMENT_DIGITS for key in phones._SEGMENTS)  # segments, never whole numbers
