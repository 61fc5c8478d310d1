"""Check-in codes: forgery, expiry, other sessions; minutes bounded by the session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credits.attendance import qrcode

SECRET = b"k" * 32
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


def _code(session: str = "s1") -> str:
    return qrcode.issue(
        SECRET, session_id=session, not_before=START - timedelta(minutes=15), expires_at=END
    )


def test_a_fresh_code_verifies_within_its_window() -> None:
    checked = qrcode.verify(SECRET, _code(), session_id="s1", now=START)
    assert checked.session_id == "s1" and checked.expires_at == END


@pytest.mark.parametrize(
    ("code", "session", "now", "reason"),
    [
        (lambda: _code(), "s2", START, "other session"),
        (lambda: _code(), "s1", END + timedelta(seconds=2), "expired"),
        (lambda: _code(), "s1", START - timedelta(minutes=30), "not yet valid"),
        (
            lambda: qrcode.issue(b"x" * 32, session_id="s1", not_before=START, expires_at=END),
            "s1",
            START,
            "forged",
        ),
        (lambda: _code()[:-3] + "abc", "s1", START, "forged"),
        (lambda: "garbage", "s1", START, "malformed"),
        (lambda: "a.b.c", "s1", START, "malformed"),
    ],
)
def test_bad_codes_are_refused_with_a_reason(
    code, session: str, now: datetime, reason: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(qrcode.InvalidCheckInCode) as caught:
        qrcode.verify(SECRET, code(), session_id=session, now=now)
    assert caught.value.reason == reason


def test_a_grace_keeps_an_expired_code_good_for_that_long_only() -> None:
    code = _code()
    later = END + timedelta(minutes=10)
    with pytest.raises(qrcode.InvalidCheckInCode):
        qrcode.verify(SECRET, code, session_id="s1", now=later)
    assert qrcode.verify(SECRET, code, session_id="s1", now=later, grace_seconds=1800)
    with pytest.raises(qrcode.InvalidCheckInCode) as caught:
        qrcode.verify(
            SECRET, code, session_id="s1", now=END + timedelta(seconds=1802), grace_seconds=1800
        )
    assert caught.value.reason == "expired"
    # a grace never opens a code before its start, nor makes a forged one good
    with pytest.raises(qrcode.InvalidCheckInCode) as early:
        qrcode.verify(
            SECRET, code, session_id="s1", now=START - timedelta(minutes=30), grace_seconds=1800
        )
    assert early.value.reason == "not yet valid"
    with pytest.raises(qrcode.InvalidCheckInCode) as forged:
        qrcode.verify(SECRET, code[:-3] + "abc", session_id="s1", now=END, grace_seconds=1800)
    assert forged.value.reason == "forged"


def test_a_code_whose_payload_names_another_session_cannot_be_re_signed() -> None:
    payload, mac = _code("s1").split(".")
    other_payload = _code("s2").split(".")[0]
    with pytest.raises(qrcode.InvalidCheckInCode) as caught:
        qrcode.verify(SECRET, f"{other_payload}.{mac}", session_id="s2", now=START)
    assert caught.value.reason == "forged"


minutes = st.integers(min_value=-300, max_value=600)


@given(minutes, minutes)
def test_attended_minutes_never_exceed_the_session(arrive: int, stay: int) -> None:
    checked_in = START + timedelta(minutes=arrive)
    checked_out = checked_in + timedelta(minutes=abs(stay))
    attended = qrcode.bounded_minutes(
        session_start=START, session_end=END, checked_in=checked_in, checked_out=checked_out
    )
    assert 0 <= attended <= 120
    assert attended <= abs(stay)
