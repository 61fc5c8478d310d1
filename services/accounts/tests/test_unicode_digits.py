"""Full-width digits (what Chinese input methods type) are the same number as ASCII digits;
other non-ASCII digits are refused."""

from __future__ import annotations

import pytest

from accounts import accountno, idnumber
from accounts.checkdigits import mod11_2
from accounts.masking import InvalidPhone, normalise_mobile
from testkit.people import id_number, phone

from .conftest import bearer, sign_in
from .test_learners import WANGCUN, new_account, village

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_a_full_width_id_number_parses_to_the_ascii_number() -> None:
    number = id_number()
    assert idnumber.parse(number.translate(FULL_WIDTH)).number == number
    assert idnumber.parse("４" + number[1:]).number == number


def test_id_numbers_with_other_unicode_digits_are_refused() -> None:
    number = id_number()
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse(number[:6] + number[6:10].translate(ARABIC_INDIC) + number[10:])
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.check_character("٤" + number[1:17])
    with pytest.raises(ValueError):
        mod11_2("٤10711")


def test_full_width_phones_and_account_numbers_normalise_to_ascii() -> None:
    mobile = phone()
    assert normalise_mobile(mobile.translate(FULL_WIDTH)) == mobile
    assert normalise_mobile("＋８６" + mobile.translate(FULL_WIDTH)) == mobile
    with pytest.raises(InvalidPhone):
        normalise_mobile(mobile.translate(ARABIC_INDIC))
    number = accountno.make("410711", 42)
    assert accountno.is_valid(number.translate(FULL_WIDTH))
    assert accountno.normalise(number.translate(FULL_WIDTH)) == number
    assert not accountno.is_valid(number.translate(ARABIC_INDIC))


async def test_the_full_width_twin_of_a_registered_id_number_is_a_duplicate(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    residence = await village(client, WANGCUN)
    number = id_number()
    first = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=number),
        headers=bearer(token),
    )
    assert first.status_code == 201, first.text
    for twin in ("４" + number[1:], number.translate(FULL_WIDTH)):
        again = await client.post(
            "/api/v1/learning-accounts",
            json=new_account(residence, id_number=twin),
            headers=bearer(token),
        )
        assert again.status_code == 409, again.text
        assert again.json()["type"].endswith("/duplicate-account")
    arabic = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(residence, id_number=number[:6] + number[6:].translate(ARABIC_INDIC)),
        headers=bearer(token),
    )
    assert arabic.status_code == 422
    assert arabic.json()["type"].endswith("/invalid-id-number") and arabic.json()["detail_zh"]


async def test_a_resident_signs_in_with_a_full_width_phone_or_account_number(
    session_client, staff_factory
) -> None:
    client, _ = session_client
    token = await staff_factory("school_staff", WANGCUN)
    mobile = phone()
    # registered with full-width digits, signed in with ASCII ones, and the other way round
    created = await client.post(
        "/api/v1/learning-accounts",
        json=new_account(await village(client, WANGCUN), phone=mobile.translate(FULL_WIDTH)),
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["phone_masked"] == mobile[:3] + "****" + mobile[-4:]
    for username in (
        mobile,
        mobile.translate(FULL_WIDTH),
        account["account_number"].translate(FULL_WIDTH),
    ):
        tokens = await sign_in(client, username, "resident-pass-1")
        me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
        assert me["subject"] == account["id"]
