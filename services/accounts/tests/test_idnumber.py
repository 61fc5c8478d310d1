"""GB 11643 ID numbers, learning account numbers and masking: pure rules, property-tested."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from accounts import accountno, idnumber
from accounts.checkdigits import mod11_2
from accounts.masking import InvalidPhone, mask_mobile, normalise_mobile

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # as printed in GB 11643
MUYE_REGION = "410711"

births = st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))
sequences = st.integers(min_value=0, max_value=999)


def build(region: str, born: date, sequence: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + idnumber.check_character(first17)


@pytest.mark.parametrize("number", ["11010519491231002X", "360426199101010071"])
def test_published_examples_are_valid(number: str) -> None:
    assert idnumber.parse(number).number == number


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_matches_the_standards_weighted_sum(first17: str) -> None:
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    assert mod11_2(first17) == "10X98765432"[total % 11]


# 410711 exists since 1983 (郊区; 牧野区 from 2003): python-stdnum checks it against the birth date
@given(st.dates(min_value=date(1983, 1, 1), max_value=date(2025, 12, 31)), sequences)
def test_built_numbers_parse_and_agree_with_python_stdnum(born: date, sequence: int) -> None:
    number = build(MUYE_REGION, born, sequence)
    parsed = idnumber.parse(number, today=date(2026, 1, 1))
    assert parsed.birth_date == born
    assert parsed.region_code == MUYE_REGION
    assert parsed.gender == ("male" if sequence % 2 else "female")
    assert ric.is_valid(number)


@given(births, sequences, st.integers(min_value=0, max_value=16), st.integers(1, 9))
def test_any_single_digit_error_is_caught(
    born: date, sequence: int, position: int, shift: int
) -> None:
    number = build(MUYE_REGION, born, sequence)
    wrong = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse(wrong, today=date(2026, 1, 1))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("41071119900101001", "18 characters"),
        ("4107111990010100AX", "17 digits"),
        ("410711199002300011", "real date"),
        ("410711209901010011", "out of range"),
        ("410711199001010012", "check character"),
    ],
)
def test_each_rule_says_what_failed(value: str, reason: str) -> None:
    with pytest.raises(idnumber.InvalidIdNumber) as caught:
        idnumber.parse(value, today=date(2026, 1, 1))
    assert reason in caught.value.reason


def test_lower_case_x_and_spaces_are_normalised() -> None:
    assert idnumber.parse(" 11010519491231002x ").number == "11010519491231002X"


def test_age_counts_whole_years() -> None:
    born = date(2012, 6, 15)
    citizen = idnumber.parse(build(MUYE_REGION, born, 12))
    assert citizen.age_on(born + timedelta(days=365 * 14)) == 13  # the day before the birthday
    assert citizen.age_on(date(2026, 6, 15)) == 14


def test_id_mask_shows_region_and_last_two() -> None:
    assert idnumber.mask("41071119900101001X") == "410711**********1X"


@given(st.integers(min_value=1, max_value=9_999_999))
def test_account_numbers_carry_a_working_check_character(sequence: int) -> None:
    number = accountno.make(MUYE_REGION, sequence)
    assert len(number) == 14 and accountno.is_valid(number)
    for i in range(12):  # swapping two different neighbours is caught
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not accountno.is_valid(swapped)


def test_mobile_numbers_are_normalised_validated_and_masked() -> None:
    assert normalise_mobile("+86 138-0013-1234") == "13800131234"
    assert mask_mobile("13800131234") == "138****1234"
    for bad in ("12800131234", "1380013123", "abc"):
        with pytest.raises(InvalidPhone):
            normalise_mobile(bad)
