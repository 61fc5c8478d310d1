"""Account numbers typed with a Chinese input method: full-width digits ("４１０７…") and an
ideographic space are the number the accounts service stores (NFKC), on every path where staff
or partners name a learner by number. Before, each asked accounts for the full-width text, got
the ASCII number back, and then looked the answer up under what was typed: "no such account"
for an account that exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.text import account_number
from testkit.http import bearer

from .conftest import new_learner
from .test_attendance_entry import _activity as _session_activity
from .test_attendance_entry import _staff
from .test_ingest import _item, _online_course, _post
from .test_staff_enrolment import _activity as _enrolling_activity

FULL_WIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789Xx"}


def _typed_in_chinese(number: str) -> str:
    """The number as a Chinese input method gives it: full-width, with an ideographic space."""
    wide = number.translate(FULL_WIDTH)
    return f"{wide[:6]}\u3000{wide[6:]}"


def test_the_kernel_folds_a_number_to_what_accounts_stores() -> None:
    assert account_number("４１０７１１\u3000０００００１２ｘ") == "4107110000012X"
    assert account_number(" 4107110000001x ") == "4107110000001X"


async def test_staff_enter_attendance_for_a_full_width_number(session_client, issue_token) -> None:
    client, _ = session_client
    staff = _staff(issue_token)
    activity = await _session_activity(client, staff)
    number, learner_id = new_learner()
    response = await client.post(
        f"/api/v1/sessions/{activity['sessions'][0]['id']}/attendance",
        json={"entries": [{"learner": _typed_in_chinese(number), "minutes": 60}]},
        headers=bearer(staff),
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "created", result
    assert result["learner"] == number  # shown as stored


async def test_staff_enrol_and_cancel_for_a_full_width_number(session_client, issue_token) -> None:
    client, _ = session_client
    staff = issue_token("staff", role="learning_point_staff", unit="410711100")
    activity = await _enrolling_activity(client, staff)
    number, learner_id = new_learner()
    url = f"/api/v1/activities/{activity}/enrolments"
    wide = number.translate(FULL_WIDTH)  # the enrolment body takes 14 characters, no space
    enrolled = await client.post(url, json={"learner": wide}, headers=bearer(staff))
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["learner_id"] == str(learner_id)
    cancelled = await client.delete(f"{url}/{wide}", headers=bearer(staff))
    assert cancelled.status_code == 204, cancelled.text


async def test_a_partner_record_for_a_full_width_number_is_created(
    session_client, issue_token
) -> None:
    client, _ = session_client
    partner = "wide-digits-mooc"
    token = issue_token("partner", client_id=partner)
    course = await _online_course(client, issue_token, partner)
    number, _ = new_learner()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    items = [_item("wide-1", number.translate(FULL_WIDTH), course, start)]
    response = await client.post(
        "/api/v1/learning-records:batch", json={"records": items}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["created"], response.text
    again = await _post(client, token, items)  # the retry is the same record
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"], again.text
