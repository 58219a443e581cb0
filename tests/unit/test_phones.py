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
