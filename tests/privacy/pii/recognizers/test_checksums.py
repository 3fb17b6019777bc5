import datetime as dt

import pytest

from privacy.pii.recognizers.checksums import (
    digits_only,
    id_card_check_char,
    id_card_valid,
    luhn_valid,
    uscc_valid,
)

TODAY = dt.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("4111111111111111", True),
        ("6222021234567890128", True),
        ("79927398713", True),
        ("4111111111111112", False),
        ("6222021234567890127", False),
        ("", False),
        ("7", False),
        ("4111-1111-1111-1111", False),  # digits only
        ("４１１１１１１１１１１１１１１１", False),  # full-width digits are not ASCII
    ],
)
def test_luhn_valid_table(number: str, expected: bool) -> None:
    assert luhn_valid(number) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11010519900307451X", True),
        ("11010519900307451x", True),
        ("110105199003074510", False),  # wrong check digit
        ("11010519900230451X", False),  # 30 February
        ("110105199013074517", False),  # month 13
        ("110105303003074519", False),  # born in the future (3030)
        ("110105187003074518", False),  # before 1880
        ("1101051990030745", False),  # too short
        ("A1010519900307451X", False),
    ],
)
def test_id_card_valid_table(value: str, expected: bool) -> None:
    assert id_card_valid(value, today=TODAY) is expected


def test_id_card_check_char_when_known_prefix_then_matches_standard_example() -> None:
    # GB 11643-1999 worked example
    assert id_card_check_char("11010519491231002") == "X"


def test_id_card_check_char_when_not_17_digits_then_value_error() -> None:
    with pytest.raises(ValueError, match="17"):
        id_card_check_char("123")


def test_id_card_valid_when_birth_after_today_then_false() -> None:
    prefix = "11010520260602123"
    value = prefix + id_card_check_char(prefix)
    assert id_card_valid(value, today=TODAY) is False
    assert id_card_valid(value, today=dt.date(2026, 6, 2)) is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("91110000600037341L", True),
        ("91350100M000100Y43", True),
        ("91110000600037341M", False),  # wrong check character
        ("9111000060003734IL", False),  # I is not in the alphabet
        ("91110000600037341", False),
    ],
)
def test_uscc_valid_table(value: str, expected: bool) -> None:
    assert uscc_valid(value) is expected


def test_digits_only_drops_separators() -> None:
    assert digits_only("6222 0212-3456") == "622202123456"
